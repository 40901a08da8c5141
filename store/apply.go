package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Apply claims events, applies each and marks it applied or quarantined, all in one
// transaction: a batch either commits whole, effects and marks together, or leaves every
// event as it was. On Postgres the claim locks the rows and skips those another applier
// holds (FOR UPDATE SKIP LOCKED), so any number of appliers on one database take disjoint
// batches and never apply an event twice; on SQLite the immediate transaction already
// makes each Apply the only writer. An event whose rules fail to evaluate is quarantined
// with the reason and the rest of the batch still applies. Apply returns what became of
// each claimed event, in inbox order; none when nothing matched.
func (db *DB) Apply(ctx context.Context, c rewards.Claim, decide rewards.Decider) ([]rewards.Applied, error) {
	if c.Status != rewards.StatusRecorded && c.Status != rewards.StatusQuarantined {
		return nil, fmt.Errorf("store: apply events that are %q: %w", c.Status, rewards.ErrInvalidRequest)
	}
	if c.Limit <= 0 {
		c.Limit = 500
	}
	var out []rewards.Applied
	err := db.tx(ctx, func(tx *gorm.DB) error {
		out = nil
		var floor int64
		if db.dialect == Postgres {
			// Every statement of a batch reaches its rows by key, with its keys bound as
			// arrays, and each statement is prepared once per connection. A plan made
			// while a table was small (a new database, before autovacuum first analyzes
			// it) scans the whole table; kept as the statement's plan, it went on
			// scanning wallets and user_days for every batch as they grew, which doubled
			// a batch's time. As in settlement, the batch's plans use the indexes (the
			// wallets' update, which other paths share, sets this itself: saveWallets);
			// so do the claim floor's round and the claim.
			if _, err := rawExec(tx, `SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
			if db.claimsFromFloor(c) {
				f, err := db.advanceFloor(tx)
				if err != nil {
					return err
				}
				floor = f
			}
		}
		kept, err := db.claim(tx, c, floor)
		if err != nil || len(kept) == 0 {
			return err
		}
		replay := c.Status == rewards.StatusQuarantined
		items := make([]*applyItem, len(kept))
		for i, k := range kept {
			var d rewards.Decision
			if k.Undecodable == "" || replay {
				d = decide(k) // a replay decodes the raw body again, which may recover it
			}
			it := &applyItem{id: k.ID, property: k.Property, event: d.Event, rules: d.Rules, receivedAt: k.ReceivedAt,
				replay: replay}
			switch {
			case k.Undecodable != "" && d.Event.Kind == "":
				// Not recovered: kept as it is, its stored form untouched for a version
				// that can read it.
				it.quarantine(k.Undecodable)
				it.keepEvent = true
			case d.Quarantine != "":
				it.quarantine(d.Quarantine)
			case d.Rules == nil:
				it.quarantine("property " + k.Property + " is not configured")
			}
			items[i] = it
		}
		if replay {
			// A replayed session may belong to a day a true-up has covered: it takes the
			// true-up lock of its property first, in the order TrueUp takes it (before any
			// wallet), so the two never run at once and one always sees the other.
			if err := db.lockTrueUpsOf(tx, items); err != nil {
				return err
			}
		}
		now, wallets, err := db.apply(tx, items)
		if err != nil {
			return err
		}
		if replay {
			if err := db.lateTrueUps(tx, items, wallets); err != nil {
				return err
			}
		}
		// Saved once, after every change the batch makes to them: one balance.updated
		// per wallet per transaction, with the batch's whole change.
		list := make([]*wallet, 0, len(wallets))
		for _, w := range wallets {
			list = append(list, w)
		}
		if err := db.saveWallets(tx, list); err != nil {
			return err
		}
		if err := db.mark(tx, items, now, replay); err != nil {
			return err
		}
		// event.quarantined, committed with the mark; a replay that leaves an event
		// quarantined announces it again, with the reason as it is now.
		ob := db.newOutbox()
		for i, it := range items {
			if it.status == rewards.StatusQuarantined {
				if err := ob.eventQuarantined(quarantinedJSON{Property: it.property, User: kept[i].User, EventID: strconv.FormatInt(it.id, 10),
					Source: string(kept[i].Source), Reason: it.reason, Replayed: replay,
					ReceivedAt: it.receivedAt}, now); err != nil {
					return err
				}
			}
		}
		if err := ob.flush(tx); err != nil {
			return err
		}
		if c.Actor != "" {
			for i, it := range items {
				detail := it.status
				if it.reason != "" {
					detail += ": " + it.reason
				}
				if was := kept[i].Reason; was != "" && replay {
					// The event's row now holds the replay's outcome; the log keeps why it
					// had been quarantined.
					detail += " (quarantined before: " + was + ")"
				}
				if it.lateNote != "" {
					detail += "; " + it.lateNote
				}
				if err := writeAudit(tx, rewards.AuditEntry{Actor: c.Actor, Action: rewards.AuditReplay, Property: it.property,
					Target: "event:" + strconv.FormatInt(it.id, 10), Detail: detail, CreatedAt: now}); err != nil {
					return err
				}
			}
		}
		out = make([]rewards.Applied, len(items))
		for i, it := range items {
			out[i] = rewards.Applied{ID: it.id, Property: it.property, Source: kept[i].Source, Status: it.status, Reason: it.reason,
				ReceivedAt: it.receivedAt, AppliedAt: now}
		}
		if db.afterApply != nil {
			return db.afterApply(tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claim reads, and on Postgres locks, the events c selects. A claim of the oldest
// recorded events on Postgres starts at floor (floor.go), the ids below it being known
// not to be recorded.
func (db *DB) claim(tx *gorm.DB, c rewards.Claim, floor int64) ([]rewards.Kept, error) {
	q, args := db.claimSQL(c, floor)
	rows, err := rawQuery(tx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rewards.Kept
	for rows.Next() {
		var r inboxRow
		var applied sql.NullTime
		if err := rows.Scan(&r.ID, &r.Property, &r.Source, &r.DedupeKey, &r.UserID, &r.Event, &r.RawBody, &r.ReceivedAt, &r.Status,
			&r.Reason, &applied); err != nil {
			return nil, err
		}
		if applied.Valid {
			r.AppliedAt = &applied.Time
		}
		out = append(out, r.toKept())
	}
	return out, rows.Err()
}

// claimsFromFloor says whether claim c starts at the claim floor: a claim of the oldest
// recorded events on Postgres (not of given ids, nor of quarantined events).
func (db *DB) claimsFromFloor(c rewards.Claim) bool {
	return db.dialect == Postgres && c.Status == rewards.StatusRecorded && len(c.IDs) == 0
}

// claimSQL is the statement claim runs, and its arguments.
func (db *DB) claimSQL(c rewards.Claim, floor int64) (string, []any) {
	// The status is written into the statement, not bound: only a literal lets the
	// planner use the partial index that holds exactly the recorded (or quarantined)
	// events; with a parameter, a cached generic plan scans the whole inbox.
	q := `SELECT ` + inboxColumns + ` FROM inbox WHERE status = ` + statusLiteral(c.Status)
	var args []any
	if len(c.IDs) > 0 {
		q += ` AND id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(c.IDs)), ", ") + `)`
		for _, id := range c.IDs {
			args = append(args, id)
		}
	}
	if c.Property != "" {
		q += ` AND property = ?`
		args = append(args, c.Property)
	}
	if c.AfterID > 0 {
		q += ` AND id > ?`
		args = append(args, c.AfterID)
	}
	if c.Reason != "" {
		// Checked again on Postgres after waiting for the row's lock, like the status:
		// an event another replay kept meanwhile with another reason is not claimed.
		q += ` AND reason = ?`
		args = append(args, c.Reason)
	}
	if db.claimsFromFloor(c) {
		q += ` AND id >= ?` // always there, even at 0: one statement, one plan
		args = append(args, floor)
	}
	q += ` ORDER BY id LIMIT ?`
	args = append(args, c.Limit)
	if db.dialect == Postgres {
		if len(c.IDs) > 0 || c.Status == rewards.StatusQuarantined {
			// Named events (a replay of one), and any replay: wait for whoever holds them,
			// then see whether they are still what was asked for. A replay that skipped an
			// event another replay held would walk past it, and report nothing of it if
			// that replay then rolled back; both lock in id order, so neither waits in a
			// cycle.
			q += ` FOR UPDATE`
		} else {
			q += ` FOR UPDATE SKIP LOCKED`
		}
	}
	return q, args
}

// statusLiteral is an inbox status as an SQL literal, for the partial indexes.
func statusLiteral(status string) string {
	switch status {
	case rewards.StatusRecorded, rewards.StatusApplied, rewards.StatusQuarantined:
		return "'" + status + "'"
	}
	panic("store: unknown inbox status " + status) // callers check the status first
}

// applyItem is one claimed event on its way through apply.
type applyItem struct {
	id         int64
	property   string
	event      rewards.Event
	rules      *rewards.Rules
	receivedAt time.Time // day buckets and holds count from receipt
	replay     bool      // a quarantined event applied again
	keepEvent  bool      // a replay must not write event over the stored one (undecodable)
	lateNote   string    // what a replay released or booked for a day trued up before (lateTrueUps)
	status     string    // set by apply: applied or quarantined
	reason     string
}

func (it *applyItem) quarantine(reason string) {
	it.status, it.reason = rewards.StatusQuarantined, reason
}

type walletKey struct{ property, user string }

// apply credits each item through rewards and writes what comes out. Wallets are locked
// up front in one fixed order, so concurrent batches cannot deadlock, and a user's day
// cap and claims are read and written by one transaction at a time. Everything is read
// and written with a few set-based statements per batch, not per event. It returns the
// time the batch is stamped with, taken after the locks, and the wallets it locked, which
// the caller saves (saveWallets) once it has made every change of the batch.
func (db *DB) apply(tx *gorm.DB, items []*applyItem) (time.Time, map[walletKey]*wallet, error) {
	needs := make([]rewards.Needs, len(items))
	var keys []walletKey
	var claimKeys []claimKey
	for i, it := range items {
		if it.status == rewards.StatusQuarantined {
			continue
		}
		n := rewards.NeedsOf(it.event, *it.rules, it.receivedAt)
		needs[i] = n
		if n.Wallet {
			keys = append(keys, walletKey{it.property, it.event.User})
		}
		for _, c := range n.Claims {
			claimKeys = append(claimKeys, claimKey{it.property, it.event.User, c})
		}
	}
	wallets, err := lockWallets(tx, keys, db.now())
	if err != nil {
		return time.Time{}, nil, err
	}
	// Stamped after the locks: on Postgres the claim and the locks gave this transaction
	// its id, which the payout report's cut waits on (report.go).
	now := db.now()
	claimed, err := loadClaims(tx, claimKeys)
	if err != nil {
		return now, nil, err
	}
	days, err := loadDays(tx, items, wallets)
	if err != nil {
		return now, nil, err
	}
	l := db.newLedger(tx)
	var sessions, seen [][]any
	touchedDays := map[dayKey]bool{}
	for i, it := range items {
		if it.status == rewards.StatusQuarantined {
			continue
		}
		ev := it.event
		w := wallets[walletKey{it.property, ev.User}]
		property := it.property
		st := rewards.State{Wallet: rewards.NewWallet(), Day: rewards.DayState{RevenueCredited: decimal.Zero},
			Claimed: func(c string) bool { return claimed[claimKey{property, ev.User, c}] }}
		day := dayKey{}
		if w != nil {
			st.Wallet = w.Wallet
			if ev.Kind == rewards.KindSession {
				day = dayKey{w.ID, rewards.DayOf(it.receivedAt)}
				st.Day.RevenueCredited = days[day]
			}
		}
		res, err := rewards.Credit(ev, *it.rules, st, it.receivedAt)
		if err != nil {
			it.quarantine("rules: " + err.Error())
			continue
		}
		if len(res.Entries) > 0 {
			if w == nil || !needs[i].Wallet {
				return now, nil, fmt.Errorf("store: event %d pays without the wallet of %q locked", it.id, ev.User)
			}
			at := w.stamp(now)
			for _, e := range res.Entries {
				for _, c := range e.ClaimedAs { // read as free, they must have been read
					if _, loaded := claimed[claimKey{it.property, ev.User, c}]; !loaded {
						return now, nil, fmt.Errorf("store: event %d checked claim %q that was not loaded", it.id, c)
					}
				}
				if e.Claim != "" {
					for _, c := range append([]string{e.Claim}, e.AlsoClaims...) {
						if _, loaded := claimed[claimKey{it.property, ev.User, c}]; !loaded {
							return now, nil, fmt.Errorf("store: event %d takes claim %q that was not loaded", it.id, c)
						}
						claimed[claimKey{it.property, ev.User, c}] = true
					}
				}
				l.add(w, e, posting{inboxID: &it.id, ref: fmt.Sprintf("event:%d", it.id), at: at})
			}
			w.set(res.Wallet, at)
		}
		for _, c := range res.Seen {
			k := claimKey{it.property, ev.User, c.Claim}
			if _, loaded := claimed[k]; !loaded {
				return now, nil, fmt.Errorf("store: event %d takes claim %q that was not loaded", it.id, c.Claim)
			}
			claimed[k] = true
			seen = append(seen, []any{it.property, ev.User, c.Claim, c.PaidBy, now})
		}
		if res.Session != nil {
			row, err := sessionRow(it, *res.Session)
			if err != nil {
				return now, nil, err
			}
			sessions = append(sessions, row)
			if day.wallet != 0 && res.Session.Credited.IsPositive() {
				days[day] = days[day].Add(res.Session.Credited)
				touchedDays[day] = true
			}
		}
		it.status, it.reason = rewards.StatusApplied, res.Note
	}
	if err := db.applyTournaments(tx, items, now); err != nil { // tournament.go
		return now, nil, err
	}
	if err := l.flush(); err != nil {
		return now, nil, err
	}
	if err := insertSeenClaims(tx, seen); err != nil { // after the flush: their payments' claims may be this batch's
		return now, nil, err
	}
	if err := insertArrays(tx, `INSERT INTO sessions (inbox_id, property, user_id, session_id, country, duration_seconds, revenue_usd,
		gross, withheld, credited, capped_excess, reason, received_at, buffer, session_cap) `,
		[]string{"bigint", "text", "text", "text", "text", "bigint", "numeric", "numeric", "numeric", "numeric", "numeric", "text",
			"timestamptz", "numeric", "numeric"}, sessions, ""); err != nil {
		return now, nil, err
	}
	var dayRows [][]any
	for k := range touchedDays {
		dayRows = append(dayRows, []any{k.wallet, k.day, rewards.Format(days[k])})
	}
	if err := insertArrays(tx, `INSERT INTO user_days (wallet_id, day, revenue_credited) `, []string{"bigint", "text", "numeric"}, dayRows,
		` ON CONFLICT (wallet_id, day) DO UPDATE SET revenue_credited = excluded.revenue_credited`); err != nil {
		return now, nil, err
	}
	return now, wallets, nil
}

// insertSeenClaims records claims taken without a payment of their own (rows of
// property, user, claim, the claim that dropped the entry, and the time; see
// rewards.SeenClaim), each against the journal entry that holds the claim that dropped
// it, which the claims table has: an earlier payment's, or one this batch flushed.
func insertSeenClaims(tx *gorm.DB, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	const (
		insert = `INSERT INTO claims (property, user_id, claim, journal_id, created_at)
			SELECT s.property, s.user_id, s.claim, c.journal_id, s.at FROM `
		join = ` JOIN claims c ON c.property = s.property AND c.user_id = s.user_id AND c.claim = s.paid_by
			WHERE true ON CONFLICT (property, user_id, claim) DO NOTHING` // WHERE: SQLite's upsert after a join
	)
	if tx.Dialector.Name() == string(Postgres) {
		cols, err := columns(rows)
		if err != nil {
			return err
		}
		_, err = rawExec(tx, insert+unnest([]string{"text", "text", "text", "text", "timestamptz"})+
			` AS s (property, user_id, claim, paid_by, at)`+join, cols...)
		return err
	}
	return insertRows(tx, `WITH s (property, user_id, claim, paid_by, at) AS (VALUES `, rows, `) `+insert+`s`+join)
}

// mark records what became of each item on its inbox row: one statement on Postgres.
// A replayed event also stores the event as decoded anew.
func (db *DB) mark(tx *gorm.DB, items []*applyItem, now time.Time, replay bool) error {
	rows := make([][]any, len(items))
	for i, it := range items {
		ev := "" // a replay's "" keeps the stored event
		if replay && !it.keepEvent {
			b, err := json.Marshal(it.event)
			if err != nil {
				return fmt.Errorf("store: encode event: %w", err)
			}
			ev = string(b)
		}
		rows[i] = []any{it.id, it.status, it.reason, ev}
	}
	if db.dialect == SQLite {
		for _, r := range rows {
			q := `UPDATE inbox SET status = ?, reason = ?, applied_at = ?`
			args := []any{r[1], r[2], now}
			if replay && r[3] != "" {
				q += `, event = ?`
				args = append(args, r[3])
			}
			if _, err := rawExec(tx, q+` WHERE id = ?`, append(args, r[0])...); err != nil {
				return err
			}
		}
		return nil
	}
	set := `status = v.status, reason = v.reason, applied_at = ?`
	if replay {
		set += `, event = CASE WHEN v.event = '' THEN i.event ELSE v.event END`
	}
	if len(rows) == 0 {
		return nil
	}
	cols, err := columns(rows)
	if err != nil {
		return err
	}
	n, err := rawExec(tx, `UPDATE inbox AS i SET `+set+` FROM `+unnest([]string{"bigint", "text", "text", "text"})+
		` AS v (id, status, reason, event) WHERE i.id = v.id`, append([]any{now}, cols...)...)
	if err == nil && n != int64(len(rows)) {
		return fmt.Errorf("store: marked %d inbox rows, wanted %d", n, len(rows))
	}
	return err
}

// Quarantine keeps a recorded event that cannot be applied at all (the applier found that
// applying it alone fails) with the reason, so the rest of the inbox moves on and the
// event can be replayed once the cause is fixed. It changes nothing if the event is no
// longer recorded (another applier took it), and then says so (quarantined false); else
// it returns the event's property.
func (db *DB) Quarantine(ctx context.Context, id int64, reason string) (property string, quarantined bool, err error) {
	err = db.tx(ctx, func(tx *gorm.DB) error {
		property, quarantined = "", false
		now := db.now()
		var rows []struct {
			Property, UserID, Source string
			ReceivedAt               time.Time
		}
		if err := query(tx, &rows, `UPDATE inbox SET status = ?, reason = ?, applied_at = ? WHERE id = ? AND status = ?
			RETURNING property, user_id, source, received_at`, rewards.StatusQuarantined, reason, now, id, rewards.StatusRecorded); err != nil {
			return err
		}
		ob := db.newOutbox()
		for _, r := range rows {
			property, quarantined = r.Property, true
			if err := ob.eventQuarantined(quarantinedJSON{Property: r.Property, User: r.UserID, EventID: strconv.FormatInt(id, 10),
				Source: r.Source, Reason: reason, ReceivedAt: r.ReceivedAt}, now); err != nil {
				return err
			}
		}
		return ob.flush(tx)
	})
	return property, quarantined, err
}

// lockWallets creates missing wallets and locks all of them, in (property, user) order,
// with one upsert that also returns their current balances. On Postgres the no-op
// DO UPDATE takes each row lock in the order of the keys' arrays (ORDER BY their
// ordinality); on SQLite the immediate transaction already holds the database's write
// lock.
func lockWallets(tx *gorm.DB, keys []walletKey, now time.Time) (map[walletKey]*wallet, error) {
	out := make(map[walletKey]*wallet, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].property != keys[j].property {
			return keys[i].property < keys[j].property
		}
		return keys[i].user < keys[j].user
	})
	uniq := keys[:0:0]
	for i, k := range keys {
		if i == 0 || k != keys[i-1] {
			uniq = append(uniq, k)
		}
	}
	const upsert = ` ON CONFLICT (property, user_id) DO UPDATE SET updated_at = wallets.updated_at RETURNING ` + walletColumns
	// A new wallet is stamped for the balance feed like any wallet write, so it is listed
	// even when nothing it is locked for changes its balances (an event that earns
	// nothing): with feed_seq 0 it sorted before every cursor and a publisher past its
	// first pass never saw it.
	stamp, stampArgs, err := feedStamp(tx)
	if err != nil {
		return nil, err
	}
	var (
		q    string
		args []any
	)
	if tx.Dialector.Name() == string(Postgres) {
		// One array per column (see insertArrays), rows taken in the arrays' order.
		props, users := make([]string, len(uniq)), make([]string, len(uniq))
		for i, k := range uniq {
			props[i], users[i] = k.property, k.user
		}
		q = `INSERT INTO wallets (property, user_id, created_at, updated_at, feed_seq)
			SELECT k.property, k.user_id, ?::timestamptz, ?::timestamptz, ` + stamp + ` FROM unnest(?::text[], ?::text[]) WITH ORDINALITY AS k (property, user_id, n)
			ORDER BY k.n` + upsert
		args = append(append([]any{now, now}, stampArgs...), props, users)
	} else {
		var sb strings.Builder
		args = make([]any, 0, len(uniq)*(4+len(stampArgs)))
		sb.WriteString(`INSERT INTO wallets (property, user_id, created_at, updated_at, feed_seq) VALUES `)
		for i, k := range uniq {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, " + stamp + ")")
			args = append(append(args, k.property, k.user, now, now), stampArgs...)
		}
		q = sb.String() + upsert
	}
	rows, err := rawQuery(tx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		w, err := scanWallet(rows)
		if err != nil {
			return nil, err
		}
		out[walletKey{w.Property, w.UserID}] = w
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) != len(uniq) {
		return nil, fmt.Errorf("store: locked %d wallets, wanted %d", len(out), len(uniq))
	}
	return out, nil
}

// loadClaims learns which of keys are taken: true taken, false free, absent not loaded.
// Call it after the wallets are locked: all claims of a user are written under that
// user's wallet lock, so the answer stays true until commit.
func loadClaims(tx *gorm.DB, keys []claimKey) (map[claimKey]bool, error) {
	taken := map[claimKey]bool{}
	byProperty := map[string][]claimKey{}
	for _, k := range keys {
		if _, dup := taken[k]; !dup {
			taken[k] = false
			byProperty[k.property] = append(byProperty[k.property], k)
		}
	}
	for property, all := range byProperty {
		// In parts: a batch of events each meeting many targets (three claims each)
		// would pass the databases' limit of bound parameters in one statement.
		for ks := range slices.Chunk(all, 5000) {
			users, claims := make([]string, 0, len(ks)), make([]string, 0, len(ks))
			for _, k := range ks {
				users, claims = append(users, k.user), append(claims, k.claim)
			}
			var rows []struct{ UserID, Claim string }
			if err := query(tx, &rows, `SELECT user_id, claim FROM claims WHERE property = ? AND user_id IN ? AND claim IN ?`,
				property, users, claims); err != nil {
				return nil, err
			}
			for _, r := range rows {
				taken[claimKey{property, r.UserID, r.Claim}] = true
			}
		}
	}
	return taken, nil
}

type dayKey struct {
	wallet int64
	day    string
}

// loadDays reads the revenue already credited on each session's UTC day of receipt,
// for the wallets locked for them.
func loadDays(tx *gorm.DB, items []*applyItem, wallets map[walletKey]*wallet) (map[dayKey]decimal.Decimal, error) {
	days := map[dayKey]decimal.Decimal{}
	var ids []int64
	var names []string // distinct (a batch of new events spans a day or two)
	for _, it := range items {
		w := wallets[walletKey{it.property, it.event.User}]
		if it.event.Kind != rewards.KindSession || w == nil {
			continue
		}
		k := dayKey{w.ID, rewards.DayOf(it.receivedAt)}
		if _, seen := days[k]; !seen {
			days[k] = decimal.Zero
			ids = append(ids, k.wallet)
			if !slices.Contains(names, k.day) {
				names = append(names, k.day)
			}
		}
	}
	if len(ids) == 0 {
		return days, nil
	}
	// The primary key (wallet_id, day) is probed for every wallet and day asked (the
	// rows of pairs not asked for are skipped below): one statement, prepared once, with
	// the lists as arrays (idIn). As IN lists, with a bind parameter per wallet and the
	// day repeated for each, it was a new statement to parse and plan for every batch
	// size: ~10 ms a batch, a sixth of Postgres's time under ingest load (now ~1 ms).
	byWallet, arg := idIn(tx, "wallet_id", ids)
	byDay, dayArg := textIn(tx, "day", names)
	rows, err := rawQuery(tx, `SELECT wallet_id, day, revenue_credited FROM user_days WHERE `+byWallet+` AND `+byDay, arg, dayArg)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k dayKey
		var credited decimalColumn
		if err := rows.Scan(&k.wallet, &k.day, &credited); err != nil {
			return nil, err
		}
		if !credited.Valid {
			return nil, fmt.Errorf("store: wallet %d: day %s without an amount", k.wallet, k.day)
		}
		if _, wanted := days[k]; wanted {
			days[k] = credited.Decimal
		}
	}
	return days, rows.Err()
}

func sessionRow(it *applyItem, r rewards.SessionResult) ([]any, error) {
	s := it.event.Session
	if s == nil {
		return nil, errors.New("store: session result for an event without a session")
	}
	return []any{it.id, it.property, it.event.User, s.SessionID, s.Country, s.DurationSeconds, rewards.Format(s.RevenueUSD),
		rewards.Format(r.Gross), rewards.Format(r.Withheld), rewards.Format(r.Credited), rewards.Format(r.CappedExcess), r.Reason,
		it.receivedAt, rewards.Format(r.Buffer), rewards.Format(r.SessionCap)}, nil
}
