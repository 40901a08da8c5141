package rewards

import (
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
	} {
		r := row
		r.Add(off)
		if r.Reconciles() {
			t.Errorf("%+v added: still reconciles", off)
		}
	}
	if !(PayoutAmounts{}).Reconciles() {
		t.Error("the zero row does not reconcile")
	}
	// Pending columns do not enter the identity.
	r := row
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
