package store

import (
	"context"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Test-only access for the payout report tests (report_test.go).

// PayoutRowsInGo reads the report's rows through the reference path below (payoutRowsRef),
// so the tests can hold the stream against it on the same data, on both dialects.
func (db *DB) PayoutRowsInGo(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error {
	_, err := db.payoutReport(ctx, q, fn, false, payoutRowsRef)
	return err
}

// PayoutSummaryInGo is PayoutSummary computed in Go whatever the dialect.
func (db *DB) PayoutSummaryInGo(ctx context.Context, q rewards.ReportQuery) ([]rewards.PropertySummary, error) {
	return db.payoutReport(ctx, q, nil, true, payoutRowsRef)
}

// The reference path: the legs before q.To by bucket, kind and in_period, and the
// period's sessions, read through database/sql and gorm in byte order (the database
// sorts), and added up with decimal arithmetic and rewards.PayoutAmounts.AddLeg. It
// shares no code with the stream but the period's bounds and legsBefore.

// included reports whether a (property, user) is a report row: activity in the period
// or a balance at its start.
func (s *sums) included() bool {
	return s.active || !s.OpeningAvailable.IsZero() || !s.openingPending.IsZero()
}

// sessionKind marks session records in the reference stream.
const sessionKind = "@session"

// refStreamSQL is the reference stream: wallet legs before q.To, flagged in_period, and
// the period's sessions (kind sessionKind, no bucket), ordered by bytes. Its arguments
// are q.From, q.To, the leg filter's, q.From, q.To, the session filter's.
func refStreamSQL(legFilter, sessionFilter string, tx *gorm.DB) string {
	order := ` ORDER BY property, user_id` // BINARY collation
	if tx.Dialector.Name() == string(Postgres) {
		order = ` ORDER BY property COLLATE "C", user_id COLLATE "C"`
	}
	return `SELECT * FROM (` + legsBefore + legFilter + `
		UNION ALL
		SELECT property, user_id, '', '` + sessionKind + `', revenue_usd, (1 = 1)
		FROM sessions WHERE received_at >= ? AND received_at < ?` + sessionFilter + `) m` + order
}

// payoutRowsRef adds the reference stream up one user at a time.
func payoutRowsRef(tx *gorm.DB, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error {
	args := []any{q.From, q.To}
	legFilter, args := propertyFilter(q, args)
	args = append(args, q.From, q.To)
	sessionFilter, args := propertyFilter(q, args)
	rows, err := tx.Raw(refStreamSQL(legFilter, sessionFilter, tx), args...).Rows()
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

// ReportTestExec runs one statement, for bulk fixtures.
func (db *DB) ReportTestExec(ctx context.Context, q string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(q, args...).Error
}

// ReportTestLeg is one ledger leg as stored.
type ReportTestLeg struct {
	Property  string
	UserID    string
	Account   string
	Bucket    string
	Kind      string
	Amount    decimal.Decimal
	CreatedAt time.Time
}

// ReportTestLegs returns every leg of the ledger, wallet and system ones.
func (db *DB) ReportTestLegs(ctx context.Context) ([]ReportTestLeg, error) {
	var out []ReportTestLeg
	err := db.gorm.WithContext(ctx).Raw(`SELECT property, user_id, account, bucket, kind, amount, created_at FROM entries ORDER BY id`).
		Scan(&out).Error
	for i := range out {
		out[i].CreatedAt = out[i].CreatedAt.UTC()
	}
	return out, err
}

// ReportTestSession is one session record as stored.
type ReportTestSession struct {
	Property     string
	UserID       string
	RevenueUSD   decimal.Decimal
	Gross        decimal.Decimal
	Withheld     decimal.Decimal
	Credited     decimal.Decimal
	CappedExcess decimal.Decimal
	ReceivedAt   time.Time
}

// ReportTestSessions returns every session record.
func (db *DB) ReportTestSessions(ctx context.Context) ([]ReportTestSession, error) {
	var out []ReportTestSession
	err := db.gorm.WithContext(ctx).Raw(`SELECT property, user_id, revenue_usd, gross, withheld, credited, capped_excess, received_at
		FROM sessions ORDER BY inbox_id`).Scan(&out).Error
	for i := range out {
		out[i].ReceivedAt = out[i].ReceivedAt.UTC()
	}
	return out, err
}

// ReportTestPlan returns the query plan of the report's stream, to check it merges
// index-ordered branches rather than sorting every leg: SQLite's EXPLAIN QUERY PLAN
// details, or Postgres's EXPLAIN lines with sorting priced out (enable_sort off), so
// that a Sort is left only where no index gives the order.
func (db *DB) ReportTestPlan(ctx context.Context, q rewards.ReportQuery) ([]string, error) {
	q.From, q.To = ceilMicro(q.From), ceilMicro(q.To)
	stmt, args := streamSQL(db.dialect, q)
	g := db.gorm.WithContext(ctx)
	if db.dialect == Postgres {
		var plan []string
		err := g.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`SET LOCAL max_parallel_workers_per_gather = 0; SET LOCAL enable_sort = off`).Error; err != nil {
				return err
			}
			return tx.Raw(`EXPLAIN (COSTS OFF) `+stmt, args...).Scan(&plan).Error
		})
		return plan, err
	}
	var plan []struct {
		ID      int
		Parent  int
		Notused int
		Detail  string
	}
	err := g.Raw(`EXPLAIN QUERY PLAN `+stmt, args...).Scan(&plan).Error
	out := make([]string, len(plan))
	for i, p := range plan {
		out[i] = p.Detail
	}
	return out, err
}

// ReportTestReversal posts a reversal of amount for the user at the given time, as the
// journal row and the two legs a reversal is made of (the user's available leg up,
// @redemptions down), so the report's reversed column can be tested on its own. It
// writes the ledger only: the wallet row is left as it was.
func (db *DB) ReportTestReversal(ctx context.Context, property, user string, amount decimal.Decimal, ref string, at time.Time) error {
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var id int64
		at = at.UTC().Truncate(time.Microsecond)
		if err := tx.Raw(`INSERT INTO journal (property, user_id, kind, rule, ref, created_at) VALUES (?, ?, ?, 'reversal', ?, ?) RETURNING id`,
			property, user, string(rewards.EntryReversal), ref, at).Scan(&id).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at) VALUES
			(?, ?, ?, '', ?, ?, ?, ?), (?, ?, ?, ?, '', ?, ?, ?)`,
			id, property, user, string(rewards.Available), string(rewards.EntryReversal), amount.String(), at,
			id, property, user, rewards.AccountRedemptions, string(rewards.EntryReversal), amount.Neg().String(), at).Error
	})
}
