package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// True-ups (issue 14; the math is rewards.TrueUp). Booked revenue is kept per property
// and day; a true-up reads the sessions received on its days, releases part of what they
// withheld to their users in one transaction, and records each day it trued up under a
// primary key, so a day is trued up once whatever the replicas and retries. On Postgres
// the transaction first takes an advisory lock per property, so concurrent true-ups of
// one property queue instead of racing to that key.

// dayBounds returns the instants [from 00:00, to+1 00:00) of inclusive UTC days.
func dayBounds(from, to string) (time.Time, time.Time, error) {
	f, err := time.Parse(time.DateOnly, from)
	if err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("store: day %q: %w", from, rewards.ErrInvalidRequest)
	}
	t, err := time.Parse(time.DateOnly, to)
	if err != nil || t.Before(f) {
		return time.Time{}, time.Time{}, fmt.Errorf("store: day %q: %w", to, rewards.ErrInvalidRequest)
	}
	return f, t.AddDate(0, 0, 1), nil
}

// daysOf lists the days from..to inclusive.
func daysOf(from, to time.Time) []string {
	var out []string
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		out = append(out, d.Format(time.DateOnly))
	}
	return out
}

// ImportBooked records booked revenue (see rewards.BookedImport): all of it or, on an
// error, none. A day trued up already whose amount changes is rewards.ErrTruedUp unless
// the import is a correction.
func (db *DB) ImportBooked(ctx context.Context, in rewards.BookedImport) (rewards.BookedImported, error) {
	var out rewards.BookedImported
	for _, d := range in.Days {
		if _, err := time.Parse(time.DateOnly, d.Day); err != nil || d.RevenueUSD.IsNegative() || rewards.CheckAmount(d.RevenueUSD) != nil {
			return out, fmt.Errorf("store: booked revenue %s of %s: %w", d.RevenueUSD, d.Day, rewards.ErrInvalidRequest)
		}
	}
	if in.Actor == "" {
		return out, fmt.Errorf("store: booked revenue import without an actor: %w", rewards.ErrInvalidRequest)
	}
	err := db.tx(ctx, func(tx *gorm.DB) error {
		out = rewards.BookedImported{}
		// The true-up lock: an import waits for a true-up of the property in progress
		// (which reads the booked revenue and the open corrections), so it is counted by
		// that run or refused/corrected after it, never lost in between.
		if err := db.lockTrueUps(tx, in.Property); err != nil {
			return err
		}
		now := db.now()
		var refused []string
		for _, d := range in.Days {
			var prev []string
			if err := query(tx, &prev, `SELECT revenue_usd FROM booked_revenue WHERE property = ? AND day = ?`, in.Property, d.Day); err != nil {
				return err
			}
			if len(prev) == 0 {
				if _, err := rawExec(tx, `INSERT INTO booked_revenue (property, day, revenue_usd, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
					in.Property, d.Day, d.RevenueUSD.String(), now, now); err != nil {
					return err
				}
				out.Inserted++
				continue
			}
			old, err := decimal.NewFromString(prev[0])
			if err != nil {
				return err
			}
			if old.Equal(d.RevenueUSD) {
				out.Unchanged++
				continue
			}
			var trued []int64
			if err := query(tx, &trued, `SELECT trueup_id FROM trueup_days WHERE property = ? AND day = ?`, in.Property, d.Day); err != nil {
				return err
			}
			if len(trued) > 0 {
				if !in.Correction {
					refused = append(refused, d.Day)
					continue
				}
				if _, err := rawExec(tx, `INSERT INTO booked_corrections (property, day, old_usd, new_usd, actor, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
					in.Property, d.Day, old.String(), d.RevenueUSD.String(), in.Actor, now); err != nil {
					return err
				}
				if err := writeAudit(tx, rewards.AuditEntry{Actor: in.Actor, Action: rewards.AuditBooked, Property: in.Property,
					Target: "day:" + d.Day, Reason: "correction of a day trued up",
					Detail: fmt.Sprintf("booked %s → %s USD; counted in the next true-up", old, d.RevenueUSD), CreatedAt: now}); err != nil {
					return err
				}
				out.Corrected++
			} else {
				out.Replaced++
			}
			if _, err := rawExec(tx, `UPDATE booked_revenue SET revenue_usd = ?, updated_at = ? WHERE property = ? AND day = ?`,
				d.RevenueUSD.String(), now, in.Property, d.Day); err != nil {
				return err
			}
		}
		if len(refused) > 0 {
			return fmt.Errorf("store: booked revenue of %s changed after the true-up (send correction: true to record a correction): %w",
				strings.Join(refused, ", "), rewards.ErrTruedUp)
		}
		if out.Inserted+out.Replaced > 0 {
			// Booked revenue decides the next release: who recorded it is audited too.
			if err := writeAudit(tx, rewards.AuditEntry{Actor: in.Actor, Action: rewards.AuditBooked, Property: in.Property,
				Target:    "days:" + in.Days[0].Day + ".." + in.Days[len(in.Days)-1].Day,
				Detail:    fmt.Sprintf("%d new, %d replaced, %d unchanged, %d corrections", out.Inserted, out.Replaced, out.Unchanged, out.Corrected),
				CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// lockTrueUps serializes true-ups and booked-revenue imports of one property until the
// transaction ends (Postgres; SQLite's immediate transactions serialize every writer).
func (db *DB) lockTrueUps(tx *gorm.DB, property string) error {
	if db.dialect != Postgres {
		return nil
	}
	_, err := rawExec(tx, `SELECT pg_advisory_xact_lock(hashtext(?))`, "tally.trueup:"+property)
	return err
}

// lockTrueUpsOf takes the true-up lock of each property with a session among items, in
// property order.
func (db *DB) lockTrueUpsOf(tx *gorm.DB, items []*applyItem) error {
	var props []string
	for _, it := range items {
		if it.status == "" && it.event.Session != nil && !slices.Contains(props, it.property) {
			props = append(props, it.property)
		}
	}
	slices.Sort(props)
	for _, p := range props {
		if err := db.lockTrueUps(tx, p); err != nil {
			return err
		}
	}
	return nil
}

// lateTrueUps gives the sessions a replay has just credited whose receipt day a true-up
// had already covered (they were quarantined then, in its estimate with nothing credited)
// what that true-up would have given them had they been applied in time: the release of
// their withheld buffer at its ratio (rewards.SessionRelease) and their shortfall booked
// (SessionShortfall), under the run's ref, both added to the run's and the day's figures.
// Without it their buffer stayed in @buffer for good, since a day is trued up once. Only a
// replay can credit such a session: TrueUp refuses a period while events received in it
// wait for the applier.
//
// The releases go to wallets apply has locked (the session's user's, in wallets) and are
// saved with the batch's other changes to them.
func (db *DB) lateTrueUps(tx *gorm.DB, items []*applyItem, wallets map[walletKey]*wallet) error {
	l := db.newLedger(tx)
	for _, it := range items {
		if it.status != rewards.StatusApplied || it.event.Session == nil {
			continue
		}
		type sessionRow struct {
			UserID                                  string
			Gross, Withheld, Credited, CappedExcess decimal.Decimal
			Buffer, SessionCap                      decimal.NullDecimal
		}
		var ss []sessionRow
		if err := query(tx, &ss, `SELECT user_id, gross, withheld, credited, capped_excess, buffer, session_cap FROM sessions WHERE inbox_id = ?`,
			it.id); err != nil {
			return err
		}
		if len(ss) == 0 || !ss[0].Buffer.Valid {
			continue // no session credited (below the minimum duration, say)
		}
		lock := ""
		if db.dialect == Postgres {
			lock = ` FOR UPDATE` // SQLite's writer is alone
		}
		type dayRow struct {
			TrueupID            int64
			Released, Shortfall decimal.Decimal
		}
		day := rewards.DayOf(it.receivedAt)
		var ds []dayRow
		if err := query(tx, &ds, `SELECT trueup_id, released, shortfall FROM trueup_days WHERE property = ? AND day = ?`+lock,
			it.property, day); err != nil {
			return err
		}
		if len(ds) == 0 {
			continue // not trued up: the true-up of the day will count it
		}
		type runRow struct {
			Estimated, Ratio, Released, Shortfall decimal.Decimal
		}
		var rs []runRow
		if err := query(tx, &rs, `SELECT estimated, ratio, released, shortfall FROM trueups WHERE id = ?`+lock,
			ds[0].TrueupID); err != nil {
			return err
		}
		if len(rs) == 0 || !rs[0].Estimated.IsPositive() {
			continue // a run with no estimate released nothing and had no ratio
		}
		s, run := ss[0], rs[0]
		ts := rewards.TrueUpSession{User: s.UserID, Day: day, Gross: s.Gross, Withheld: s.Withheld, Credited: s.Credited,
			Capped: s.CappedExcess, Buffer: s.Buffer.Decimal, SessionCap: s.SessionCap.Decimal}
		res := rewards.TrueUpResult{Releases: map[string]decimal.Decimal{}, Shortfall: rewards.SessionShortfall(ts, run.Ratio)}
		if rel := rewards.SessionRelease(ts, run.Ratio); rel.IsPositive() {
			res.Releases[s.UserID], res.Released = rel, rel
		}
		if res.Released.IsZero() && !res.Shortfall.IsPositive() {
			continue
		}
		ref := "trueup:" + strconv.FormatInt(ds[0].TrueupID, 10)
		if res.Released.IsPositive() {
			w := wallets[walletKey{it.property, s.UserID}]
			if w == nil {
				return fmt.Errorf("store: event %d releases to %q without the wallet locked", it.id, s.UserID)
			}
			// The event's own: its view lists what its replay credited, release included.
			if err := db.release(l, w, res.Released, posting{inboxID: &it.id, ref: ref}); err != nil {
				return err
			}
		}
		db.bookShortfall(l, it.property, res.Shortfall, posting{inboxID: &it.id, ref: ref})
		// Sums taken here: SQLite keeps money as TEXT.
		if err := tx.Exec(`UPDATE trueup_days SET released = ?, shortfall = ? WHERE property = ? AND day = ?`,
			rewards.Format(ds[0].Released.Add(res.Released)), rewards.Format(ds[0].Shortfall.Add(res.Shortfall)), it.property, day).Error; err != nil {
			return err
		}
		it.lateNote = fmt.Sprintf("its day %s was trued up by trueup:%d: released %s, shortfall %s, at its ratio %s",
			day, ds[0].TrueupID, rewards.Format(res.Released), rewards.Format(res.Shortfall), rewards.Format(run.Ratio))
		// The run's estimate, ratio, session and user counts stay what the run found: a
		// session it counted kept quarantined is in them already, and one it left out (an
		// SPP addressed to another Gamezop property then, or one not decodable) is released
		// at the run's ratio all the same, its best figure for the day.
		if err := tx.Exec(`UPDATE trueups SET released = ?, shortfall = ? WHERE id = ?`,
			rewards.Format(run.Released.Add(res.Released)), rewards.Format(run.Shortfall.Add(res.Shortfall)), ds[0].TrueupID).Error; err != nil {
			return err
		}
	}
	return l.flush()
}

// trueUpSession is a session row as true-ups read it.
type trueUpSession struct {
	rewards.TrueUpSession
	hasRule     bool // buffer and cap were kept with the session
	quarantined bool // an SPP kept quarantined: in the estimate only
}

// periodSessions reads what the estimate of property's days in [from, to) is made of:
// its sessions, and the SPP events received then that are kept quarantined, whose
// revenue is in the booked revenue though they credited nobody (a forged sub token,
// say). An event quarantined because its property-id names another Gamezop property
// than gamezopID is left out: that property's revenue is not in this one's booked
// figure, and counting it would lower r. (One without a property-id is counted: it may
// be this property's; counting it lowers r, which releases less, never more.)
//
// Both come from one statement, so from one snapshot: read in two, a replay committing
// between them (its session written, its event no longer quarantined) would be in
// neither.
func periodSessions(tx *gorm.DB, property, gamezopID string, from, to time.Time) ([]trueUpSession, error) {
	rows, err := rawQuery(tx, `SELECT 0, user_id, received_at, revenue_usd, gross, withheld, credited, capped_excess, buffer, session_cap, NULL
		FROM sessions WHERE property = ? AND received_at >= ? AND received_at < ?
		UNION ALL
		SELECT 1, '', received_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL, event
		FROM inbox WHERE status = `+statusLiteral(rewards.StatusQuarantined)+` AND property = ? AND source = ? AND received_at >= ? AND received_at < ?`,
		property, from, to, property, string(rewards.SourceGamezopSPP), from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []trueUpSession
	for rows.Next() {
		var (
			kept                                       int
			s                                          trueUpSession
			at                                         time.Time
			revenue, gross, withheld, credited, capped decimal.NullDecimal
			buffer, sessionCap                         decimal.NullDecimal
			raw                                        sql.NullString
		)
		if err := rows.Scan(&kept, &s.User, &at, &revenue, &gross, &withheld, &credited, &capped, &buffer, &sessionCap, &raw); err != nil {
			return nil, err
		}
		s.Day = rewards.DayOf(at)
		if kept == 1 {
			var ev rewards.Event
			if err := json.Unmarshal([]byte(raw.String), &ev); err != nil || ev.Session == nil {
				continue // not decoded as a session: no estimate to count
			}
			if gamezopID != "" && ev.Session.PropertyID != "" && ev.Session.PropertyID != gamezopID {
				continue // another Gamezop property's session
			}
			s.RevenueUSD, s.Gross, s.Withheld, s.Credited, s.Capped = ev.Session.RevenueUSD, decimal.Zero, decimal.Zero, decimal.Zero, decimal.Zero
			s.Buffer, s.SessionCap, s.hasRule, s.quarantined = decimal.Zero, decimal.Zero, true, true
			out = append(out, s)
			continue
		}
		s.RevenueUSD, s.Gross, s.Withheld, s.Credited, s.Capped = revenue.Decimal, gross.Decimal, withheld.Decimal, credited.Decimal, capped.Decimal
		s.Buffer, s.SessionCap, s.hasRule = buffer.Decimal, sessionCap.Decimal, buffer.Valid
		out = append(out, s)
	}
	return out, rows.Err()
}

// BookedDays returns the days from..to (inclusive) with their booked revenue, if any:
// what TrueUpView says of them without reading their sessions.
func (db *DB) BookedDays(ctx context.Context, property, from, to string) ([]rewards.TrueUpDay, error) {
	_, _, days, err := viewDays(from, to)
	if err != nil {
		return nil, err
	}
	out, err := bookedDays(db.gorm.WithContext(ctx), property, days)
	return out, translate(err)
}

// viewDays is the period from..to (inclusive) of a view: its bounds and its days, at
// most ten years of them.
func viewDays(from, to string) (start, end time.Time, days []string, err error) {
	if start, end, err = dayBounds(from, to); err != nil {
		return start, end, nil, err
	}
	days = daysOf(start, end)
	if len(days) > 3660 {
		return start, end, nil, fmt.Errorf("store: a period of %d days: %w", len(days), rewards.ErrInvalidRequest)
	}
	return start, end, days, nil
}

// bookedDays returns the period's days with their booked revenue, if any.
func bookedDays(tx *gorm.DB, property string, days []string) ([]rewards.TrueUpDay, error) {
	type row struct {
		Day        string
		RevenueUSD decimal.Decimal
	}
	var rows []row
	if err := query(tx, &rows, `SELECT day, revenue_usd FROM booked_revenue WHERE property = ? AND day >= ? AND day <= ?`,
		property, days[0], days[len(days)-1]); err != nil {
		return nil, err
	}
	booked := map[string]decimal.Decimal{}
	for _, r := range rows {
		booked[r.Day] = r.RevenueUSD
	}
	out := make([]rewards.TrueUpDay, len(days))
	for i, d := range days {
		b, ok := booked[d]
		out[i] = rewards.TrueUpDay{Day: d, Booked: b, HasBooked: ok}
	}
	return out, nil
}

// TrueUpView returns each day of q's period with its sessions' figures, its booked
// revenue and what true-ups released so far (q's key, hash and actor are not used). A
// day with booked revenue not trued up yet has as its Shortfall what a true-up of that
// day alone would book: rewards.SessionShortfall of each session at the day's ratio,
// under the buffer it was credited with (the current rule's, q's default, for sessions
// recorded before sessions kept theirs).
func (db *DB) TrueUpView(ctx context.Context, q rewards.TrueUpRequest) ([]rewards.TrueUpDay, error) {
	start, end, days, err := viewDays(q.From, q.To)
	if err != nil {
		return nil, err
	}
	var out []rewards.TrueUpDay
	err = db.read(ctx, func(tx *gorm.DB) error {
		out, err = bookedDays(tx, q.Property, days)
		if err != nil {
			return err
		}
		idx := map[string]int{}
		for i, d := range out {
			idx[d.Day] = i
		}
		sessions, err := periodSessions(tx, q.Property, q.GamezopPropertyID, start, end)
		if err != nil {
			return err
		}
		for _, s := range sessions {
			d := &out[idx[s.Day]]
			d.Sessions++
			d.Estimated = d.Estimated.Add(s.RevenueUSD)
			d.Gross = d.Gross.Add(s.Gross)
			d.Credited = d.Credited.Add(s.Credited)
			d.Withheld = d.Withheld.Add(s.Withheld)
			d.Capped = d.Capped.Add(s.Capped)
		}
		type doneRow struct {
			Day       string
			Released  decimal.Decimal
			Shortfall decimal.Decimal
		}
		var done []doneRow
		if err := query(tx, &done, `SELECT day, released, shortfall FROM trueup_days WHERE property = ? AND day >= ? AND day <= ?`,
			q.Property, days[0], days[len(days)-1]); err != nil {
			return err
		}
		for _, r := range done {
			if i, ok := idx[r.Day]; ok {
				out[i].Released, out[i].Shortfall, out[i].TruedUp = r.Released, r.Shortfall, true
			}
		}
		for _, s := range sessions {
			d := &out[idx[s.Day]]
			r, ok := d.Ratio()
			if d.TruedUp || !ok {
				continue
			}
			if !s.hasRule {
				s.Buffer, s.SessionCap = q.DefaultBuffer, q.DefaultSessionCap
			}
			d.Shortfall = d.Shortfall.Add(rewards.SessionShortfall(s.TrueUpSession, r))
		}
		return nil
	})
	if err != nil {
		return nil, translate(err)
	}
	return out, nil
}

type trueUpRow struct {
	ID             int64
	Property       string
	FromDay        string
	ToDay          string
	IdempotencyKey string
	RequestHash    string
	Actor          string
	Estimated      decimal.Decimal
	Booked         decimal.Decimal
	Ratio          decimal.Decimal
	Released       decimal.Decimal
	Shortfall      decimal.Decimal
	Users          int64
	Sessions       int64
	CreatedAt      time.Time
}

func (r trueUpRow) toRun() rewards.TrueUpRun {
	return rewards.TrueUpRun{ID: r.ID, Property: r.Property, From: r.FromDay, To: r.ToDay, Actor: r.Actor, Estimated: r.Estimated,
		Booked: r.Booked, Ratio: r.Ratio, Released: r.Released, Shortfall: r.Shortfall, Users: r.Users, Sessions: r.Sessions,
		CreatedAt: r.CreatedAt.UTC()}
}

// findTrueUp reads the run of key as it answered: released and shortfall without what
// late sessions added to them since (migration 00026; a run from before has only its
// running totals).
func findTrueUp(tx *gorm.DB, property, key string) (*trueUpRow, error) {
	var rows []trueUpRow
	err := query(tx, &rows, `SELECT id, property, from_day, to_day, idempotency_key, request_hash, actor, estimated, booked, ratio,
		coalesce(answered_released, released) AS released, coalesce(answered_shortfall, shortfall) AS shortfall, users, sessions,
		created_at FROM trueups WHERE property = ? AND idempotency_key = ?`, property, key)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// trueUpMargin is how long after a day's end its true-up waits: an event stamped just
// before midnight may still be in a receiver's group commit, or stamped by a replica whose
// clock is a little behind.
const trueUpMargin = time.Minute

// walletChunk bounds the wallets one lockWallets statement takes.
func walletChunk(tx *gorm.DB) int { return max(1, maxParams(tx)/4) }

// TrueUp runs a true-up (rewards.TrueUp) once per idempotency key: the same key and
// request again returns the first run and replayed; with another request it is
// rewards.ErrIdempotencyMismatch. A day of the period without booked revenue is
// rewards.ErrNotBooked, one trued up already rewards.ErrTruedUp; events received in the
// period that the applier has not applied yet make it rewards.ErrUnavailable (retry
// shortly), since their sessions would miss the true-up. Everything commits together:
// the releases (one buffer_release entry per user to pending, from @buffer, maturing at
// once), the shortfall entry, the trued-up days, the corrections it accounted for and
// the audit entry.
func (db *DB) TrueUp(ctx context.Context, req rewards.TrueUpRequest) (rewards.TrueUpRun, bool, error) {
	start, end, err := dayBounds(req.From, req.To)
	if err != nil {
		return rewards.TrueUpRun{}, false, err
	}
	switch {
	case strings.TrimSpace(req.IdempotencyKey) == "" || req.Actor == "" || req.Property == "":
		return rewards.TrueUpRun{}, false, fmt.Errorf("store: true-up needs a property, a key and an actor: %w", rewards.ErrInvalidRequest)
	case end.After(db.now()):
		return rewards.TrueUpRun{}, false, fmt.Errorf("store: true-up of %s..%s: the last day has not ended: %w",
			req.From, req.To, rewards.ErrInvalidRequest)
	case end.Add(trueUpMargin).After(db.now()):
		// Unavailable (503, retry), as the README says: the same request succeeds in a
		// moment, once receipts stamped before midnight are committed.
		return rewards.TrueUpRun{}, false, fmt.Errorf("store: true-up of %s..%s: the last day ended less than %s ago: %w",
			req.From, req.To, trueUpMargin, rewards.ErrUnavailable)
	}
	var out rewards.TrueUpRun
	var replayed bool
	err = db.tx(ctx, func(tx *gorm.DB) error {
		out, replayed = rewards.TrueUpRun{}, false
		if err := db.lockTrueUps(tx, req.Property); err != nil {
			return err
		}
		if prev, err := findTrueUp(tx, req.Property, req.IdempotencyKey); err != nil || prev != nil {
			if err != nil {
				return err
			}
			if prev.RequestHash != req.RequestHash {
				return fmt.Errorf("store: true-up key %q was used for another request: %w", req.IdempotencyKey, rewards.ErrIdempotencyMismatch)
			}
			out, replayed = prev.toRun(), true
			return nil
		}
		days := daysOf(start, end)
		var trued []string
		if err := query(tx, &trued, `SELECT day FROM trueup_days WHERE property = ? AND day >= ? AND day <= ? ORDER BY day`,
			req.Property, days[0], days[len(days)-1]); err != nil {
			return err
		}
		if len(trued) > 0 {
			return fmt.Errorf("store: %s trued up already: %w", strings.Join(trued, ", "), rewards.ErrTruedUp)
		}
		var waiting []int64
		if err := query(tx, &waiting, `SELECT id FROM inbox WHERE status = `+statusLiteral(rewards.StatusRecorded)+
			` AND property = ? AND received_at < ? LIMIT 1`, req.Property, end); err != nil {
			return err
		}
		if len(waiting) > 0 {
			return fmt.Errorf("store: events received in the period still wait for the applier: %w", rewards.ErrUnavailable)
		}
		booked, err := bookedDays(tx, req.Property, days)
		if err != nil {
			return err
		}
		type correction struct {
			ID     int64
			OldUsd decimal.Decimal
			NewUsd decimal.Decimal
		}
		var corrections []correction
		if err := query(tx, &corrections, `SELECT id, old_usd, new_usd FROM booked_corrections WHERE property = ? AND trueup_id IS NULL`,
			req.Property); err != nil {
			return err
		}
		extra := decimal.Zero
		for _, c := range corrections {
			extra = extra.Add(c.NewUsd.Sub(c.OldUsd))
		}
		rows, err := periodSessions(tx, req.Property, req.GamezopPropertyID, start, end)
		if err != nil {
			return err
		}
		sessions := make([]rewards.TrueUpSession, 0, len(rows))
		unknown := 0
		for _, s := range rows {
			if !s.hasRule {
				// Recorded before sessions kept their rule: the current rule's buffer is
				// the one they were credited under only if it reproduces what they
				// withheld, exactly (a multiplication, no division).
				if !rewards.Mul(s.Gross, req.DefaultBuffer).Equal(s.Withheld) {
					unknown++
					continue
				}
				s.Buffer, s.SessionCap = req.DefaultBuffer, req.DefaultSessionCap
			}
			sessions = append(sessions, s.TrueUpSession)
		}
		if unknown > 0 {
			return fmt.Errorf("store: %d sessions of %s..%s withheld under a buffer other than the current rule's: %w",
				unknown, req.From, req.To, rewards.ErrRuleUnknown)
		}
		res, err := rewards.TrueUp(booked, sessions, extra)
		if err != nil {
			return err
		}
		now := db.now()
		run := trueUpRow{Property: req.Property, FromDay: req.From, ToDay: req.To, IdempotencyKey: req.IdempotencyKey,
			RequestHash: req.RequestHash, Actor: req.Actor, Estimated: res.Estimated, Booked: res.Booked, Ratio: res.Ratio,
			Released: res.Released, Shortfall: res.Shortfall, Users: int64(len(res.Releases)), Sessions: int64(len(sessions)), CreatedAt: now}
		if err := tx.Raw(`INSERT INTO trueups (property, from_day, to_day, idempotency_key, request_hash, actor, estimated, booked, ratio,
			released, shortfall, answered_released, answered_shortfall, users, sessions, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			run.Property, run.FromDay, run.ToDay, run.IdempotencyKey, run.RequestHash, run.Actor, run.Estimated.String(), run.Booked.String(),
			run.Ratio.String(), run.Released.String(), run.Shortfall.String(), run.Released.String(), run.Shortfall.String(),
			run.Users, run.Sessions, now).Scan(&run.ID).Error; err != nil {
			return err
		}
		ref := "trueup:" + strconv.FormatInt(run.ID, 10)
		if err := db.postReleases(tx, req.Property, res, ref); err != nil {
			return err
		}
		// A run with no estimate (no session credited in the period yet) compared nothing
		// and released nothing: its days stay open. Marked trued up, a session replayed
		// into them later kept its buffer in @buffer for good (no ratio to release it
		// at, and no run could take the days again), and a correction of their booked
		// revenue was carried into the next period's B, unrelated to its sessions.
		if res.Estimated.IsPositive() {
			dayRows := make([][]any, len(res.Days))
			for i, d := range res.Days {
				dayRows[i] = []any{req.Property, d.Day, run.ID, d.Released.String(), d.Shortfall.String()}
			}
			if err := insertRows(tx, `INSERT INTO trueup_days (property, day, trueup_id, released, shortfall) VALUES `, dayRows, ""); err != nil {
				return err
			}
		}
		if res.CorrectionsCounted {
			for _, c := range corrections {
				if _, err := rawExec(tx, `UPDATE booked_corrections SET trueup_id = ? WHERE id = ?`, run.ID, c.ID); err != nil {
					return err
				}
			}
			if res.Carried.IsNegative() {
				// The part of the corrections down this period could not absorb (its B
				// counted as zero) waits for the next true-up, as a correction of its own
				// from that amount to nothing, by this run.
				if _, err := rawExec(tx, `INSERT INTO booked_corrections (property, day, old_usd, new_usd, actor, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
					req.Property, req.To, rewards.Format(res.Carried.Neg()), "0", ref, now); err != nil {
					return err
				}
			}
		}
		if err := writeAudit(tx, rewards.AuditEntry{Actor: req.Actor, Action: rewards.AuditTrueUp, Property: req.Property,
			Target: ref, Reason: "true-up of " + req.From + ".." + req.To,
			Detail: fmt.Sprintf("r=%s, released %s to %d users, shortfall %s", res.Ratio, res.Released, len(res.Releases), res.Shortfall) +
				carriedNote(res.Carried),
			CreatedAt: now}); err != nil {
			return err
		}
		out = run.toRun()
		if db.beforeTrueUpCommit != nil {
			return db.beforeTrueUpCommit(tx)
		}
		return nil
	})
	if err != nil {
		// The primary key of trueup_days is the last guard (the lock and the check above
		// come first): a day trued up meanwhile is reported as such.
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "23505" && pg.ConstraintName == "trueup_days_pkey" {
			return rewards.TrueUpRun{}, false, fmt.Errorf("store: true-up %s..%s: %w", req.From, req.To, rewards.ErrTruedUp)
		}
		return rewards.TrueUpRun{}, false, err
	}
	return out, replayed, nil
}

// carriedNote is what a true-up's audit entry says of a correction carried forward.
func carriedNote(carried decimal.Decimal) string {
	if !carried.IsNegative() {
		return ""
	}
	return fmt.Sprintf("; B counted as 0, a correction of %s carried to the next true-up", rewards.Format(carried))
}

// postReleases credits each user's release and books the shortfall, through the wallet.
func (db *DB) postReleases(tx *gorm.DB, property string, res rewards.TrueUpResult, ref string) error {
	users := make([]string, 0, len(res.Releases))
	for u := range res.Releases {
		users = append(users, u)
	}
	slices.Sort(users) // the lock order (property, user), across chunks too
	l := db.newLedger(tx)
	var locked []*wallet
	per := walletChunk(tx)
	for i := 0; i < len(users); i += per {
		keys := make([]walletKey, 0, per)
		for _, u := range users[i:min(i+per, len(users))] {
			keys = append(keys, walletKey{property, u})
		}
		ws, err := lockWallets(tx, keys, db.now())
		if err != nil {
			return err
		}
		for _, k := range keys {
			w := ws[k]
			if err := db.release(l, w, res.Releases[k.user], posting{ref: ref}); err != nil {
				return err
			}
			locked = append(locked, w)
		}
	}
	db.bookShortfall(l, property, res.Shortfall, posting{ref: ref})
	if err := l.flush(); err != nil {
		return err
	}
	return db.saveWallets(tx, locked)
}

// release posts amount from the buffer to the pending of w, which the caller has locked
// and saves, as p (its time is taken here).
func (db *DB) release(l *ledger, w *wallet, amount decimal.Decimal, p posting) error {
	at := w.stamp(db.now())
	e := rewards.BufferReleaseEntry(amount, at)
	next, err := w.Wallet.Post(e)
	if err != nil {
		return fmt.Errorf("release to %q: %w", w.UserID, err)
	}
	p.at = at
	l.add(w, e, p)
	w.set(next, at)
	return nil
}

// bookShortfall books a positive shortfall of property as p (its time is taken here): an
// entry with no user leg, on no wallet.
func (db *DB) bookShortfall(l *ledger, property string, shortfall decimal.Decimal, p posting) {
	if shortfall.IsPositive() {
		p.at = db.now()
		l.add(&wallet{Property: property}, rewards.ShortfallEntry(shortfall), p)
	}
}
