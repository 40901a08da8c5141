package rewards

import (
	"slices"
	"strings"
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
// (DESIGN.md §3, Finance and ops); AmountColumns says which legs each one sums.
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
	Reversed             decimal.Decimal
	CreditedRelease      decimal.Decimal
	CreditedPrizes       decimal.Decimal
}

// LegTime says which of a user's wallet legs, by creation time, a column sums.
type LegTime int8

// A column sums the legs before the period, in it, or before its end (a closing balance).
const (
	BeforePeriod LegTime = iota + 1
	InPeriod
	BeforeEnd
)

// AmountColumn is one wallet column of the payout report, defined once: its name (the
// CSV header, the JSON key), the legs it sums, and where it lives in PayoutAmounts. The
// store sums, and the app prints, every column from this one list.
type AmountColumn struct {
	Name   string
	Bucket Bucket
	Kind   EntryKind // "" sums every kind
	When   LegTime
	// Negate shows the sum with the opposite sign: a redemption takes from available,
	// and the report shows what was redeemed as a positive amount.
	Negate bool
	Field  func(*PayoutAmounts) *decimal.Decimal
}

// Sums reports whether the column sums a wallet leg of this bucket and kind that is
// inPeriod (created at or after the period's start) or not.
func (c *AmountColumn) Sums(bucket Bucket, kind EntryKind, inPeriod bool) bool {
	if c.Bucket != bucket || c.Kind != "" && c.Kind != kind {
		return false
	}
	switch c.When {
	case BeforePeriod:
		return !inPeriod
	case InPeriod:
		return inPeriod
	}
	return true
}

// amountColumns are the wallet columns in the report's order. New columns are appended
// (the contract never inserts one): reversed came after the session columns, so in the
// full report it follows estimated_revenue_usd.
var amountColumns = [...]AmountColumn{
	{"opening_available", Available, "", BeforePeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.OpeningAvailable }},
	{"credited_revenue", Pending, EntryRevenue, InPeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.CreditedRevenue }},
	{"credited_targets", Pending, EntryTarget, InPeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.CreditedTargets }},
	{"credited_achievements", Pending, EntryAchievement, InPeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.CreditedAchievements }},
	// An adjustment of pending shows only in closing_pending.
	{"adjustments", Available, EntryAdjustment, InPeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.Adjustments }},
	{"settled", Available, EntrySettlement, InPeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.Settled }},
	{"redeemed", Available, EntryRedemption, InPeriod, true, func(a *PayoutAmounts) *decimal.Decimal { return &a.Redeemed }},
	{"closing_available", Available, "", BeforeEnd, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.ClosingAvailable }},
	{"closing_pending", Pending, "", BeforeEnd, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.ClosingPending }},
	// A reversal returns a redeemed amount to available: positive, and redeemed is left
	// as the redemptions alone, so both stay visible.
	{"reversed", Available, EntryReversal, InPeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.Reversed }},
	// Buffer released by true-ups (issue 14), to pending like the other credits.
	{"credited_release", Pending, EntryBufferRelease, InPeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.CreditedRelease }},
	// Tournament prizes (issue 12), to pending like the other credits.
	{"credited_prizes", Pending, EntryPrize, InPeriod, false, func(a *PayoutAmounts) *decimal.Decimal { return &a.CreditedPrizes }},
}

// AmountColumns returns the wallet columns in the report's order (a fresh copy).
func AmountColumns() []AmountColumn { return slices.Clone(amountColumns[:]) }

// AddLeg adds one wallet leg, created before the period's end, to every column that sums it.
func (a *PayoutAmounts) AddLeg(bucket Bucket, kind EntryKind, amount decimal.Decimal, inPeriod bool) {
	for i := range amountColumns {
		c := &amountColumns[i]
		if !c.Sums(bucket, kind, inPeriod) {
			continue
		}
		f := c.Field(a)
		if c.Negate {
			*f = f.Sub(amount)
		} else {
			*f = f.Add(amount)
		}
	}
}

// Add adds o to a column by column.
func (a *PayoutAmounts) Add(o PayoutAmounts) {
	for i := range amountColumns {
		addTo(amountColumns[i].Field(a), *amountColumns[i].Field(&o))
	}
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
	for i := range amountColumns {
		if !amountColumns[i].Field(&a).Equal(*amountColumns[i].Field(&o)) {
			return false
		}
	}
	return true
}

// Reconciles reports the row identity finance checks: closing available equals opening
// available plus settled, minus redeemed, plus reversed, plus adjustments. It fails only
// if the ledger holds an available leg of a kind the report has no column for.
func (a PayoutAmounts) Reconciles() bool {
	return a.ClosingAvailable.Equal(a.OpeningAvailable.Add(a.Settled).Sub(a.Redeemed).Add(a.Reversed).Add(a.Adjustments))
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
	// True-ups (issue 14), by the days they concern: the days whose start falls in the
	// period. BookedUSD is their booked revenue; Released and Shortfall what true-ups of
	// those days released to users and booked to @shortfall.
	BookedUSD decimal.Decimal
	Released  decimal.Decimal
	Shortfall decimal.Decimal
	Ledger    PayoutAmounts
}

// TotalsBuilder adds report rows up into PayoutTotals, as PayoutTotals.Add does, for
// reports of millions of rows: an amount of at most 18 digits and 18 decimals (nearly
// every one) is added to an int64 per column and scale, with no big-number arithmetic or
// allocation; anything else, and a slot about to overflow, goes to an exact decimal.
// Totals combines them exactly.
type TotalsBuilder struct {
	rows, sessions int64
	amounts        [len(amountColumns)]decimalSum
	usd            decimalSum
}

// Add counts one row into the totals.
func (b *TotalsBuilder) Add(r *PayoutRow) {
	b.rows++
	b.sessions += r.Sessions
	for i := range amountColumns {
		b.amounts[i].add(*amountColumns[i].Field(&r.PayoutAmounts))
	}
	b.usd.add(r.EstimatedRevenueUSD)
}

// Rows is how many rows were added.
func (b *TotalsBuilder) Rows() int64 { return b.rows }

// Totals returns the totals of the rows added so far.
func (b *TotalsBuilder) Totals() PayoutTotals {
	t := PayoutTotals{Rows: b.rows, Sessions: b.sessions, EstimatedRevenueUSD: b.usd.total()}
	for i := range amountColumns {
		*amountColumns[i].Field(&t.PayoutAmounts) = b.amounts[i].total()
	}
	return t
}

// ReportTotals are a report's totals: over all its rows, and per currency. A report of
// several properties may hold several currencies; their amounts do not add up to
// anything, so where Mixed the amounts of PayoutTotals must not be shown (its Rows,
// Sessions and EstimatedRevenueUSD, in USD, still hold) and ByCurrency carries them.
type ReportTotals struct {
	PayoutTotals
	ByCurrency []CurrencyTotals // in currency order; one entry per currency of the rows
}

// Reconciles reports whether the totals of every currency satisfy PayoutAmounts'
// identity (closing available = opening + settled − redeemed + reversed + adjustments).
func (t ReportTotals) Reconciles() bool {
	for _, c := range t.ByCurrency {
		if !c.Reconciles() {
			return false
		}
	}
	return true
}

// Mixed reports whether the rows are in more than one currency.
func (t ReportTotals) Mixed() bool { return len(t.ByCurrency) > 1 }

// CurrencyTotals are the totals of a report's rows in one currency.
type CurrencyTotals struct {
	Currency string
	PayoutTotals
}

// CurrencyTotalsBuilder is TotalsBuilder over all rows and per currency.
type CurrencyTotalsBuilder struct {
	all     TotalsBuilder
	by      map[string]*TotalsBuilder
	lastCur string         // the last row's currency, and
	last    *TotalsBuilder // its builder: rows come property by property
}

// Add counts one row, in currency, into the totals.
func (b *CurrencyTotalsBuilder) Add(currency string, r *PayoutRow) {
	b.all.Add(r)
	if b.last == nil || b.lastCur != currency {
		if b.by == nil {
			b.by = map[string]*TotalsBuilder{}
		}
		t := b.by[currency]
		if t == nil {
			t = new(TotalsBuilder)
			b.by[currency] = t
		}
		b.lastCur, b.last = currency, t
	}
	b.last.Add(r)
}

// Rows is how many rows were added.
func (b *CurrencyTotalsBuilder) Rows() int64 { return b.all.Rows() }

// Totals returns the totals of the rows added so far.
func (b *CurrencyTotalsBuilder) Totals() ReportTotals {
	t := ReportTotals{PayoutTotals: b.all.Totals()}
	for c, tb := range b.by {
		t.ByCurrency = append(t.ByCurrency, CurrencyTotals{Currency: c, PayoutTotals: tb.Totals()})
	}
	slices.SortFunc(t.ByCurrency, func(x, y CurrencyTotals) int { return strings.Compare(x.Currency, y.Currency) })
	return t
}

// decimalSum is an exact sum of decimals: small[e] holds the sum of the coefficients of
// the amounts with e decimals that fit an int64, rest everything else.
type decimalSum struct {
	small [19]int64
	used  uint32 // bit e: small[e] was added to
	rest  decimal.Decimal
}

func (s *decimalSum) add(d decimal.Decimal) {
	if d.IsZero() {
		return
	}
	e := -d.Exponent()
	if e < 0 || e > 18 || d.NumDigits() > 18 {
		s.rest = s.rest.Add(d)
		return
	}
	c := d.CoefficientInt64() // |c| < 10^18: no overflow on its own
	v := s.small[e]
	sum := v + c
	if (c > 0 && sum < v) || (c < 0 && sum > v) {
		s.rest = s.rest.Add(decimal.New(v, -e))
		sum = c
	}
	s.small[e] = sum
	s.used |= 1 << e
}

func (s *decimalSum) total() decimal.Decimal {
	t := s.rest
	for e := range s.small {
		if s.used&(1<<e) != 0 && s.small[e] != 0 {
			t = t.Add(decimal.New(s.small[e], -int32(e)))
		}
	}
	return t
}
