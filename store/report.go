package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Payout reports (DESIGN.md §3, Finance and ops). Every figure is a sum of wallet legs
// (entries with account '') selected by created_at, or of session records selected by
// received_at; none comes from the wallets' running balances, so the report of a past
// period is the same whenever it is pulled.
//
// Both dialects sum the same stream (streamSQL): the wallet legs before the period's end
// and the period's sessions. Neither holds more than one user's sums in this process:
//
//   - in Go (SQLite): money is TEXT there and SUM would turn it into a float, so the
//     stream comes out ordered by (property, user) and is added up with decimal
//     arithmetic, one user at a time;
//   - in SQL (Postgres): NUMERIC sums are exact, so Postgres groups the stream by
//     (property, user) and only the rows cross the wire.
//
// The tests run the Go path on Postgres too and hold the two against each other.
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
	_, err := db.payoutReport(ctx, q, fn, false, db.dialect == Postgres)
	return err
}

// PayoutSummary returns, for each property with sessions or wallet legs up to q.To (or
// only q.Property), its sessions in the period and the ledger's totals of every report
// column, ordered by property.
func (db *DB) PayoutSummary(ctx context.Context, q rewards.ReportQuery) ([]rewards.PropertySummary, error) {
	return db.payoutReport(ctx, q, nil, true, db.dialect == Postgres)
}

// PayoutReport is PayoutRows followed by PayoutSummary, both read from one snapshot, so
// the summary's ledger totals are those of the rows even while writers are busy.
func (db *DB) PayoutReport(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) ([]rewards.PropertySummary, error) {
	return db.payoutReport(ctx, q, fn, true, db.dialect == Postgres)
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

func (db *DB) payoutReport(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error, summary, inSQL bool) ([]rewards.PropertySummary, error) {
	if q.From.IsZero() || q.To.IsZero() || !q.From.Before(q.To) {
		return nil, fmt.Errorf("store: report period [%s, %s): %w", q.From, q.To, rewards.ErrInvalidRequest)
	}
	// Times are stored at microsecond precision; rounding the bounds up to a microsecond
	// selects exactly the same instants and keeps both dialects' comparisons alike.
	q.From, q.To = ceilMicro(q.From), ceilMicro(q.To)
	if err := db.waitForWriters(ctx, q.To); err != nil {
		return nil, err
	}
	var out []rewards.PropertySummary
	err := db.read(ctx, func(tx *gorm.DB) error {
		if fn != nil {
			rowsFn := payoutRowsGo
			if inSQL {
				rowsFn = payoutRowsSQL
			}
			if err := rowsFn(tx, q, fn); err != nil {
				return err
			}
		}
		if summary {
			var err error
			out, err = payoutSummary(tx, q, inSQL)
			return err
		}
		return nil
	})
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
// commits at once: every id assigned before it is smaller) and waits until the oldest
// running transaction id passes it (a long transaction anywhere on the server delays it,
// as it delays the balance feed); on SQLite it takes and releases the write lock. Not
// pg_snapshot_xmax: that is one past the highest *completed* id, and a writer holding the
// highest id of all would not be waited for.
//
// It also waits until no event received before cut is still waiting for the applier: a
// session's report columns count by receipt, its credit by when it was applied, and a
// report taken while the session was recorded would count neither.
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
	for {
		var waiting []int64
		if err := query(g, &waiting, `SELECT id FROM inbox WHERE status = `+statusLiteral(rewards.StatusRecorded)+
			` AND received_at < ? ORDER BY id LIMIT 1`, cut); err != nil {
			return translate(err)
		}
		if len(waiting) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: report: events received before the cut still wait for the applier after %s: %w", writersWait, rewards.ErrUnavailable)
		case <-tick.C:
		}
	}
	if db.dialect == SQLite {
		return translate(g.Transaction(func(*gorm.DB) error { return nil }))
	}
	var next int64
	if err := query(g, &next, `SELECT pg_current_xact_id()::text::bigint`); err != nil {
		return translate(err)
	}
	for {
		var oldest int64
		if err := query(g, &oldest, `SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint`); err != nil {
			return translate(err)
		}
		if oldest > next {
			return nil
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

// byteOrder is the ORDER BY that sorts (property, user_id) by bytes on both dialects.
func byteOrder(tx *gorm.DB) string {
	if tx.Dialector.Name() == string(Postgres) {
		return ` ORDER BY property COLLATE "C", user_id COLLATE "C"`
	}
	return ` ORDER BY property, user_id` // BINARY collation
}

// sums accumulates legs and sessions into report columns. Both the Go path and the
// summary use it, so a column means the same thing everywhere.
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

// included reports whether a (property, user) is a report row: activity in the period
// or a balance at its start.
func (s *sums) included() bool {
	return s.active || !s.OpeningAvailable.IsZero() || !s.openingPending.IsZero()
}

// sessionKind marks session records in the Go path's merged stream.
const sessionKind = "@session"

// streamSQL is the stream both paths sum: wallet legs before q.To, flagged in_period,
// and the period's sessions (kind sessionKind, no bucket). Its arguments are q.From,
// q.To, the leg filter's, q.From, q.To, the session filter's.
func streamSQL(legFilter, sessionFilter string, tx *gorm.DB) string {
	sessions := `sessions`
	if tx.Dialector.Name() == string(SQLite) {
		// Read in (property, user_id) order, as the merge below needs; the planner would
		// rather range over sessions_received and sort.
		sessions = `sessions INDEXED BY sessions_user`
	}
	return legsBefore + legFilter + `
		UNION ALL
		SELECT property, user_id, '', '` + sessionKind + `', revenue_usd, (1 = 1)
		FROM ` + sessions + ` WHERE received_at >= ? AND received_at < ?` + sessionFilter
}

// goStreamSQL is the Go path's query: the stream in (property, user) order. SQLite
// merges the two branches, each read in order from its (property, user_id, …) index,
// without sorting. Postgres cannot collate a UNION's ORDER BY, so it sorts the union
// as a subquery (the Go path is not Postgres's default).
func goStreamSQL(legFilter, sessionFilter string, tx *gorm.DB) string {
	if tx.Dialector.Name() == string(Postgres) {
		return `SELECT * FROM (` + streamSQL(legFilter, sessionFilter, tx) + `) m` + byteOrder(tx)
	}
	return streamSQL(legFilter, sessionFilter, tx) + byteOrder(tx)
}

// payoutRowsGo streams the legs before q.To and the sessions of the period, merged in
// (property, user) order by the database, and adds them up one user at a time.
func payoutRowsGo(tx *gorm.DB, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error {
	args := []any{q.From, q.To}
	legFilter, args := propertyFilter(q, args)
	args = append(args, q.From, q.To)
	sessionFilter, args := propertyFilter(q, args)
	rows, err := tx.Raw(goStreamSQL(legFilter, sessionFilter, tx), args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		cur                          rewards.PayoutRow
		acc                          sums
		started                      bool
		property, user, bucket, kind string
		amount                       decimal.Decimal
		inPeriod                     bool
	)
	flush := func() error {
		if !started || !acc.included() {
			return nil
		}
		cur.PayoutAmounts, cur.Sessions, cur.EstimatedRevenueUSD = acc.PayoutAmounts, acc.sessions, acc.usd
		if err := fn(cur); err != nil {
			return callbackError{err}
		}
		return nil
	}
	for rows.Next() {
		if err := rows.Scan(&property, &user, &bucket, &kind, &amount, &inPeriod); err != nil {
			return err
		}
		if !started || property != cur.Property || user != cur.User {
			if err := flush(); err != nil {
				return err
			}
			cur, acc, started = rewards.PayoutRow{Property: property, User: user}, sums{}, true
		}
		if kind == sessionKind {
			acc.active = true
			acc.sessions++
			acc.usd = acc.usd.Add(amount)
			continue
		}
		acc.leg(bucket, kind, amount, inPeriod)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

// amountColumns are the report's wallet columns, read once from rewards.
var amountColumns = rewards.AmountColumns()

// The SQL path classes each wallet leg by a small integer, its bucket, its kind (one of
// those the columns name, else "other") and whether it is in the period, computed once
// per leg; each column's aggregate then tests that integer instead of comparing the
// strings again for every column (measured: about a tenth of the query's time). Which
// classes a column sums comes from rewards.AmountColumn.Sums, so the SQL means what the
// Go path's AddLeg means. Sessions are class -1.
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

// classesWhere is the SQL condition on c that holds for the classes of legs for which
// sums(bucket, kind, inPeriod) holds, as ranges.
func classesWhere(sums func(rewards.Bucket, rewards.EntryKind, bool) bool) string {
	var codes []int
	for b, bucket := range legBuckets {
		for k := 0; k <= len(legKinds); k++ {
			var kind rewards.EntryKind // "": a kind no column names
			if k > 0 {
				kind = legKinds[k-1]
			}
			for _, inPeriod := range []bool{false, true} {
				if sums(bucket, kind, inPeriod) {
					codes = append(codes, legClass(b, k, inPeriod))
				}
			}
		}
	}
	slices.Sort(codes)
	var conds []string
	for i := 0; i < len(codes); {
		j := i
		for j+1 < len(codes) && codes[j+1] == codes[j]+1 {
			j++
		}
		if i == j {
			conds = append(conds, fmt.Sprintf(`c = %d`, codes[i]))
		} else {
			conds = append(conds, fmt.Sprintf(`c BETWEEN %d AND %d`, codes[i], codes[j]))
		}
		i = j + 1
	}
	if len(conds) == 0 {
		return `false`
	}
	return strings.Join(conds, ` OR `)
}

// legColumns are the report's wallet columns as Postgres aggregates over classed legs
// (legsClassed), in rewards.AmountColumns' order, followed by opening_pending and
// active. (legsClassed must stay a subquery that computes c once per leg: a UNION ALL
// branch, as in payoutRowsSQL. Flattened into the aggregates' query, Postgres would
// repeat the CASE for every aggregate, which measured five times slower.)
var legColumns = func() string {
	var sb strings.Builder
	for _, c := range amountColumns {
		sum := `amount`
		if c.Negate {
			sum = `-amount`
		}
		fmt.Fprintf(&sb, "COALESCE(SUM(%s) FILTER (WHERE %s), 0) AS %s,\n", sum, classesWhere(c.Sums), c.Name)
	}
	openingPending := classesWhere(func(b rewards.Bucket, _ rewards.EntryKind, inPeriod bool) bool {
		return b == rewards.Pending && !inPeriod
	})
	inPeriod := classesWhere(func(_ rewards.Bucket, _ rewards.EntryKind, inPeriod bool) bool { return inPeriod })
	fmt.Fprintf(&sb, "COALESCE(SUM(amount) FILTER (WHERE %s), 0) AS opening_pending,\n", openingPending)
	fmt.Fprintf(&sb, "bool_or(%s) AS active", inPeriod) // a leg in the period
	return sb.String()
}()

// amountDest returns scan destinations for the wallet columns of a, in legColumns' order.
func amountDest(a *rewards.PayoutAmounts, dest []any) []any {
	for _, c := range amountColumns {
		dest = append(dest, money{c.Field(a)})
	}
	return dest
}

// amountNames are the wallet columns' names, in order.
func amountNames() []string {
	out := make([]string, len(amountColumns))
	for i, c := range amountColumns {
		out[i] = c.Name
	}
	return out
}

// legsBefore selects the wallet legs before q.To with in_period; its arguments are
// q.From, q.To and the property filter's.
const legsBefore = `SELECT property, user_id, bucket, kind, amount, created_at >= ? AS in_period
	FROM entries WHERE account = '' AND created_at < ?`

// moneyText selects NUMERIC columns as text without trailing zeros, and zero as NULL:
// the driver passes text through, where it would convert binary NUMERIC through big
// integers; short literals parse on decimal's fast path; and a NULL, which most report
// cells are, costs no allocation at all. Exact either way.
func moneyText(cols ...string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = `trim_scale(NULLIF(` + c + `, 0))::text`
	}
	return strings.Join(out, ", ")
}

// payoutRowsSQL lets Postgres sum each user's legs and sessions and streams the result.
func payoutRowsSQL(tx *gorm.DB, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error {
	args := []any{q.From, q.To}
	legFilter, args := propertyFilter(q, args)
	args = append(args, q.From, q.To)
	sessionFilter, args := propertyFilter(q, args)
	// Parallel workers would sort the stream in parts and merge them, competing with the
	// export for the cores; one backend sorting it streams the rows sooner. Measured on
	// 2 cores (BenchmarkPayoutExport): about 1.7 times the rows/s. SET LOCAL ends with
	// this read-only transaction.
	if err := tx.Exec(`SET LOCAL max_parallel_workers_per_gather = 0`).Error; err != nil {
		return err
	}
	// One sort of the stream, in byte order, serves both the grouping and the output
	// order; it is faster than a locale's collation and needs no second sort.
	rows, err := tx.Raw(`SELECT property, user_id, `+moneyText(amountNames()...)+`, sessions, `+moneyText("usd")+`
		FROM (
			SELECT property COLLATE "C" AS property, user_id COLLATE "C" AS user_id, `+legColumns+`,
				count(*) FILTER (WHERE c = -1) AS sessions,
				SUM(amount) FILTER (WHERE c = -1) AS usd
			FROM (`+legsClassed+legFilter+`
				UNION ALL
				SELECT property, user_id, -1, revenue_usd FROM sessions WHERE received_at >= ? AND received_at < ?`+sessionFilter+`) e
			GROUP BY 1, 2
		) g
		WHERE active OR sessions > 0 OR opening_available <> 0 OR opening_pending <> 0
		ORDER BY property, user_id`, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var r rewards.PayoutRow
	dest := append(amountDest(&r.PayoutAmounts, []any{&r.Property, &r.User}), &r.Sessions, money{&r.EstimatedRevenueUSD})
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return callbackError{err}
		}
	}
	return rows.Err()
}

// money scans a moneyText column into a decimal: NULL is zero.
type money struct{ d *decimal.Decimal }

func (m money) Scan(src any) error {
	if src == nil {
		*m.d = decimal.Decimal{}
		return nil
	}
	return m.d.Scan(src)
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
	ceilDay := func(t time.Time) string {
		d := t.UTC().Truncate(24 * time.Hour)
		if d.Before(t) {
			d = d.AddDate(0, 0, 1)
		}
		return d.Format(time.DateOnly)
	}
	from, to := ceilDay(q.From), ceilDay(q.To)
	if from >= to {
		return nil
	}
	filter, args := propertyFilter(q, []any{from, to})
	type bookedRow struct {
		Property   string
		RevenueUsd decimal.Decimal
	}
	var booked []bookedRow
	if err := tx.Raw(`SELECT property, revenue_usd FROM booked_revenue WHERE day >= ? AND day < ?`+filter, args...).Scan(&booked).Error; err != nil {
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
	if err := tx.Raw(`SELECT property, released, shortfall FROM trueup_days WHERE day >= ? AND day < ?`+filter, args...).Scan(&days).Error; err != nil {
		return err
	}
	for _, d := range days {
		s := get(d.Property)
		s.Released = s.Released.Add(d.Released)
		s.Shortfall = s.Shortfall.Add(d.Shortfall)
	}
	return nil
}
