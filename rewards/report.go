package rewards

import (
	"time"

	"github.com/shopspring/decimal"
)

// ReportQuery selects a payout report: the half-open period [From, To) of ledger and
// session times (UTC) and, when Property is set, that property only.
type ReportQuery struct {
	From     time.Time
	To       time.Time
	Property string // "" means every property
}

// PayoutAmounts are a payout report's wallet columns, each a sum of the user's wallet legs
// (DESIGN.md §3, Finance and ops):
//
//   - OpeningAvailable: available legs before From.
//   - CreditedRevenue, CreditedTargets, CreditedAchievements: pending legs of that kind
//     in the period.
//   - Adjustments: adjustment legs on available in the period, signed. (An adjustment of
//     pending shows only in ClosingPending.)
//   - Settled: settlement legs on available in the period.
//   - Redeemed: redemption legs in the period, as a positive amount.
//   - ClosingAvailable, ClosingPending: legs of that bucket before To.
type PayoutAmounts struct {
	OpeningAvailable     decimal.Decimal
	CreditedRevenue      decimal.Decimal
	CreditedTargets      decimal.Decimal
	CreditedAchievements decimal.Decimal
	Adjustments          decimal.Decimal
	Settled              decimal.Decimal
	Redeemed             decimal.Decimal
	ClosingAvailable     decimal.Decimal
	ClosingPending       decimal.Decimal
}

// Add adds o to a column by column.
func (a *PayoutAmounts) Add(o PayoutAmounts) {
	addTo(&a.OpeningAvailable, o.OpeningAvailable)
	addTo(&a.CreditedRevenue, o.CreditedRevenue)
	addTo(&a.CreditedTargets, o.CreditedTargets)
	addTo(&a.CreditedAchievements, o.CreditedAchievements)
	addTo(&a.Adjustments, o.Adjustments)
	addTo(&a.Settled, o.Settled)
	addTo(&a.Redeemed, o.Redeemed)
	addTo(&a.ClosingAvailable, o.ClosingAvailable)
	addTo(&a.ClosingPending, o.ClosingPending)
}

// addTo adds d to *sum. Most report cells are zero; skipping them saves an allocation
// per cell when totals accumulate over millions of rows.
func addTo(sum *decimal.Decimal, d decimal.Decimal) {
	if !d.IsZero() {
		*sum = sum.Add(d)
	}
}

// Equal reports whether every column is equal.
func (a PayoutAmounts) Equal(o PayoutAmounts) bool {
	return a.OpeningAvailable.Equal(o.OpeningAvailable) && a.CreditedRevenue.Equal(o.CreditedRevenue) &&
		a.CreditedTargets.Equal(o.CreditedTargets) && a.CreditedAchievements.Equal(o.CreditedAchievements) &&
		a.Adjustments.Equal(o.Adjustments) && a.Settled.Equal(o.Settled) && a.Redeemed.Equal(o.Redeemed) &&
		a.ClosingAvailable.Equal(o.ClosingAvailable) && a.ClosingPending.Equal(o.ClosingPending)
}

// Reconciles reports the row identity finance checks: closing available equals opening
// available plus settled, minus redeemed, plus adjustments. It fails only if the ledger
// holds an available leg of a kind the report has no column for.
func (a PayoutAmounts) Reconciles() bool {
	return a.ClosingAvailable.Equal(a.OpeningAvailable.Add(a.Settled).Sub(a.Redeemed).Add(a.Adjustments))
}

// PayoutRow is one (property, user) of a payout report: a user with wallet legs or
// sessions in the period, or a non-zero opening balance (available or pending).
type PayoutRow struct {
	Property string
	User     string
	PayoutAmounts
	Sessions            int64           // SPP sessions received in the period
	EstimatedRevenueUSD decimal.Decimal // their estimated revenue
}

// PayoutTotals are a report's columns summed over its rows.
type PayoutTotals struct {
	Rows int64
	PayoutAmounts
	Sessions            int64
	EstimatedRevenueUSD decimal.Decimal
}

// Add counts one row into the totals.
func (t *PayoutTotals) Add(r PayoutRow) {
	t.Rows++
	t.PayoutAmounts.Add(r.PayoutAmounts)
	t.Sessions += r.Sessions
	addTo(&t.EstimatedRevenueUSD, r.EstimatedRevenueUSD)
}

// PropertySummary is one property's figures for a report period: what its SPP sessions
// estimated and what became of that revenue, and the ledger's own totals of every report
// column (summed over all wallet legs, not over report rows) to reconcile against.
type PropertySummary struct {
	Property            string
	Sessions            int64
	EstimatedRevenueUSD decimal.Decimal
	Gross               decimal.Decimal // wallet units the sessions' revenue share came to, which is
	CreditedToUsers     decimal.Decimal // credited to users
	Withheld            decimal.Decimal // + withheld in @buffer
	CappedExcess        decimal.Decimal // + kept from users by the caps
	Ledger              PayoutAmounts
}
