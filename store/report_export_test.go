package store

import (
	"context"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Test-only access for the payout report tests (report_test.go).

// PayoutRowsInGo runs the Go-summing path of PayoutRows whatever the dialect, so the
// tests can hold it against Postgres's SQL path on the same data.
func (db *DB) PayoutRowsInGo(ctx context.Context, q rewards.ReportQuery, fn func(rewards.PayoutRow) error) error {
	_, err := db.payoutReport(ctx, q, fn, false, false)
	return err
}

// PayoutSummaryInGo is PayoutSummary computed in Go whatever the dialect.
func (db *DB) PayoutSummaryInGo(ctx context.Context, q rewards.ReportQuery) ([]rewards.PropertySummary, error) {
	return db.payoutReport(ctx, q, nil, true, false)
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

// ReportTestPlan returns the query plan of the Go path's merged stream (SQLite only), to
// check it merges index-ordered branches rather than sorting everything.
func (db *DB) ReportTestPlan(ctx context.Context, q rewards.ReportQuery) ([]string, error) {
	var plan []struct {
		ID      int
		Parent  int
		Notused int
		Detail  string
	}
	args := []any{q.From, q.To}
	legFilter, args := propertyFilter(q, args)
	args = append(args, q.From, q.To)
	sessionFilter, args := propertyFilter(q, args)
	err := db.gorm.WithContext(ctx).Raw(`EXPLAIN QUERY PLAN `+goStreamSQL(legFilter, sessionFilter, db.gorm), args...).Scan(&plan).Error
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
