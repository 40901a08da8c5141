package rewards

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shopspring/decimal"
)

func TestPayoutAmountsReconcile(t *testing.T) {
	d := decimal.RequireFromString
	row := PayoutAmounts{OpeningAvailable: d("56"), Settled: d("50.5"), Redeemed: d("20"), Adjustments: d("-2.25"),
		ClosingAvailable: d("84.25"), ClosingPending: d("0.672"), CreditedRevenue: d("0.672")}
	if !row.Reconciles() {
		t.Fatalf("56 + 50.5 − 20 − 2.25 = 84.25 does not reconcile")
	}
	for _, off := range []PayoutAmounts{
		{ClosingAvailable: d("0.000000000000000001")},
		{Redeemed: d("1")},
		{Settled: d("-1")},
		{Adjustments: d("1")},
		{OpeningAvailable: d("1")},
		{Reversed: d("1")},
	} {
		r := row
		r.Add(off)
		if r.Reconciles() {
			t.Errorf("%+v added: still reconciles", off)
		}
	}
	// A reversal returns a redeemed amount to available.
	r := row
	r.Add(PayoutAmounts{Reversed: d("20"), ClosingAvailable: d("20")})
	if !r.Reconciles() {
		t.Error("a reversal of 20 and 20 more closing available do not reconcile")
	}
	if !(PayoutAmounts{}).Reconciles() {
		t.Error("the zero row does not reconcile")
	}
	// Pending columns do not enter the identity.
	r = row
	r.Add(PayoutAmounts{ClosingPending: d("3"), CreditedTargets: d("50")})
	if !r.Reconciles() {
		t.Error("a pending change broke the available identity")
	}
}

func TestPayoutTotals(t *testing.T) {
	d := decimal.RequireFromString
	var tot PayoutTotals
	tot.Add(PayoutRow{PayoutAmounts: PayoutAmounts{CreditedRevenue: d("0.672"), ClosingPending: d("0.672")}, Sessions: 1,
		EstimatedRevenueUSD: d("0.000012")})
	tot.Add(PayoutRow{PayoutAmounts: PayoutAmounts{OpeningAvailable: d("56"), ClosingAvailable: d("56")}})
	tot.Add(PayoutRow{PayoutAmounts: PayoutAmounts{Adjustments: d("-2"), ClosingAvailable: d("-2")}, Sessions: 2,
		EstimatedRevenueUSD: d("0.5")})
	want := PayoutAmounts{OpeningAvailable: d("56"), CreditedRevenue: d("0.672"), Adjustments: d("-2"),
		ClosingAvailable: d("54"), ClosingPending: d("0.672")}
	if tot.Rows != 3 || tot.Sessions != 3 || !tot.EstimatedRevenueUSD.Equal(d("0.500012")) || !tot.PayoutAmounts.Equal(want) {
		t.Fatalf("totals %+v", tot)
	}
	if !tot.Reconciles() {
		t.Fatal("totals of reconciling rows do not reconcile")
	}
}

// Each wallet leg lands in the columns that sum it, and only those: one table of legs
// (bucket, kind, before or in the period) against the columns worked out by hand.
func TestPayoutAmountsAddLeg(t *testing.T) {
	d := decimal.RequireFromString
	cases := []struct {
		bucket   Bucket
		kind     EntryKind
		inPeriod bool
		want     PayoutAmounts
	}{
		{Available, EntrySettlement, false, PayoutAmounts{OpeningAvailable: d("5"), ClosingAvailable: d("5")}},
		{Available, EntryReversal, false, PayoutAmounts{OpeningAvailable: d("5"), ClosingAvailable: d("5")}},
		{Pending, EntryRevenue, false, PayoutAmounts{ClosingPending: d("5")}},
		{Pending, EntryRevenue, true, PayoutAmounts{CreditedRevenue: d("5"), ClosingPending: d("5")}},
		{Pending, EntryTarget, true, PayoutAmounts{CreditedTargets: d("5"), ClosingPending: d("5")}},
		{Pending, EntryAchievement, true, PayoutAmounts{CreditedAchievements: d("5"), ClosingPending: d("5")}},
		{Pending, EntryAdjustment, true, PayoutAmounts{ClosingPending: d("5")}},
		{Pending, EntrySettlement, true, PayoutAmounts{ClosingPending: d("5")}},
		{Available, EntryAdjustment, true, PayoutAmounts{Adjustments: d("5"), ClosingAvailable: d("5")}},
		{Available, EntrySettlement, true, PayoutAmounts{Settled: d("5"), ClosingAvailable: d("5")}},
		{Available, EntryRedemption, true, PayoutAmounts{Redeemed: d("-5"), ClosingAvailable: d("5")}},
		{Available, EntryReversal, true, PayoutAmounts{Reversed: d("5"), ClosingAvailable: d("5")}},
	}
	for _, c := range cases {
		var got PayoutAmounts
		got.AddLeg(c.bucket, c.kind, d("5"), c.inPeriod)
		if !got.Equal(c.want) {
			t.Errorf("%s %s leg of 5 (in period %v): %+v, want %+v", c.bucket, c.kind, c.inPeriod, got, c.want)
		}
	}
	// A redemption of 20 and its reversal in the same period: redeemed 20, reversed 20,
	// available back where it was.
	var a PayoutAmounts
	a.AddLeg(Available, EntrySettlement, d("50"), false)
	a.AddLeg(Available, EntryRedemption, d("-20"), true)
	a.AddLeg(Available, EntryReversal, d("20"), true)
	want := PayoutAmounts{OpeningAvailable: d("50"), Redeemed: d("20"), Reversed: d("20"), ClosingAvailable: d("50")}
	if !a.Equal(want) || !a.Reconciles() {
		t.Fatalf("redeemed and reversed: %+v, want %+v", a, want)
	}
}

// The columns keep the contract's order; new ones only ever come at the end.
func TestAmountColumnsOrder(t *testing.T) {
	var names []string
	for _, c := range AmountColumns() {
		names = append(names, c.Name)
	}
	want := []string{"opening_available", "credited_revenue", "credited_targets", "credited_achievements", "adjustments",
		"settled", "redeemed", "closing_available", "closing_pending", "reversed", "credited_release", "credited_prizes"}
	if !slices.Equal(names, want) {
		t.Fatalf("columns %v, want %v", names, want)
	}
}

// TotalsBuilder's totals are PayoutTotals.Add's, exactly, whatever the amounts: small
// and at full precision, of every scale, huge ones, and sums that overflow an int64.
func TestTotalsBuilderMatchesAdd(t *testing.T) {
	d := decimal.RequireFromString
	amounts := []decimal.Decimal{d("0"), d("1"), d("-1"), d("0.672"), d("56"), d("0.000000000000000001"), d("-2.25"),
		d("999999999999999999"), d("-999999999999999999"), d("0.999999999999999999"), d("123456789012345678.9"),
		d("99999999999999999999.999999999999999999"), d("1E+3"), d("5.6"), decimal.New(1200, -2), decimal.New(7, -20)}
	rng := rand.New(rand.NewPCG(1, 2))
	var want PayoutTotals
	var b TotalsBuilder
	for i := 0; i < 20000; i++ {
		var r PayoutRow
		for _, c := range AmountColumns() {
			*c.Field(&r.PayoutAmounts) = amounts[rng.IntN(len(amounts))]
		}
		r.EstimatedRevenueUSD = amounts[rng.IntN(len(amounts))]
		r.Sessions = int64(rng.IntN(3))
		want.Add(r)
		b.Add(&r)
	}
	// Many large ones of one scale: each slot overflows many times.
	for i := 0; i < 100; i++ {
		r := PayoutRow{PayoutAmounts: PayoutAmounts{Settled: d("999999999999999999"), Redeemed: d("-0.999999999999999999")}}
		want.Add(r)
		b.Add(&r)
	}
	got := b.Totals()
	if got.Rows != want.Rows || got.Sessions != want.Sessions || !got.EstimatedRevenueUSD.Equal(want.EstimatedRevenueUSD) ||
		!got.PayoutAmounts.Equal(want.PayoutAmounts) || b.Rows() != want.Rows {
		t.Fatalf("builder %+v\nAdd     %+v", got, want)
	}
}

// CurrencyTotalsBuilder totals each currency's rows on its own, whatever order they come
// in, and its overall totals are TotalsBuilder's.
func TestCurrencyTotals(t *testing.T) {
	d := decimal.RequireFromString
	var b CurrencyTotalsBuilder
	want := map[string]*PayoutTotals{"COIN": {}, "PTS": {}}
	var all PayoutTotals
	for i, c := range []string{"PTS", "COIN", "COIN", "PTS", "COIN"} {
		r := PayoutRow{PayoutAmounts: PayoutAmounts{Redeemed: d(fmt.Sprint(i + 1)), Settled: d("0.5")}, Sessions: 1}
		b.Add(c, &r)
		want[c].Add(r)
		all.Add(r)
	}
	got := b.Totals()
	if !got.Mixed() || len(got.ByCurrency) != 2 || got.ByCurrency[0].Currency != "COIN" || got.ByCurrency[1].Currency != "PTS" {
		t.Fatalf("by currency: %+v", got.ByCurrency)
	}
	for _, c := range got.ByCurrency {
		w := want[c.Currency]
		if c.Rows != w.Rows || c.Sessions != w.Sessions || !c.PayoutAmounts.Equal(w.PayoutAmounts) {
			t.Errorf("%s: %+v, want %+v", c.Currency, c.PayoutTotals, *w)
		}
	}
	if got.Rows != 5 || !got.PayoutAmounts.Equal(all.PayoutAmounts) || b.Rows() != 5 {
		t.Errorf("overall: %+v, want %+v", got.PayoutTotals, all)
	}
	var one CurrencyTotalsBuilder
	one.Add("COIN", &PayoutRow{})
	if one.Totals().Mixed() {
		t.Error("one currency is mixed")
	}
}
