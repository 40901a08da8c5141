package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Payout reports (DESIGN.md §3, Finance and ops). Every figure is a sum of wallet legs
// (entries with account '') selected by created_at, or of session records selected by
// received_at; none comes from the wallets' running balances, so the ledger columns of
// a past period's report are the same whenever it is pulled. Its session columns are
// not, in one case: a quarantined SPP replayed later adds its session record to the day
// it was received, while its credit is in the ledger when the replay applies it (README,
// "Recording and applying").
//
// The rows are one stream on both dialects (streamSQL): each wallet leg before the
// period's end with its class (legClass: bucket, kind, in the period or not) and every
// session of the period, in (property, user) byte order, read straight off the
// (property, user_id, …) indexes of entries and sessions. Go adds each user's legs up
// (rowBuilder) and hands the row on before it reads the next user's, so no more than one
// user's sums are ever held. The database need neither sort nor aggregate: on Postgres,
// where property and user_id of both tables are in COLLATE "C" (migration 00010), the
// stream can merge two index scans, so its first row leaves at once (the planner's
// choice by cost: it does at the benchmark's size; a ledger far beyond memory may be
// read in heap order and sorted instead); on SQLite the BINARY collation is byte order
// already. Amounts are summed exactly in int64s while they fit (nearly always) and as
// decimals otherwise.
//
// Measured on 2 busy cores, the benchmark's 100,000 users, as the Postgres backend's CPU
// time: 130–170 ms for the stream, against 370–470 ms for grouping and summing the same
// legs with a dozen FILTERed NUMERIC aggregates in SQL as the report did before (and
// that began only after a sort of every leg). On Postgres the stream is read with pgx's
// raw values, which saves database/sql's conversion of every column of every row.
//
// Rows are ordered by property then user in byte order (COLLATE "C" on Postgres, the
// BINARY collation on SQLite), so both databases produce the same report whatever the
// Postgres database's locale.
//
// Each call reads inside one read-only transaction: on Postgres a REPEATABLE READ
// snapshot, on SQLite a deferred (read) transaction, which in WAL mode also reads one
// snapshot and does not block writers.

// PayoutRows calls fn with each row of the payout report for q, in order, while it reads
// them; it never holds more than one row. An error from fn stops the report and is
// returned as is. A period that is empty or inverted is rewards.ErrInvalidRequest.
func (db *DB) PayoutRows(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error {
	_, err := db.payoutReport(ctx, q, fn, false, nil)
	return err
}

// PayoutSummary returns, for each property with sessions or wallet legs up to q.To (or
// only q.Property), its sessions in the period and the ledger's totals of every report
// column, ordered by property.
func (db *DB) PayoutSummary(ctx context.Context, q rewards.ReportQuery) ([]rewards.PropertySummary, error) {
	return db.payoutReport(ctx, q, nil, true, nil)
}

// PayoutReport is PayoutRows followed by PayoutSummary, both read from one snapshot, so
// the summary's ledger totals are those of the rows even while writers are busy.
func (db *DB) PayoutReport(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) ([]rewards.PropertySummary, error) {
	return db.payoutReport(ctx, q, fn, true, nil)
}

// PayoutRowsEstimate estimates, cheaply, how many rows the payout report for q has, for
// a progress bar: the wallets created before q.To (of q.Property, when set). A wallet
// without activity or balance in the period is counted though it is no row, and a user
// with sessions but no wallet is a row not counted; both are rare in a month's report.
func (db *DB) PayoutRowsEstimate(ctx context.Context, q rewards.ReportQuery) (int64, error) {
	filter, args := propertyFilter(q, []any{ceilMicro(q.To)})
	var n int64
	if err := query(db.gorm.WithContext(ctx), &n, `SELECT count(*) FROM wallets WHERE created_at < ?`+filter, args...); err != nil {
		return 0, fmt.Errorf("store: payout rows estimate: %w", translate(err))
	}
	return n, nil
}

// callbackError carries an error of the caller's row function through the transaction
// untranslated.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

// refRows, when not nil, is the reference the tests hold the stream against
// (report_export_test.go): it reads the rows in its own way and the summary is summed in
// Go. Production passes nil.
type refRows func(tx *gorm.DB, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error

func (db *DB) payoutReport(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error, summary bool, ref refRows) ([]rewards.PropertySummary, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, fmt.Errorf("store: report period [%s, %s): %w", q.From, q.To, rewards.ErrInvalidRequest)
	}
	// Times are stored at microsecond precision; rounding the bounds up to a microsecond
	// selects exactly the same instants and keeps both dialects' comparisons alike.
	q.From, q.To = ceilMicro(q.From), ceilMicro(q.To)
	if err := db.waitForWriters(ctx, q.To); err != nil {
		return nil, err
	}
	inSQL := db.dialect == Postgres && ref == nil
	var out []rewards.PropertySummary
	report := func(tx *gorm.DB, stream func(rewards.ReportQuery, *rowBuilder) error) error {
		if fn != nil {
			var err error
			if ref != nil {
				err = ref(tx, q, fn)
			} else {
				err = stream(q, newRowBuilder(fn))
			}
			if err != nil {
				return err
			}
		}
		if summary {
			var err error
			out, err = payoutSummary(tx, q, inSQL)
			return err
		}
		return nil
	}
	var err error
	if db.dialect == Postgres {
		err = db.readPostgres(ctx, func(tx *gorm.DB, pg func(func(*pgx.Conn) error) error) error {
			return report(tx, func(q rewards.ReportQuery, b *rowBuilder) error {
				stmt, args := streamSQL(Postgres, q)
				stmt = rebind(tx, stmt)
				return pg(func(c *pgx.Conn) error { return streamPostgres(ctx, c, stmt, args, b) })
			})
		})
	} else {
		err = db.read(ctx, func(tx *gorm.DB) error {
			return report(tx, func(q rewards.ReportQuery, b *rowBuilder) error { return streamSQLite(tx, q, b) })
		})
	}
	var cb callbackError
	if errors.As(err, &cb) {
		return nil, cb.err
	}
	if err != nil {
		return nil, fmt.Errorf("store: payout report: %w", translate(err))
	}
	return out, nil
}

// writersWait bounds how long a report waits for writers in flight.
const writersWait = 10 * time.Second

// waitForWriters returns once every write transaction in flight when it was called has
// finished, so that the report's snapshot holds every entry stamped before now. Ledger
// writers take their stamp after their first write (apply.go), that is after they have
// a transaction id on Postgres and the write lock on SQLite; a writer still to start
// stamps later than now. Without this, a report "to now" could miss an entry stamped
// before the cut and committed after the snapshot, and the same period reported again
// later would differ. On Postgres it takes a transaction id of its own (a statement that
// commits at once: every id assigned before it is smaller) and waits until no transaction
// of this database holding an id up to it is still running (a transaction writes only to
// the database it is connected to, so another database's long transaction on the same
// server does not hold the report up); on SQLite it takes and releases the write lock.
// Not pg_snapshot_xmax: that is one past the highest *completed* id, and a writer holding
// the highest id of all would not be waited for.
//
// It also waits until no event received before cut is still waiting for the applier: a
// session's report columns count by receipt, its credit by when it was applied, and a
// report taken while the session was recorded would count neither. It checks that again
// after the wait for writers, and waits again if an insert in flight brought one.
func (db *DB) waitForWriters(ctx context.Context, cut time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, writersWait)
	defer cancel()
	if db.beforeWritersWait != nil {
		db.beforeWritersWait()
	}
	// A cut in the future waits only for what was received until now: events arriving
	// meanwhile are after this report's snapshot anyway, and under steady traffic there
	// is always one waiting, so waiting for them would never end.
	if now := db.now(); cut.After(now) {
		cut = now
	}
	g := db.gorm.WithContext(ctx)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	// Until the inbox holds no event received before the cut both before and after the
	// wait for writers: an event whose insert was in flight at the first check commits
	// during that wait, still to be applied.
	for {
		if err := waitForBacklog(ctx, g, tick, cut); err != nil {
			return err
		}
		if err := db.waitForTransactions(ctx, g, tick); err != nil {
			return err
		}
		waiting, err := backlogBefore(g, cut)
		if err != nil || !waiting {
			return err
		}
	}
}

// backlogBefore reports whether an event received before cut waits for the applier.
func backlogBefore(g *gorm.DB, cut time.Time) (bool, error) {
	var waiting []int64
	if err := query(g, &waiting, `SELECT id FROM inbox WHERE status = `+statusLiteral(rewards.StatusRecorded)+
		` AND received_at < ? ORDER BY id LIMIT 1`, cut); err != nil {
		return false, translate(err)
	}
	return len(waiting) > 0, nil
}

// waitForBacklog returns once no event received before cut waits for the applier.
func waitForBacklog(ctx context.Context, g *gorm.DB, tick *time.Ticker, cut time.Time) error {
	gaveUp := fmt.Errorf("store: report: events received before the cut still wait for the applier after %s "+
		"(does a `tally serve` run? `tally replay` applies them without one): %w", writersWait, rewards.ErrUnavailable)
	for {
		waiting, err := backlogBefore(g, cut)
		switch {
		case err != nil && ctx.Err() != nil:
			return gaveUp // the look itself ran into the deadline
		case err != nil || !waiting:
			return err
		}
		select {
		case <-ctx.Done():
			return gaveUp
		case <-tick.C:
		}
	}
}

// waitForTransactions returns once every write transaction in flight when it was called
// has finished (see waitForWriters).
func (db *DB) waitForTransactions(ctx context.Context, g *gorm.DB, tick *time.Ticker) error {
	if db.dialect == SQLite {
		release, err := db.takeWriteTurn(ctx)
		if err != nil {
			return err
		}
		defer release()
		return translate(g.Transaction(func(*gorm.DB) error { return nil }))
	}
	var next int64
	if err := query(g, &next, `SELECT pg_current_xact_id()::text::bigint`); err != nil {
		return translate(err)
	}
	// pg_stat_activity and pg_prepared_xacts show 32-bit ids, which age() orders: an id
	// at least as old as ours was assigned before it.
	xid := strconv.FormatInt(next&0xFFFFFFFF, 10)
	for {
		var running bool
		if err := query(g, &running, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
				WHERE datname = current_database() AND age(backend_xid) >= age(?::text::xid))
			OR EXISTS (SELECT 1 FROM pg_prepared_xacts
				WHERE database = current_database() AND age(transaction) >= age(?::text::xid))`, xid, xid); err != nil {
			return translate(err)
		}
		if !running {
			return nil
		}
		if db.writerInFlight != nil {
			db.writerInFlight()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: report: write transactions still running after %s: %w", writersWait, rewards.ErrUnavailable)
		case <-tick.C:
		}
	}
}

// read runs fn in one read-only transaction (one snapshot).
func (db *DB) read(ctx context.Context, fn func(tx *gorm.DB) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return db.gorm.WithContext(ctx).Transaction(fn, opts)
}

func ceilMicro(t time.Time) time.Time {
	t = t.UTC()
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// propertyFilter is the optional "AND property = ?" of the report's queries.
func propertyFilter(q rewards.ReportQuery, args []any) (string, []any) {
	if q.Property == "" {
		return "", args
	}
	return ` AND property = ?`, append(args, q.Property)
}

// sums accumulates legs and sessions into report columns with rewards' AddLeg: the
// summary's ledger totals, and the tests' reference path (report_export_test.go).
type sums struct {
	rewards.PayoutAmounts
	openingPending decimal.Decimal
	active         bool // a leg or a session in the period
	sessions       int64
	usd            decimal.Decimal
}

// leg adds one wallet leg created before q.To; inPeriod says it is not before q.From.
func (s *sums) leg(bucket, kind string, amount decimal.Decimal, inPeriod bool) {
	s.active = s.active || inPeriod
	s.AddLeg(rewards.Bucket(bucket), rewards.EntryKind(kind), amount, inPeriod)
	if !inPeriod && rewards.Bucket(bucket) == rewards.Pending {
		s.openingPending = s.openingPending.Add(amount)
	}
}

// amountColumns are the report's wallet columns, read once from rewards.
var amountColumns = rewards.AmountColumns()

// The stream classes each wallet leg by a small integer, its bucket, its kind (one of
// those the columns name, else "other") and whether it is in the period, computed in SQL
// once per leg; rowBuilder then adds the leg to the sums classSlots lists for its class
// instead of comparing strings. Which classes a column sums comes from
// rewards.AmountColumn.Sums, so a class means what AddLeg means. Sessions are
// sessionClass.
var (
	legBuckets = []rewards.Bucket{rewards.Available, rewards.Pending}
	legKinds   = func() []rewards.EntryKind {
		var out []rewards.EntryKind
		for _, c := range amountColumns {
			if c.Kind != "" && !slices.Contains(out, c.Kind) {
				out = append(out, c.Kind)
			}
		}
		return out
	}()
)

// legClass is the class of a leg of legBuckets[b] (len(legBuckets): any other bucket)
// and, for k > 0, of kind legKinds[k-1] (k = 0: any other kind). The kind varies
// fastest, so the classes of a bucket before or in the period, which opening and closing
// balances sum, are one range.
func legClass(b, k int, inPeriod bool) int {
	h := b * 2
	if inPeriod {
		h++
	}
	return h*(len(legKinds)+1) + k
}

// legClassSQL computes legClass in SQL; its argument is q.From.
var legClassSQL = func() string {
	var sb strings.Builder
	sb.WriteString(`((CASE bucket`)
	for i, b := range legBuckets {
		fmt.Fprintf(&sb, ` WHEN '%s' THEN %d`, b, 2*i)
	}
	fmt.Fprintf(&sb, ` ELSE %d END + CASE WHEN created_at >= ? THEN 1 ELSE 0 END) * %d + CASE kind`, 2*len(legBuckets), len(legKinds)+1)
	for i, k := range legKinds {
		fmt.Fprintf(&sb, ` WHEN '%s' THEN %d`, k, i+1)
	}
	sb.WriteString(` ELSE 0 END)`)
	return sb.String()
}()

// legsClassed selects the wallet legs before q.To with their class c; its arguments are
// q.From, q.To and the property filter's.
var legsClassed = `SELECT property, user_id, ` + legClassSQL + ` AS c, amount FROM entries WHERE account = '' AND created_at < ?`

// legsBefore selects the wallet legs before q.To with in_period; its arguments are
// q.From, q.To and the property filter's.
const legsBefore = `SELECT property, user_id, bucket, kind, amount, created_at >= ? AS in_period
	FROM entries WHERE account = '' AND created_at < ?`

// readPostgres runs fn in one read-only REPEATABLE READ transaction (one snapshot) on one
// connection. tx runs statements through gorm as everywhere else; pg runs a function with
// the same connection's pgx.Conn, in the same transaction, for the stream, which pgx
// reads without database/sql's conversion of every column. That function must not use
// tx: database/sql holds the connection for it meanwhile.
//
// The transaction is begun and ended with statements on the connection, not as a
// database/sql Tx: a Tx holds the connection in a way that would deadlock database/sql
// when a panic leaves pg's function (it closes a connection it cannot use again by
// waiting for the Tx to end), and a panic in a row's callback must reach the handler's
// recovery, not hang. A connection whose transaction cannot be rolled back is discarded.
func (db *DB) readPostgres(ctx context.Context, fn func(tx *gorm.DB, pg func(func(*pgx.Conn) error) error) error) error {
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`); err != nil {
		return err
	}
	ended := false
	defer func() {
		if ended {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, `ROLLBACK`); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // discard it
		}
	}()
	tx := db.gorm.WithContext(ctx)
	tx.Statement.ConnPool = conn
	pg := func(f func(*pgx.Conn) error) error {
		return conn.Raw(func(dc any) error {
			c, ok := dc.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("store: report: the driver's connection is a %T, not pgx's", dc)
			}
			return f(c.Conn())
		})
	}
	if err := fn(tx, pg); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, `COMMIT`)
	ended = err == nil
	return err
}

// sessionClass is the class of a session record in the stream.
const sessionClass = -1

// streamSQL is the report's stream: each wallet leg before q.To with its class (legClass)
// and amount, and each session of the period (class sessionClass, its estimated revenue),
// in (property, user_id) byte order. Its arguments are those streamSQL returns.
func streamSQL(d Dialect, q rewards.ReportQuery) (string, []any) {
	legFilter, args := propertyFilter(q, []any{q.From, q.To})
	sessionFilter, args := propertyFilter(q, append(args, q.From, q.To))
	legs := legsClassed + legFilter
	sessions := `SELECT property, user_id, ` + strconv.Itoa(sessionClass) + `, revenue_usd FROM sessions` +
		` WHERE received_at >= ? AND received_at < ?` + sessionFilter
	if d == Postgres {
		// Postgres plans a UNION ALL branch that has a WHERE as a subquery of its own, which
		// reads in index order only when it is asked for that order itself; the outer ORDER
		// BY then merges the two ordered branches (Merge Append) instead of sorting them.
		// Both tables' property and user_id are COLLATE "C" (migration 00010), so their
		// order is byte order and the indexes' order. With one property, the branches'
		// order is by user_id alone (property is constant in them), which the outer ORDER
		// BY must then ask for too, or Postgres sorts the merged stream again.
		order := ` ORDER BY property, user_id`
		if q.Property != "" {
			order = ` ORDER BY user_id`
		}
		return `(` + legs + order + `) UNION ALL (` + sessions + order + `)` + order, args
	}
	// SQLite merges the two branches, each read in order from its (property, user_id, …)
	// index; for sessions the planner would rather range over sessions_received and sort.
	sessions = strings.Replace(sessions, ` FROM sessions`, ` FROM sessions INDEXED BY sessions_user`, 1)
	return legs + ` UNION ALL ` + sessions + ` ORDER BY property, user_id`, args
}

// streamFormats asks for the class and the amount in binary: no number formatting in
// Postgres, no parsing of digits here.
var streamFormats = pgx.QueryResultFormats{pgx.TextFormatCode, pgx.TextFormatCode, pgx.BinaryFormatCode, pgx.BinaryFormatCode}

// streamPostgres reads the stream stmt (streamSQL, placeholders numbered) into b.
func streamPostgres(ctx context.Context, c *pgx.Conn, stmt string, args []any, b *rowBuilder) error {
	// Parallel workers would scan in parts and merge them, competing with the export for
	// the cores; one backend streams the rows as soon.
	if _, err := c.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
		return err
	}
	rows, err := c.Query(ctx, stmt, append([]any{streamFormats}, args...)...)
	if err != nil {
		return err
	}
	defer rows.Close()
	// A connection configured for the simple protocol (default_query_exec_mode in the
	// database URL, for a pooler) gets every column as text whatever was asked for.
	fields := rows.FieldDescriptions()
	if len(fields) != 4 {
		// A statement that failed before its first row (a lost connection, a timeout)
		// describes no columns; pgx gives its error once the rows are closed.
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		return fmt.Errorf("store: report stream: %d columns", len(fields))
	}
	binaryClass, binaryAmount := fields[2].Format == pgx.BinaryFormatCode, fields[3].Format == pgx.BinaryFormatCode
	for rows.Next() {
		v := rows.RawValues()
		if err := b.next(v[0], v[1]); err != nil {
			return err
		}
		var class int
		if binaryClass && len(v[2]) == 4 {
			class = int(int32(binary.BigEndian.Uint32(v[2])))
		} else if class, err = strconv.Atoi(string(v[2])); err != nil {
			return fmt.Errorf("store: report stream: leg class %q", v[2])
		}
		if binaryAmount {
			err = b.addNumeric(class, v[3])
		} else {
			err = b.addText(class, v[3])
		}
		if err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return b.flush()
}

// streamSQLite reads the stream into b. Money is TEXT on SQLite.
func streamSQLite(tx *gorm.DB, q rewards.ReportQuery, b *rowBuilder) error {
	stmt, args := streamSQL(SQLite, q)
	rows, err := rawQuery(tx, stmt, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var property, user, amount sql.RawBytes
	var class int
	for rows.Next() {
		if err := rows.Scan(&property, &user, &class, &amount); err != nil {
			return err
		}
		if err := b.next(property, user); err != nil {
			return err
		}
		if err := b.addText(class, amount); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return b.flush()
}

// openingPendingSlot is rowBuilder's sum of pending legs before the period, after the
// amount columns' sums.
var openingPendingSlot = len(amountColumns)

// classSlots lists, for each leg class, the sums a leg of that class adds to: every
// amount column whose Sums holds for its bucket, kind and time (the same test
// rewards.PayoutAmounts.AddLeg makes), and openingPendingSlot for a pending leg before
// the period. classInPeriod says whether the class is of legs in the period.
var classSlots, classInPeriod = func() ([][]int, []bool) {
	n := (len(legBuckets) + 1) * 2 * (len(legKinds) + 1)
	slots, inPeriods := make([][]int, n), make([]bool, n)
	for b := 0; b <= len(legBuckets); b++ {
		var bucket rewards.Bucket // "": a bucket no column names
		if b < len(legBuckets) {
			bucket = legBuckets[b]
		}
		for k := 0; k <= len(legKinds); k++ {
			var kind rewards.EntryKind // "": a kind no column names
			if k > 0 {
				kind = legKinds[k-1]
			}
			for _, inPeriod := range []bool{false, true} {
				c := legClass(b, k, inPeriod)
				inPeriods[c] = inPeriod
				for i := range amountColumns {
					if amountColumns[i].Sums(bucket, kind, inPeriod) {
						slots[c] = append(slots[c], i)
					}
				}
				if bucket == rewards.Pending && !inPeriod {
					slots[c] = append(slots[c], openingPendingSlot)
				}
			}
		}
	}
	return slots, inPeriods
}()

// rowBuilder adds up the stream one (property, user) at a time and calls fn with each
// finished row that belongs in the report: activity in the period or a balance at its
// start.
type rowBuilder struct {
	fn       func(rewards.PayoutRow) error
	row      rewards.PayoutRow // Property and User of the current user
	started  bool
	sums     []exactSum // by amount column, then openingPendingSlot
	active   bool       // a leg or a session in the period
	sessions int64
	usd      exactSum
}

func newRowBuilder(fn func(rewards.PayoutRow) error) *rowBuilder {
	return &rowBuilder{fn: fn, sums: make([]exactSum, len(amountColumns)+1)}
}

// next starts a new row unless property and user are the current row's, flushing that.
func (b *rowBuilder) next(property, user []byte) error {
	if b.started && string(user) == b.row.User && string(property) == b.row.Property {
		return nil
	}
	if err := b.flush(); err != nil {
		return err
	}
	if !b.started || string(property) != b.row.Property {
		b.row.Property = string(property)
	}
	b.row.User = string(user)
	b.started, b.active, b.sessions, b.usd = true, false, 0, exactSum{}
	clear(b.sums)
	return nil
}

// add adds an amount of coef×10^-scale of class (a legClass, or sessionClass).
func (b *rowBuilder) add(class int, coef int64, scale int32) error {
	if class == sessionClass {
		b.active = true
		b.sessions++
		b.usd.add(coef, scale)
		return nil
	}
	if class < 0 || class >= len(classSlots) {
		return fmt.Errorf("store: report stream: leg class %d out of range", class)
	}
	b.active = b.active || classInPeriod[class]
	for _, s := range classSlots[class] {
		b.sums[s].add(coef, scale)
	}
	return nil
}

// addText adds an amount written as decimal text: in int64 when it fits, else as a
// decimal.
func (b *rowBuilder) addText(class int, amount []byte) error {
	if coef, scale, ok := parseDecimal(amount); ok {
		return b.add(class, coef, scale)
	}
	d, err := decimal.NewFromString(string(amount))
	if err != nil {
		return err
	}
	return b.addDecimal(class, d)
}

// addNumeric adds an amount in Postgres's binary NUMERIC: in int64 when it fits, else
// as a decimal.
func (b *rowBuilder) addNumeric(class int, amount []byte) error {
	if coef, scale, ok := pgNumeric(amount); ok {
		return b.add(class, coef, scale)
	}
	d, err := pgNumericDecimal(amount)
	if err != nil {
		return err
	}
	return b.addDecimal(class, d)
}

// addDecimal is add for an amount beyond add's int64.
func (b *rowBuilder) addDecimal(class int, d decimal.Decimal) error {
	if class == sessionClass {
		b.active = true
		b.sessions++
		b.usd.addDecimal(d)
		return nil
	}
	if class < 0 || class >= len(classSlots) {
		return fmt.Errorf("store: report stream: leg class %d out of range", class)
	}
	b.active = b.active || classInPeriod[class]
	for _, s := range classSlots[class] {
		b.sums[s].addDecimal(d)
	}
	return nil
}

// flush hands the current row to fn if it belongs in the report.
func (b *rowBuilder) flush() error {
	if !b.started {
		return nil
	}
	r := &b.row
	for i := range amountColumns {
		d := b.sums[i].value()
		if amountColumns[i].Negate && !d.IsZero() {
			d = d.Neg()
		}
		*amountColumns[i].Field(&r.PayoutAmounts) = d
	}
	r.Sessions, r.EstimatedRevenueUSD = b.sessions, b.usd.value()
	if !b.active && r.OpeningAvailable.IsZero() && b.sums[openingPendingSlot].value().IsZero() {
		return nil
	}
	if err := b.fn(*r); err != nil {
		return callbackError{err}
	}
	return nil
}

// exactSum is an exact sum of decimals: coef×10^-scale while it fits an int64, which
// needs no big-number arithmetic and no allocation; what does not fit moves to rest.
type exactSum struct {
	coef    int64
	scale   int32
	spilled bool // rest holds part of the sum
	rest    decimal.Decimal
}

// add adds c×10^-e.
func (s *exactSum) add(c int64, e int32) {
	if c == 0 {
		return
	}
	if s.coef == 0 {
		s.coef, s.scale = c, e
		return
	}
	a, b, scale, ok := s.coef, c, s.scale, true
	switch {
	case e > scale:
		a, ok = rescale(a, e-scale)
		scale = e
	case e < scale:
		b, ok = rescale(b, scale-e)
	}
	if sum := a + b; ok && (a^sum)&(b^sum) >= 0 { // no overflow
		s.coef, s.scale = sum, scale
		return
	}
	s.spill()
	s.coef, s.scale = c, e
}

// addDecimal adds d.
func (s *exactSum) addDecimal(d decimal.Decimal) {
	s.rest, s.spilled = s.rest.Add(d), true
}

func (s *exactSum) spill() {
	if s.coef != 0 {
		s.addDecimal(decimal.New(s.coef, -s.scale))
		s.coef = 0
	}
}

// value is the sum; zero is decimal.Decimal{}, which allocates nothing.
func (s *exactSum) value() decimal.Decimal {
	var d decimal.Decimal
	if s.coef != 0 {
		d = decimal.New(s.coef, -s.scale)
	}
	if s.spilled {
		d = d.Add(s.rest)
	}
	return d
}

var pow10 = func() (p [19]uint64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// rescale returns v×10^n; ok is false if that does not fit an int64.
func rescale(v int64, n int32) (int64, bool) {
	if n < 0 || n >= int32(len(pow10)) {
		return 0, false
	}
	u := uint64(v)
	if v < 0 {
		u = -u
	}
	hi, lo := bits.Mul64(u, pow10[n])
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if v < 0 {
		return -int64(lo), true
	}
	return int64(lo), true
}

// parseDecimal parses an optional '-', digits and an optional fraction ("-12.5") into
// coef×10^-scale; ok is false for any other form or more than 18 significant digits.
func parseDecimal(b []byte) (coef int64, scale int32, ok bool) {
	i, neg := 0, false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg, i = b[0] == '-', 1
	}
	var v int64
	digits, seen, dot := 0, false, false
	for ; i < len(b); i++ {
		switch ch := b[i]; {
		case ch >= '0' && ch <= '9':
			seen = true
			if v != 0 || ch != '0' {
				if digits++; digits > 18 {
					return 0, 0, false
				}
			}
			v = v*10 + int64(ch-'0')
			if dot {
				scale++
			}
		case ch == '.' && !dot:
			dot = true
		default:
			return 0, 0, false
		}
	}
	if !seen {
		return 0, 0, false
	}
	if neg {
		v = -v
	}
	return v, scale, true
}

// Postgres's binary NUMERIC: int16 digit count, int16 weight, uint16 sign, uint16 display
// scale, then base-10000 digits, the first of which is worth 10000^weight; trailing zero
// digits are not stored.
const (
	pgNumericPos = 0x0000
	pgNumericNeg = 0x4000
)

// pgNumeric decodes a binary NUMERIC into coef×10^-scale; ok is false when it does not
// fit an int64 or is not a finite number (pgNumericDecimal then says which).
func pgNumeric(b []byte) (coef int64, scale int32, ok bool) {
	if len(b) < 8 {
		return 0, 0, false
	}
	n := int(int16(binary.BigEndian.Uint16(b)))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	if sign != pgNumericPos && sign != pgNumericNeg || n < 0 || len(b) != 8+2*n {
		return 0, 0, false
	}
	var v int64
	for i := 0; i < n; i++ {
		d := int64(binary.BigEndian.Uint16(b[8+2*i:]))
		if v > (math.MaxInt64-d)/10000 {
			return 0, 0, false
		}
		v = v*10000 + d
	}
	if v == 0 {
		return 0, 0, true
	}
	if exp := weight - n + 1; exp >= 0 { // an integer: v×10000^exp
		for ; exp > 0; exp-- {
			if v > math.MaxInt64/10000 {
				return 0, 0, false
			}
			v *= 10000
		}
	} else {
		scale = int32(-4 * exp)
		for scale > 0 && v%10 == 0 {
			v /= 10
			scale--
		}
	}
	if sign == pgNumericNeg {
		v = -v
	}
	return v, scale, true
}

// pgNumericDecimal decodes any finite binary NUMERIC.
func pgNumericDecimal(b []byte) (decimal.Decimal, error) {
	if len(b) < 8 {
		return decimal.Decimal{}, fmt.Errorf("store: report stream: a NUMERIC of %d bytes", len(b))
	}
	n := int(int16(binary.BigEndian.Uint16(b)))
	weight := int(int16(binary.BigEndian.Uint16(b[2:])))
	sign := binary.BigEndian.Uint16(b[4:])
	if sign != pgNumericPos && sign != pgNumericNeg || n < 0 || len(b) != 8+2*n {
		return decimal.Decimal{}, fmt.Errorf("store: report stream: an amount that is not a finite number")
	}
	v, base := new(big.Int), big.NewInt(10000)
	for i := 0; i < n; i++ {
		v.Mul(v, base).Add(v, big.NewInt(int64(binary.BigEndian.Uint16(b[8+2*i:]))))
	}
	if sign == pgNumericNeg {
		v.Neg(v)
	}
	return decimal.NewFromBigInt(v, int32(4*(weight-n+1))), nil
}

// payoutSummary computes each property's figures straight from the sessions and the
// legs, without grouping by user: an independent total to reconcile the rows against.
func payoutSummary(tx *gorm.DB, q rewards.ReportQuery, inSQL bool) ([]rewards.PropertySummary, error) {
	byProp := map[string]*rewards.PropertySummary{}
	var order []string
	get := func(p string) *rewards.PropertySummary {
		s, ok := byProp[p]
		if !ok {
			s = &rewards.PropertySummary{Property: p}
			byProp[p] = s
			order = append(order, p)
		}
		return s
	}
	if err := sessionSummary(tx, q, inSQL, get); err != nil {
		return nil, err
	}
	if err := ledgerSummary(tx, q, inSQL, get); err != nil {
		return nil, err
	}
	if err := trueUpSummary(tx, q, get); err != nil {
		return nil, err
	}
	slices.Sort(order)
	out := make([]rewards.PropertySummary, len(order))
	for i, p := range order {
		out[i] = *byProp[p]
	}
	return out, nil
}

func sessionSummary(tx *gorm.DB, q rewards.ReportQuery, inSQL bool, get func(string) *rewards.PropertySummary) error {
	filter, args := propertyFilter(q, []any{q.From, q.To})
	where := ` FROM sessions WHERE received_at >= ? AND received_at < ?` + filter
	if inSQL {
		rows, err := tx.Raw(`SELECT property, count(*), SUM(revenue_usd), SUM(gross), SUM(credited), SUM(withheld), SUM(capped_excess)`+
			where+` GROUP BY property`, args...).Rows()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p string
			var r rewards.PropertySummary
			if err := rows.Scan(&p, &r.Sessions, &r.EstimatedRevenueUSD, &r.Gross, &r.CreditedToUsers, &r.Withheld, &r.CappedExcess); err != nil {
				return err
			}
			s := get(p)
			s.Sessions, s.EstimatedRevenueUSD, s.Gross, s.CreditedToUsers, s.Withheld, s.CappedExcess =
				r.Sessions, r.EstimatedRevenueUSD, r.Gross, r.CreditedToUsers, r.Withheld, r.CappedExcess
		}
		return rows.Err()
	}
	rows, err := tx.Raw(`SELECT property, revenue_usd, gross, credited, withheld, capped_excess`+where, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var p string
	var usd, gross, credited, withheld, capped decimal.Decimal
	for rows.Next() {
		if err := rows.Scan(&p, &usd, &gross, &credited, &withheld, &capped); err != nil {
			return err
		}
		s := get(p)
		s.Sessions++
		s.EstimatedRevenueUSD = s.EstimatedRevenueUSD.Add(usd)
		s.Gross = s.Gross.Add(gross)
		s.CreditedToUsers = s.CreditedToUsers.Add(credited)
		s.Withheld = s.Withheld.Add(withheld)
		s.CappedExcess = s.CappedExcess.Add(capped)
	}
	return rows.Err()
}

// ledgerSummary adds up every wallet leg before q.To by property, with the same
// rewards.PayoutAmounts.AddLeg as the rows. In SQL, Postgres first sums the legs of each
// (property, bucket, kind, in period or not), leaving a handful of rows to add in Go.
func ledgerSummary(tx *gorm.DB, q rewards.ReportQuery, inSQL bool, get func(string) *rewards.PropertySummary) error {
	filter, args := propertyFilter(q, []any{q.From, q.To})
	stmt := `SELECT property, bucket, kind, amount, in_period FROM (` + legsBefore + filter + `) e`
	if inSQL {
		stmt = `SELECT property, bucket, kind, SUM(amount), in_period FROM (` + legsBefore + filter + `) e GROUP BY 1, 2, 3, 5`
	}
	rows, err := tx.Raw(stmt, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	acc := map[string]*sums{}
	var p, bucket, kind string
	var amount decimal.Decimal
	var inPeriod bool
	for rows.Next() {
		if err := rows.Scan(&p, &bucket, &kind, &amount, &inPeriod); err != nil {
			return err
		}
		s, ok := acc[p]
		if !ok {
			s = &sums{}
			acc[p] = s
		}
		s.leg(bucket, kind, amount, inPeriod)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for p, s := range acc {
		get(p).Ledger = s.PayoutAmounts
	}
	return nil
}

// trueUpSummary adds each property's booked revenue, released buffer and shortfall of the
// days whose start falls in [q.From, q.To). Booked revenue is per day, so a period that
// does not start and end at midnight counts the days that start inside it.
func trueUpSummary(tx *gorm.DB, q rewards.ReportQuery, get func(string) *rewards.PropertySummary) error {
	// Days are compared as text, so the bounds are the first and the last day counted,
	// both inclusive: the day after the last can be 10000-01-01, which sorts before
	// every day of four-digit years (a report to 9999-12-31T23:59:59Z lost its true-ups).
	ceilDay := func(t time.Time) time.Time {
		d := t.UTC().Truncate(24 * time.Hour)
		if d.Before(t) {
			d = d.AddDate(0, 0, 1)
		}
		return d
	}
	from, to := ceilDay(q.From), ceilDay(q.To)
	if !from.Before(to) {
		return nil
	}
	filter, args := propertyFilter(q, []any{from.Format(time.DateOnly), to.AddDate(0, 0, -1).Format(time.DateOnly)})
	type bookedRow struct {
		Property   string
		RevenueUsd decimal.Decimal
	}
	var booked []bookedRow
	if err := tx.Raw(`SELECT property, revenue_usd FROM booked_revenue WHERE day >= ? AND day <= ?`+filter, args...).Scan(&booked).Error; err != nil {
		return err
	}
	for _, b := range booked {
		s := get(b.Property)
		s.BookedUSD = s.BookedUSD.Add(b.RevenueUsd)
	}
	type dayRow struct {
		Property  string
		Released  decimal.Decimal
		Shortfall decimal.Decimal
	}
	var days []dayRow
	if err := tx.Raw(`SELECT property, released, shortfall FROM trueup_days WHERE day >= ? AND day <= ?`+filter, args...).Scan(&days).Error; err != nil {
		return err
	}
	for _, d := range days {
		s := get(d.Property)
		s.Released = s.Released.Add(d.Released)
		s.Shortfall = s.Shortfall.Add(d.Shortfall)
	}
	return nil
}
