package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Record writes a batch of events to the inbox as recorded, with one multi-row statement
// that skips keys already recorded: the unique constraint, not a prior check, decides,
// so concurrent redeliveries cannot both insert. The batch is committed whole or not at
// all; a redelivery (same property, source and dedupe key, also
// twice within the batch) is reported as a duplicate of the recorded event. The batch's
// receipt time is taken inside its transaction (stampReceipt). The applier (Apply) turns
// recorded events into ledger effects.
func (db *DB) Record(ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error) {
	former, err := db.findFormerKeys(ctx, batch)
	if err != nil {
		return nil, err
	}
	if len(former) == 0 {
		return db.record(ctx, batch)
	}
	results := make([]rewards.Receipt, len(batch))
	var rest []rewards.Inbound
	var at []int
	for i, in := range batch {
		if r, ok := former[i]; ok {
			results[i] = rewards.Receipt{EventID: r.ID, Duplicate: true, Status: r.Status}
			continue
		}
		rest, at = append(rest, in), append(at, i)
	}
	got, err := db.record(ctx, rest)
	if err != nil {
		return nil, err
	}
	for j, r := range got {
		results[at[j]] = r
	}
	return results, nil
}

// findFormerKeys finds the rows an earlier version recorded events of batch under
// (rewards.Event.FormerKeys), by index in batch. Such rows are committed long since, and
// no row is written under those keys any more, so looking before the insert's
// transaction races with nothing.
func (db *DB) findFormerKeys(ctx context.Context, batch []rewards.Inbound) (map[int]inboxRow, error) {
	var keys []dedupeKey
	for _, in := range batch {
		for _, k := range in.Event.FormerKeys {
			keys = append(keys, dedupeKey{in.Property, string(in.Event.Source), k})
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	found, err := db.findKeys(db.gorm.WithContext(ctx), keys)
	if err != nil || len(found) == 0 {
		return nil, translate(err)
	}
	out := map[int]inboxRow{}
	for i, in := range batch {
		for _, k := range in.Event.FormerKeys {
			if r, ok := found[dedupeKey{in.Property, string(in.Event.Source), k}]; ok {
				out[i] = r
				break
			}
		}
	}
	return out, nil
}

// record is Record of events no former key names.
func (db *DB) record(ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	// Rows go in key order: two batches holding the same keys in opposite order would
	// otherwise each wait on the other's uncommitted unique-index entry (a deadlock).
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return keyOf(batch[order[a]]).less(keyOf(batch[order[b]]))
	})
	rows := make([][]any, 0, len(batch))
	for _, i := range order {
		in := batch[i]
		ev, err := json.Marshal(in.Event)
		if err != nil {
			return nil, fmt.Errorf("store: encode event: %w", err)
		}
		raw := in.Raw
		if raw == nil {
			raw = []byte{}
		}
		rows = append(rows, []any{in.Property, string(in.Event.Source), in.Event.DedupeKey, in.Event.User, string(in.Event.Kind),
			in.Event.Type, raw, string(ev), time.Time{}, rewards.StatusRecorded, in.Unmapped})
	}
	ids := make(map[dedupeKey]int64, len(batch))
	const (
		head = `INSERT INTO inbox (property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status, reason) `
		tail = ` ON CONFLICT (property, source, dedupe_key) DO NOTHING RETURNING id, property, source, dedupe_key`
	)
	insert := func(tx *gorm.DB, rows [][]any) error {
		// On Postgres one array per column (see insertArrays): one statement for the whole
		// batch, prepared once, where a VALUES list was parsed and planned anew for every
		// batch size.
		var (
			sql  string
			args []any
			err  error
		)
		if db.dialect == Postgres {
			sql, args, err = arraysSQL(head, inboxTypes, rows, tail)
		} else {
			sql, args = valuesSQL(head+`VALUES `, rows, tail)
		}
		if err != nil {
			return err
		}
		got, err := rawQuery(tx, sql, args...)
		if err != nil {
			return err
		}
		defer got.Close()
		for got.Next() {
			var id int64
			var k dedupeKey
			if err := got.Scan(&id, &k.property, &k.source, &k.key); err != nil {
				return err
			}
			ids[k] = id
		}
		return got.Err()
	}
	results := make([]rewards.Receipt, len(batch))
	var prev map[dedupeKey]inboxRow
	// One transaction: on Postgres one statement, on SQLite as many as a batch too large
	// for one statement (a few dozen rows) needs, so it is recorded whole or not at all.
	// The rows of the keys that conflicted are looked up in it too, after the insert: a
	// lookup after the commit that failed (a deadline, a lost connection) answered
	// "nothing saved" for a batch that was saved.
	err := db.tx(ctx, func(tx *gorm.DB) error {
		clear(ids) // a retried transaction starts over
		clear(results)
		prev = nil
		if err := db.stampReceipt(tx, rows); err != nil {
			return err
		}
		var err error
		if db.dialect == Postgres {
			err = insert(tx, rows)
		} else {
			err = inChunks(tx, rows, func(rows [][]any) error { return insert(tx, rows) })
		}
		if err != nil {
			return err
		}
		var missing []dedupeKey
		for i, in := range batch {
			k := keyOf(in)
			if id, ok := ids[k]; ok {
				results[i] = rewards.Receipt{EventID: id, Status: rewards.StatusRecorded}
				delete(ids, k) // a second copy within the batch is a duplicate of this one
				continue
			}
			missing = append(missing, k)
		}
		if len(missing) == 0 {
			return nil
		}
		// The conflicting rows are committed: an INSERT … ON CONFLICT DO NOTHING that
		// meets another transaction's uncommitted row waits for it, and inserts if it
		// rolls back; on Postgres each statement of the transaction sees what committed
		// before it began.
		prev, err = db.findKeys(tx, missing)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i, in := range batch {
		if results[i].EventID != 0 {
			continue
		}
		r, ok := prev[keyOf(in)]
		if !ok {
			// The same key earlier in this batch was inserted by it.
			for j := range i {
				if keyOf(batch[j]) == keyOf(in) && results[j].EventID != 0 {
					r, ok = inboxRow{ID: results[j].EventID, Status: results[j].Status}, true
					break
				}
			}
		}
		if !ok {
			return nil, fmt.Errorf("store: inbox conflict on %q but no row found: %w", in.Event.DedupeKey, rewards.ErrUnavailable)
		}
		results[i] = rewards.Receipt{EventID: r.ID, Duplicate: true, Status: r.Status}
	}
	return results, nil
}

// receivedColumn is where a row of Record's columns holds its receipt time.
const receivedColumn = 8

// stampReceipt sets the receipt time of Record's rows, in the batch's transaction once it
// holds what a payout report "to now" waits for (waitForWriters): on Postgres a
// transaction id, on SQLite the write lock (its transactions begin immediate). A batch
// stamped before a report's cut is then either committed before the report looks at the
// inbox or waited for; stamped before its transaction began, it could be sent after the
// report had looked at both, and commit with a receipt before the cut that the report,
// and every later report of the period, disagreed on.
func (db *DB) stampReceipt(tx *gorm.DB, rows [][]any) error {
	if db.dialect == Postgres {
		var xid string
		if err := query(tx, &xid, `SELECT pg_current_xact_id()::text`); err != nil {
			return err
		}
	}
	now := db.now()
	if db.afterReceiptStamp != nil {
		db.afterReceiptStamp()
	}
	for _, r := range rows {
		r[receivedColumn] = now
	}
	return nil
}

// inboxTypes are the SQL types of Record's columns.
var inboxTypes = []string{"text", "text", "text", "text", "text", "text", "bytea", "text", "timestamptz", "text", "text"}

type dedupeKey struct{ property, source, key string }

func keyOf(in rewards.Inbound) dedupeKey {
	return dedupeKey{in.Property, string(in.Event.Source), in.Event.DedupeKey}
}

func (k dedupeKey) less(o dedupeKey) bool {
	if k.property != o.property {
		return k.property < o.property
	}
	if k.source != o.source {
		return k.source < o.source
	}
	return k.key < o.key
}

// findKeys looks recorded events up by dedupe key through the unique index: a join
// with the keys as a VALUES list is one index probe per key, however large the inbox.
func (db *DB) findKeys(tx *gorm.DB, keys []dedupeKey) (map[dedupeKey]inboxRow, error) {
	out := make(map[dedupeKey]inboxRow, len(keys))
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{k.property, k.source, k.key}
	}
	err := inChunks(tx, rows, func(rows [][]any) error {
		sql, args := findKeysSQL(rows)
		var got []inboxRow
		if err := query(tx, &got, sql, args...); err != nil {
			return err
		}
		for _, r := range got {
			out[dedupeKey{r.Property, r.Source, r.DedupeKey}] = r
		}
		return nil
	})
	return out, err
}

// findKeysSQL looks keys up with a join against a VALUES list (which names its columns
// column1… in both dialects).
func findKeysSQL(rows [][]any) (string, []any) {
	return valuesSQL(`SELECT i.id, i.property, i.source, i.dedupe_key, i.status FROM (VALUES `, rows,
		`) AS v JOIN inbox i ON i.property = v.column1 AND i.source = v.column2 AND i.dedupe_key = v.column3`)
}

type inboxRow struct {
	ID         int64
	Property   string
	Source     string
	DedupeKey  string
	UserID     string
	Event      string
	RawBody    []byte
	ReceivedAt time.Time
	Status     string
	Reason     string
	AppliedAt  *time.Time
	RawSize    *int // Events' column; nil: the whole RawBody was read
}

const inboxColumns = `id, property, source, dedupe_key, user_id, event, raw_body, received_at, status, reason, applied_at`

// listColumns are inboxColumns for Events: at most upTo bytes of the raw body (none for
// 0), and its whole size.
func (db *DB) listColumns(upTo int) string {
	raw := `raw_body`
	if db.dialect == SQLite {
		raw = `CAST(raw_body AS BLOB)` // length and substr count bytes, not characters
	}
	body := `substr(` + raw + `, 1, ` + strconv.Itoa(max(upTo, 0)) + `)`
	return `id, property, source, dedupe_key, user_id, event, ` + body + ` AS raw_body, received_at, status, reason, applied_at, length(` + raw + `) AS raw_size`
}

func (r inboxRow) toKept() rewards.Kept {
	k := rewards.Kept{ID: r.ID, Property: r.Property, Source: rewards.Source(r.Source), DedupeKey: r.DedupeKey, User: r.UserID,
		Raw: r.RawBody, RawSize: len(r.RawBody), ReceivedAt: r.ReceivedAt.UTC(), Status: r.Status, Reason: r.Reason}
	if r.RawSize != nil {
		k.RawSize = *r.RawSize
	}
	if err := json.Unmarshal([]byte(r.Event), &k.Event); err != nil {
		// A row this build cannot read (written by another version, or damaged) is
		// still listed, and the applier quarantines it rather than stall on it.
		k.Event = rewards.Event{}
		k.Undecodable = "the event as stored could not be decoded by this version of tally (" + err.Error() +
			"); replay it with a version that can read it"
	}
	if r.AppliedAt != nil {
		t := r.AppliedAt.UTC()
		k.AppliedAt = &t
	}
	return k
}

// Event returns one inbox event and the journal entries it produced, oldest first.
// An unknown id is rewards.ErrNotFound.
// Both are read in one snapshot: a replay or an apply committing between two reads
// showed an event still quarantined beside the entries it had just produced.
func (db *DB) Event(ctx context.Context, id int64) (rewards.Kept, []rewards.Posted, error) {
	var k rewards.Kept
	var posted []rewards.Posted
	err := db.read(ctx, func(tx *gorm.DB) error {
		var rows []inboxRow
		if err := query(tx, &rows, `SELECT `+inboxColumns+` FROM inbox WHERE id = ?`, id); err != nil {
			return translate(err)
		}
		if len(rows) == 0 {
			return fmt.Errorf("event %d: %w", id, rewards.ErrNotFound)
		}
		k = rows[0].toKept()
		var err error
		posted, err = db.postedBy(tx, `j.inbox_id = ?`, id)
		return err
	})
	if err != nil {
		return rewards.Kept{}, nil, translate(err)
	}
	return k, posted, nil
}

// postedBy reads the journal entries matching where, with their legs.
func (db *DB) postedBy(g *gorm.DB, where string, args ...any) ([]rewards.Posted, error) {
	var legs []struct {
		JournalID   int64
		Property    string
		UserID      string
		Kind        string
		Rule        string
		RuleVersion string
		Ref         string
		CreatedAt   time.Time
		Account     string
		Bucket      string
		Amount      decimal.Decimal
	}
	// The legs are found through their user's index: entries has no index on journal_id.
	err := query(g, &legs, `SELECT j.id AS journal_id, j.property, j.user_id, j.kind, j.rule, j.rule_version, j.ref, j.created_at,
		e.account, e.bucket, e.amount
		FROM journal j JOIN entries e ON e.property = j.property AND e.user_id = j.user_id AND e.journal_id = j.id
		WHERE `+where+` ORDER BY j.id, e.id`, args...)
	if err != nil {
		return nil, translate(err)
	}
	var out []rewards.Posted
	for _, l := range legs {
		if len(out) == 0 || out[len(out)-1].ID != l.JournalID {
			out = append(out, rewards.Posted{ID: l.JournalID, Property: l.Property, User: l.UserID, Kind: rewards.EntryKind(l.Kind),
				Rule: l.Rule, RuleVersion: l.RuleVersion, Ref: l.Ref, CreatedAt: l.CreatedAt.UTC()})
		}
		p := &out[len(out)-1]
		p.Legs = append(p.Legs, rewards.Leg{System: l.Account, Bucket: rewards.Bucket(l.Bucket), Amount: l.Amount})
	}
	return out, nil
}

// Events lists inbox events newest first (by id), filtered by f.
func (db *DB) Events(ctx context.Context, f rewards.EventFilter) ([]rewards.Kept, error) {
	var where []string
	var args []any
	switch f.Status {
	case "":
	case rewards.StatusRecorded, rewards.StatusApplied, rewards.StatusQuarantined:
		where = append(where, "status = "+statusLiteral(f.Status)) // a literal, for the partial indexes
	default:
		return nil, fmt.Errorf("store: events with status %q: %w", f.Status, rewards.ErrInvalidRequest)
	}
	if f.Property != "" {
		where, args = append(where, "property = ?"), append(args, f.Property)
	}
	if f.Source != "" {
		where, args = append(where, "source = ?"), append(args, string(f.Source))
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q := `SELECT ` + db.listColumns(f.RawUpTo) + ` FROM inbox`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY id DESC LIMIT ?`
	var rows []inboxRow
	if err := query(db.gorm.WithContext(ctx), &rows, q, append(args, f.Limit)...); err != nil {
		return nil, translate(err)
	}
	out := make([]rewards.Kept, len(rows))
	for i, r := range rows {
		out[i] = r.toKept()
	}
	return out, nil
}

// Backlog counts the recorded events not applied yet, through the partial index that
// holds exactly them.
func (db *DB) Backlog(ctx context.Context) (rewards.Backlog, error) {
	if db.dialect == SQLite {
		return backlog(db.gorm.WithContext(ctx), 0)
	}
	// On Postgres from the applier's claim floor (floor.go), past the dead entries the
	// index holds below it, and with the plans on the index as the applier's are.
	var b rewards.Backlog
	err := db.tx(ctx, func(tx *gorm.DB) error {
		if _, err := rawExec(tx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		var err error
		b, err = backlog(tx, db.currentFloor())
		return err
	})
	return b, err
}

// backlog counts the recorded events from id floor on, and finds the oldest.
func backlog(g *gorm.DB, floor int64) (rewards.Backlog, error) {
	var b rewards.Backlog
	recorded := statusLiteral(rewards.StatusRecorded) // a literal, for the partial index
	if err := query(g, &b.Events, `SELECT COUNT(*) FROM inbox WHERE status = `+recorded+` AND id >= ?`, floor); err != nil {
		return rewards.Backlog{}, translate(err)
	}
	if b.Events == 0 {
		return b, nil
	}
	// Not MIN(received_at): SQLite returns an aggregate's time as text.
	var oldest []time.Time
	if err := query(g, &oldest, `SELECT received_at FROM inbox WHERE status = `+recorded+` AND id >= ? ORDER BY id LIMIT 1`, floor); err != nil {
		return rewards.Backlog{}, translate(err)
	}
	if len(oldest) == 1 {
		b.OldestRecord = oldest[0].UTC()
	}
	return b, nil
}
