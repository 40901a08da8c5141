package store

import (
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// posting is where an entry comes from and when it is stamped.
type posting struct {
	inboxID *int64
	ref     string
	at      time.Time // created_at of the journal row and its legs; when a lot without a maturity matures
}

type claimKey struct{ property, user, claim string }

// wallet is a locked wallet row. Its balances are a rewards.Wallet, changed only by the
// rewards package; the store loads it, hands it to rewards, and writes back what comes
// out.
type wallet struct {
	ID       int64
	Property string
	UserID   string
	rewards.Wallet
	UpdatedAt time.Time
	dirty     bool
	// before is the balance as it was before the changes not yet saved: what a
	// balance.updated webhook reports as the change.
	before rewards.Wallet
}

// walletColumns are a wallet row's columns in the order scanWallet reads them.
const walletColumns = `id, property, user_id, pending, available, carry, redeemed, lifetime_earned, updated_at`

// scanWallet reads a row of walletColumns.
func scanWallet(rows *sql.Rows) (*wallet, error) {
	w := &wallet{}
	var m walletAmounts
	if err := rows.Scan(append(append([]any{&w.ID, &w.Property, &w.UserID}, m.dest()...), &w.UpdatedAt)...); err != nil {
		return nil, err
	}
	if !m.valid() {
		return nil, fmt.Errorf("store: wallet %d: an amount is NULL", w.ID)
	}
	m.into(&w.Wallet)
	w.UpdatedAt = w.UpdatedAt.UTC()
	return w, nil
}

// set replaces the balances with what rewards computed, stamped at, and marks the row
// for writing.
func (w *wallet) set(next rewards.Wallet, at time.Time) {
	if !w.dirty {
		w.before = w.Wallet
	}
	w.Wallet, w.UpdatedAt, w.dirty = next, at, true
}

// stamp is the time the entries written to w in this transaction carry: now, or the
// wallet's last write if the clock reads earlier (a clock stepped back, another replica's
// clock behind ours). A user's transactions list, ordered by id, is then never out of
// order in time. Callers take now after locking w, so entries of one user are stamped in
// the order of the lock, which is the order of commit.
func (w *wallet) stamp(now time.Time) time.Time {
	if w.UpdatedAt.After(now) {
		return w.UpdatedAt.UTC()
	}
	return now
}

// ledger buffers the entries of one transaction and writes them on flush with a few
// multi-row statements (journal, legs, claims, lots), so a batch of many events costs a
// handful of round trips instead of several per entry. It writes entries only; the
// balances they change were computed by rewards and are written by saveWallets.
type ledger struct {
	db    *DB
	tx    *gorm.DB
	queue []queued
}

type queued struct {
	w *wallet
	e rewards.Entry
	p posting
}

func (db *DB) newLedger(tx *gorm.DB) *ledger {
	return &ledger{db: db, tx: tx}
}

// add queues one entry of wallet w. The claims table's primary key backs up Credit's
// claim check: a claim taken twice fails the transaction at flush.
func (l *ledger) add(w *wallet, e rewards.Entry, p posting) {
	l.queue = append(l.queue, queued{w: w, e: e, p: p})
}

// flush writes everything queued. Journal ids are reserved first, so legs, claims and
// lots can reference their journal row in the same multi-row statements.
func (l *ledger) flush() error {
	if len(l.queue) == 0 {
		return nil
	}
	ids, err := l.db.allocIDs(l.tx, "journal", len(l.queue))
	if err != nil {
		return err
	}
	var journal, legs, claims, lots [][]any
	for i, q := range l.queue {
		jid, w, e, at := ids[i], q.w, q.e, q.p.at
		var matures *time.Time
		if !e.MaturesAt.IsZero() {
			t := e.MaturesAt.UTC().Truncate(time.Microsecond)
			matures = &t
		}
		journal = append(journal, []any{jid, w.Property, w.UserID, string(e.Kind), e.Rule, e.RuleVersion, q.p.inboxID, q.p.ref, matures, at})
		for _, leg := range e.Legs {
			legs = append(legs, []any{jid, w.Property, w.UserID, leg.System, string(leg.Bucket), string(e.Kind), rewards.Format(leg.Amount), at})
		}
		if e.Claim != "" {
			claims = append(claims, []any{w.Property, w.UserID, e.Claim, jid, at})
			for _, c := range e.AlsoClaims {
				claims = append(claims, []any{w.Property, w.UserID, c, jid, at})
			}
		}
		if lot := e.Lot(); !lot.IsZero() {
			lots = append(lots, []any{w.ID, w.Property, jid, rewards.Format(lot), e.LotMatures(at).UTC().Truncate(time.Microsecond)})
		}
	}
	l.queue = l.queue[:0]
	for _, ins := range []struct {
		head  string
		types []string
		rows  [][]any
	}{
		{`INSERT INTO journal (id, property, user_id, kind, rule, rule_version, inbox_id, ref, matures_at, created_at) `,
			[]string{"bigint", "text", "text", "text", "text", "text", "bigint", "text", "timestamptz", "timestamptz"}, journal},
		{`INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at) `,
			[]string{"bigint", "text", "text", "text", "text", "text", "numeric", "timestamptz"}, legs},
		{`INSERT INTO claims (property, user_id, claim, journal_id, created_at) `,
			[]string{"text", "text", "text", "bigint", "timestamptz"}, claims},
		{`INSERT INTO lots (wallet_id, property, journal_id, amount, matures_at) `,
			[]string{"bigint", "text", "bigint", "numeric", "timestamptz"}, lots},
	} {
		if err := insertArrays(l.tx, ins.head, ins.types, ins.rows, ""); err != nil {
			return err
		}
	}
	return nil
}

// saveWallets writes back every wallet changed in this transaction and stamps it for the
// balance feed (feed.go): one statement on Postgres, where round trips cost; one per
// wallet on SQLite, where they do not.
func (db *DB) saveWallets(tx *gorm.DB, wallets []*wallet) error {
	var dirty []*wallet
	for _, w := range wallets {
		if !w.dirty {
			continue
		}
		for _, v := range []decimal.Decimal{w.Pending, w.Available, w.Carry} {
			if v.IsNegative() {
				return fmt.Errorf("store: wallet %d would go negative: %w", w.ID, rewards.ErrInsufficientFunds)
			}
		}
		dirty = append(dirty, w)
	}
	if len(dirty) == 0 {
		return nil
	}
	stamp, stampArgs, err := feedStamp(tx)
	if err != nil {
		return err
	}
	if db.dialect == Postgres {
		rows := make([][]any, len(dirty))
		for i, w := range dirty {
			rows[i] = []any{w.ID, rewards.Format(w.Pending), rewards.Format(w.Available), rewards.Format(w.Carry), rewards.Format(w.Redeemed),
				rewards.Format(w.LifetimeEarned), w.UpdatedAt}
		}
		// One array per column: the statement's text is the same for any number of
		// wallets; amounts go as text (see insertArrays and arrayParam).
		cols, err := columns(rows)
		if err != nil {
			return err
		}
		// Every path that saves wallets (applier, redemptions, adjustments, prizes,
		// true-ups, settlement) runs this statement, prepared once per connection; its
		// plan must join by key whichever path made it, even one made while wallets was
		// nearly empty (see Apply). The setting lasts to the end of the transaction,
		// whose other statements reach their rows by key too.
		if _, err := rawExec(tx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		args := append(append([]any{}, stampArgs...), cols...) // the stamp's arguments come first in the text
		n, err := rawExec(tx, `UPDATE wallets AS w SET pending = v.pending, available = v.available, carry = v.carry,
			redeemed = v.redeemed, lifetime_earned = v.lifetime_earned, updated_at = v.updated_at, feed_seq = `+stamp+`
			FROM unnest(?::bigint[], ?::text[]::numeric[], ?::text[]::numeric[], ?::text[]::numeric[], ?::text[]::numeric[],
				?::text[]::numeric[], ?::timestamptz[])
				AS v (id, pending, available, carry, redeemed, lifetime_earned, updated_at)
			WHERE w.id = v.id`, args...)
		if err != nil {
			return err
		}
		if n != int64(len(rows)) {
			return fmt.Errorf("store: updated %d wallets, wanted %d", n, len(rows))
		}
	} else {
		for _, w := range dirty {
			args := append([]any{rewards.Format(w.Pending), rewards.Format(w.Available), rewards.Format(w.Carry), rewards.Format(w.Redeemed),
				rewards.Format(w.LifetimeEarned), w.UpdatedAt},
				stampArgs...)
			if _, err := rawExec(tx, `UPDATE wallets SET pending = ?, available = ?, carry = ?, redeemed = ?, lifetime_earned = ?, updated_at = ?, feed_seq = `+
				stamp+` WHERE id = ?`, append(args, w.ID)...); err != nil {
				return err
			}
		}
	}
	// Every wallet change is announced (balance.updated) in the transaction that makes it.
	ob := db.newOutbox()
	for _, w := range dirty {
		w.dirty = false
		if err := ob.balanceUpdated(w); err != nil {
			return err
		}
	}
	return ob.flush(tx)
}

// allocIDsSQL reserves $2 ids of table $1 on Postgres. The sequence is looked up once, in
// a subquery Postgres runs before the rows (an InitPlan): pg_get_serial_sequence called
// per row searched the catalog for every id, at eight times the cost of the nextval.
const allocIDsSQL = `SELECT nextval((SELECT pg_get_serial_sequence(?, 'id')::regclass)) FROM generate_series(1, ?)`

// allocIDs reserves n ids of table, so rows that reference each other can be written
// with multi-row INSERTs without relying on the order RETURNING reports them in. On
// Postgres they come from the table's sequence; on SQLite the immediate transaction
// holds the only write lock, so the ids after the current maximum are ours until commit.
func (db *DB) allocIDs(tx *gorm.DB, table string, n int) ([]int64, error) {
	ids := make([]int64, 0, n)
	if db.dialect == Postgres {
		if err := query(tx, &ids, allocIDsSQL, table, n); err != nil {
			return nil, err
		}
		if len(ids) != n {
			return nil, fmt.Errorf("store: reserved %d %s ids, wanted %d", len(ids), table, n)
		}
		return ids, nil
	}
	var top int64
	if err := query(tx, &top, `SELECT COALESCE(MAX(id), 0) FROM `+table); err != nil {
		return nil, err
	}
	for i := int64(1); i <= int64(n); i++ {
		ids = append(ids, top+i)
	}
	return ids, nil
}

// insertArrays writes rows, each a value for every column of head ("INSERT INTO t (a,
// b) "), of the SQL types given, then tail (an ON CONFLICT clause, or ""). On Postgres
// that is one statement, head + SELECT * FROM unnest($1::a_type[], $2::b_type[]) + tail,
// with one array per column: its text is the same whatever the number of rows, so it is
// prepared once per connection, where a VALUES list is a new statement to parse, plan
// and prepare for every number of rows, with a bind parameter per value. unnest hands
// the rows on in the arrays' order, as a VALUES list does. On SQLite it is insertRows's
// VALUES lists.
func insertArrays(tx *gorm.DB, head string, types []string, rows [][]any, tail string) error {
	if len(rows) == 0 {
		return nil
	}
	if tx.Dialector.Name() != string(Postgres) {
		return insertRows(tx, head+"VALUES ", rows, tail)
	}
	q, cols, err := arraysSQL(head, types, rows, tail)
	if err != nil {
		return err
	}
	_, err = rawExec(tx, q, cols...)
	return err
}

// arraysSQL is insertArrays' Postgres statement and its arguments, one array per column.
func arraysSQL(head string, types []string, rows [][]any, tail string) (string, []any, error) {
	if len(types) != len(rows[0]) {
		return "", nil, fmt.Errorf("store: %d column types for rows of %d values: %s", len(types), len(rows[0]), head)
	}
	cols, err := columns(rows)
	if err != nil {
		return "", nil, err
	}
	return head + "SELECT * FROM " + unnest(types) + tail, cols, nil
}

// unnest is "unnest($1::a_type[], …)" for columns of the SQL types given.
func unnest(types []string) string {
	var sb strings.Builder
	sb.WriteString("unnest(")
	for i, t := range types {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(arrayParam(t))
	}
	sb.WriteString(")")
	return sb.String()
}

// arrayParam is the placeholder of an array of SQL type t bound as a Go slice. A numeric
// array is bound as text and cast by Postgres: pgx would otherwise parse each amount's
// text into a big.Int to send it in binary, which cost more of a settlement's CPU than
// Postgres's own parsing of the text.
func arrayParam(t string) string {
	if t == "numeric" {
		return "?::text[]::numeric[]"
	}
	return "?::" + t + "[]"
}

// columns turns rows of equal width into one typed slice per column, for Postgres
// arrays: []int64, []string, [][]byte, []time.Time, or []*int64 and []*time.Time for a column that
// holds NULLs (a nil pointer). pgx writes typed slices in both its extended and its
// simple protocol (a pooler may ask for the latter); a []any it writes only in the first.
func columns(rows [][]any) ([]any, error) {
	cols := make([]any, len(rows[0]))
	for c := range cols {
		var err error
		switch rows[0][c].(type) {
		case int64:
			cols[c], err = column[int64](rows, c)
		case *int64:
			cols[c], err = column[*int64](rows, c)
		case string:
			cols[c], err = column[string](rows, c)
		case []byte:
			cols[c], err = column[[]byte](rows, c)
		case time.Time:
			cols[c], err = column[time.Time](rows, c)
		case *time.Time:
			cols[c], err = column[*time.Time](rows, c)
		default:
			err = fmt.Errorf("store: no array for a column of %T", rows[0][c])
		}
		if err != nil {
			return nil, err
		}
	}
	return cols, nil
}

// column is column c of rows as a []T; every row must hold a T there.
func column[T any](rows [][]any, c int) ([]T, error) {
	out := make([]T, len(rows))
	for r, row := range rows {
		v, ok := row[c].(T)
		if !ok {
			return nil, fmt.Errorf("store: row %d column %d holds %T, the column %T", r, c, row[c], out[0])
		}
		out[r] = v
	}
	return out, nil
}

// insertRows runs head + VALUES rows + tail in as few statements as the bind-parameter
// limit allows.
func insertRows(tx *gorm.DB, head string, rows [][]any, tail string) error {
	return inChunks(tx, rows, func(rows [][]any) error {
		sql, args := valuesSQL(head, rows, tail)
		_, err := rawExec(tx, sql, args...)
		return err
	})
}

// maxParams bounds the bind parameters of one statement: Postgres allows 65535, and
// each statement is a round trip. SQLite allows 32766 but the pure-Go driver binds in
// time quadratic in the parameter count (measured: 77 % of an apply batch's CPU at 8,000
// parameters), and its statements cost no round trip, so its statements stay small.
func maxParams(tx *gorm.DB) int {
	if tx.Dialector.Name() == string(SQLite) {
		return 400
	}
	return 30000
}

// valuesSQL builds head + "(?, ?), (?, ?)" + tail for rows of equal width.
func valuesSQL(head string, rows [][]any, tail string) (string, []any) {
	var sb strings.Builder
	sb.WriteString(head)
	args := make([]any, 0, len(rows)*len(rows[0]))
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(rows[0])), ", ") + ")"
	for i, r := range rows {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(tuple)
		args = append(args, r...)
	}
	sb.WriteString(tail)
	return sb.String(), args
}

// inChunks calls fn on consecutive slices of rows small enough for one statement on tx.
func inChunks(tx *gorm.DB, rows [][]any, fn func([][]any) error) error {
	if len(rows) == 0 {
		return nil
	}
	per := max(1, maxParams(tx)/len(rows[0]))
	for start := 0; start < len(rows); start += per {
		if err := fn(rows[start:min(start+per, len(rows))]); err != nil {
			return err
		}
	}
	return nil
}
