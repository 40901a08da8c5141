package store

import (
	"context"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// The operators' figures: the console's overview and the metrics' gauges. Each is a few
// indexed or grouped reads, never a lock, and none runs on the ingest or apply path.

// EventCountsSince counts the inbox events received at or after since, by property,
// source and status, calling fn once per group.
//
// The inbox has no index on received_at (the write path pays for every index), but ids
// are handed out in the order events are recorded, so the first id received since then is
// found by a binary search over the primary key (a few dozen index probes) and only the
// rows from there on are counted. An event recorded in the same instant as the cut by a
// concurrent transaction with a smaller id can be missed; the figure is an operator's
// view, the ledger and the metrics are exact.
func (db *DB) EventCountsSince(ctx context.Context, since time.Time, fn func(property string, source rewards.Source, status string, n int64)) error {
	g := db.gorm.WithContext(ctx)
	since = since.UTC()
	var bounds []struct{ Lo, Hi *int64 }
	if err := query(g, &bounds, `SELECT MIN(id) AS lo, MAX(id) AS hi FROM inbox`); err != nil {
		return translate(err)
	}
	if len(bounds) == 0 || bounds[0].Lo == nil {
		return nil // an empty inbox
	}
	lo, hi := *bounds[0].Lo, *bounds[0].Hi+1 // the answer is in [lo, hi]; hi means none
	for lo < hi {
		mid := lo + (hi-lo)/2
		var rows []struct {
			ID         int64
			ReceivedAt time.Time
		}
		if err := query(g, &rows, `SELECT id, received_at FROM inbox WHERE id >= ? ORDER BY id LIMIT 1`, mid); err != nil {
			return translate(err)
		}
		switch {
		case len(rows) == 0: // cannot happen below hi, but do not loop on it
			hi = mid
		case !rows[0].ReceivedAt.Before(since):
			hi = mid
		default:
			lo = rows[0].ID + 1
		}
	}
	rows, err := rawQuery(g, `SELECT property, source, status, COUNT(*) FROM inbox
		WHERE id >= ? AND received_at >= ? GROUP BY property, source, status ORDER BY property, source, status`, lo, since)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var property, source, status string
		var n int64
		if err := rows.Scan(&property, &source, &status, &n); err != nil {
			return translate(err)
		}
		fn(property, rewards.Source(source), status, n)
	}
	return translate(rows.Err())
}

// OpenEventCounts reports, per property, the events that still need someone: the
// recorded ones not yet applied (the apply backlog, with the oldest one's receipt) and the
// quarantined ones. It reads through the partial indexes that hold exactly those events.
// Properties with neither are not reported.
func (db *DB) OpenEventCounts(ctx context.Context, fn func(property string, backlog rewards.Backlog, quarantined int64)) error {
	g := db.gorm.WithContext(ctx)
	var groups []struct {
		Property string
		Status   string
		N        int64
		First    int64
	}
	// Literal statuses, so each half uses its partial index.
	if err := query(g, &groups, `SELECT property, status, COUNT(*) AS n, MIN(id) AS first FROM inbox
		WHERE status = `+statusLiteral(rewards.StatusRecorded)+` GROUP BY property, status
		UNION ALL
		SELECT property, status, COUNT(*) AS n, MIN(id) AS first FROM inbox
		WHERE status = `+statusLiteral(rewards.StatusQuarantined)+` GROUP BY property, status
		ORDER BY property`); err != nil {
		return translate(err)
	}
	type open struct {
		property    string
		backlog     rewards.Backlog
		quarantined int64
	}
	var out []open
	for _, gr := range groups {
		if len(out) == 0 || out[len(out)-1].property != gr.Property {
			out = append(out, open{property: gr.Property})
		}
		o := &out[len(out)-1]
		if gr.Status == rewards.StatusQuarantined {
			o.quarantined = gr.N
			continue
		}
		o.backlog.Events = gr.N
		// Not MIN(received_at): SQLite returns an aggregate's time as text.
		var at []time.Time
		if err := query(g, &at, `SELECT received_at FROM inbox WHERE id = ?`, gr.First); err != nil {
			return translate(err)
		}
		if len(at) == 1 {
			o.backlog.OldestRecord = at[0].UTC()
		}
	}
	for _, o := range out {
		fn(o.property, o.backlog, o.quarantined)
	}
	return nil
}

// WebhookBacklog calls fn for each property with webhook deliveries pending (not yet
// delivered, nor failed for good) to one of endpoints, its (property, url) pairs: how
// many, and when the oldest was written. Deliveries to an endpoint no longer configured
// wait for it to be configured again and are not counted: they would hold an alert on
// the oldest's age for good. It reads the pending deliveries' partial index.
func (db *DB) WebhookBacklog(ctx context.Context, endpoints [][2]string, fn func(property string, pending rewards.Backlog)) error {
	if len(endpoints) == 0 {
		return nil
	}
	g := db.gorm.WithContext(ctx)
	var groups []struct {
		Property string
		N        int64
		First    int64
	}
	in, args := endpointsIn("", endpoints)
	if err := query(g, &groups, `SELECT property, COUNT(*) AS n, MIN(id) AS first FROM webhook_deliveries
		WHERE status = 'pending' AND `+in+` GROUP BY property ORDER BY property`, args...); err != nil {
		return translate(err)
	}
	for _, gr := range groups {
		b := rewards.Backlog{Events: gr.N}
		var at []time.Time // not MIN(created_at): SQLite returns an aggregate's time as text
		if err := query(g, &at, `SELECT created_at FROM webhook_deliveries WHERE id = ?`, gr.First); err != nil {
			return translate(err)
		}
		if len(at) == 1 {
			b.OldestRecord = at[0].UTC()
		}
		fn(gr.Property, b)
	}
	return nil
}

// DisabledEndpoints counts, per property, the given (property, url) endpoints disabled
// now (after days without a success; a success or an operator's retry enables one).
// While one is, its new deliveries are failed unsent by its lane's next claim (within
// seconds; a lane in the slow slots waits for one), so they hardly count as pending:
// without this count an endpoint disabled an hour ago showed nowhere.
func (db *DB) DisabledEndpoints(ctx context.Context, endpoints [][2]string) (map[string]int64, error) {
	out := map[string]int64{}
	if len(endpoints) == 0 {
		return out, nil
	}
	in, args := pairIn("property", "url", endpoints)
	var groups []struct {
		Property string
		N        int64
	}
	if err := query(db.gorm.WithContext(ctx), &groups, `SELECT property, COUNT(*) AS n FROM webhook_endpoints
		WHERE disabled_at IS NOT NULL AND `+in+` GROUP BY property`, args...); err != nil {
		return nil, translate(err)
	}
	for _, g := range groups {
		out[g.Property] = g.N
	}
	return out, nil
}

// ClockOffset is this process's clock (which stamps receipts, maturities, leases and
// tournament windows) minus the database server's, from one round trip, taking the
// process's clock halfway through it. On SQLite the database has no clock of its own: 0.
// Replicas whose clocks disagree mature credits at different times.
func (db *DB) ClockOffset(ctx context.Context) (time.Duration, error) {
	if db.dialect != Postgres {
		return 0, nil
	}
	// The connection is taken first: the wait for one (a busy pool, a dial) counted as
	// the round trip, and half of it read as a clock behind Postgres's.
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return 0, translate(err)
	}
	defer conn.Close()
	before := db.now()
	start := time.Now()
	var server time.Time
	if err := conn.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&server); err != nil {
		return 0, translate(err)
	}
	mid := before.Add(time.Since(start) / 2)
	return mid.Sub(server), nil
}

// WalletTotals sums every wallet of each property: Property set, User empty, UpdatedAt
// the latest change. One pass over the wallets table, so callers cache it (the metrics
// refresh it on a timer, not per scrape). Postgres sums in SQL; SQLite keeps money as
// TEXT, which it would sum as floats, so there the rows are summed in Go.
func (db *DB) WalletTotals(ctx context.Context) ([]rewards.Balance, error) {
	g := db.gorm.WithContext(ctx)
	q := `SELECT property, pending, available, redeemed, lifetime_earned FROM wallets ORDER BY property`
	if db.dialect == Postgres {
		q = `SELECT property, SUM(pending)::text, SUM(available)::text, SUM(redeemed)::text, SUM(lifetime_earned)::text
			FROM wallets GROUP BY property ORDER BY property`
	}
	rows, err := rawQuery(g, q)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []rewards.Balance
	for rows.Next() {
		var property string
		var pending, available, redeemed, lifetime decimal.Decimal
		if err := rows.Scan(&property, &pending, &available, &redeemed, &lifetime); err != nil {
			return nil, translate(err)
		}
		if len(out) == 0 || out[len(out)-1].Property != property {
			out = append(out, rewards.Balance{Property: property})
		}
		t := &out[len(out)-1]
		t.Pending = t.Pending.Add(pending)
		t.Available = t.Available.Add(available)
		t.Redeemed = t.Redeemed.Add(redeemed)
		t.LifetimeEarned = t.LifetimeEarned.Add(lifetime)
	}
	return out, translate(rows.Err())
}

// QuarantineReasons counts the quarantined events of property ("" for every property)
// by property and reason, the largest group first.
func (db *DB) QuarantineReasons(ctx context.Context, property string, fn func(property, reason string, n int64)) error {
	g := db.gorm.WithContext(ctx)
	q := `SELECT property, reason, COUNT(*) FROM inbox WHERE status = ` + statusLiteral(rewards.StatusQuarantined)
	var args []any
	if property != "" {
		q, args = q+` AND property = ?`, append(args, property)
	}
	rows, err := rawQuery(g, q+` GROUP BY property, reason ORDER BY COUNT(*) DESC, property, reason`, args...)
	if err != nil {
		return translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var p, reason string
		var n int64
		if err := rows.Scan(&p, &reason, &n); err != nil {
			return translate(err)
		}
		fn(p, reason, n)
	}
	return translate(rows.Err())
}

// QuarantinedIDs returns up to limit ids above after of property's quarantined events
// with exactly this reason, oldest first: what "replay all of a reason" replays.
func (db *DB) QuarantinedIDs(ctx context.Context, property, reason string, after int64, limit int) ([]int64, error) {
	var ids []int64
	err := query(db.gorm.WithContext(ctx), &ids, `SELECT id FROM inbox WHERE status = `+statusLiteral(rewards.StatusQuarantined)+`
		AND property = ? AND reason = ? AND id > ? ORDER BY id LIMIT ?`, property, reason, after, limit)
	return ids, translate(err)
}

// EndConsoleSession records that the console session with nonce, valid until expiry, was
// signed out: ConsoleSessionEnded reports it from then on, on every replica. It also
// removes the records of sessions that have expired since, which the cookie's own expiry
// refuses anyway. Signing out twice is the same as once.
func (db *DB) EndConsoleSession(ctx context.Context, nonce string, expiry time.Time) error {
	return db.tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM console_signouts WHERE expires_at < ?`, db.now()).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO console_signouts (nonce, expires_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING`,
			nonce, expiry.UTC().Truncate(time.Microsecond)).Error
	})
}

// ConsoleSessionEnded reports whether the console session with nonce was signed out.
func (db *DB) ConsoleSessionEnded(ctx context.Context, nonce string) (bool, error) {
	var n int64
	err := db.gorm.WithContext(ctx).Raw(`SELECT count(*) FROM console_signouts WHERE nonce = ?`, nonce).Scan(&n).Error
	return n > 0, translate(err)
}
