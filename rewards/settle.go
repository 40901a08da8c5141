package rewards

import "github.com/shopspring/decimal"

// Settle computes one settlement of one user's wallet. matured is the sum of the user's
// matured pending credits not settled before; carry is the fraction of a wallet unit the
// previous settlement left in pending. moved is what goes from pending to available,
// rounded down to the wallet scale; newCarry is what stays behind, so
// moved + newCarry == matured + carry exactly and 0 <= newCarry < 10^-scale: rounding
// delays a fraction of a unit, it never creates or loses one.
//
// A negative total (a debit adjustment on pending larger than what matured) moves nothing
// and is carried whole, so available is never credited from a debt.
func Settle(matured, carry decimal.Decimal, scale int32) (moved, newCarry decimal.Decimal) {
	total := matured.Add(carry)
	if !total.IsPositive() {
		return decimal.Zero, total
	}
	moved = FloorToScale(total, scale)
	return moved, total.Sub(moved)
}

// SettlementEntry moves moved from the user's pending to their available. It touches no
// system account: settlement changes where the user's money is, not how much there is.
func SettlementEntry(moved decimal.Decimal) Entry {
	return Entry{
		Kind: EntrySettlement,
		Rule: "settlement",
		Legs: []Leg{
			{Bucket: Pending, Amount: moved.Neg()},
			{Bucket: Available, Amount: moved},
		},
	}
}

// RedemptionEntry pays amount out of the user's available to @redemptions. The caller
// checks available first, under the wallet lock, and refuses a redemption it cannot cover.
func RedemptionEntry(amount decimal.Decimal) Entry {
	return Entry{
		Kind: EntryRedemption,
		Rule: "redemption",
		Legs: []Leg{
			{Bucket: Available, Amount: amount.Neg()},
			{System: AccountRedemptions, Amount: amount},
		},
	}
}

// AdjustmentEntry credits amount to the user's bucket (a negative amount debits it),
// balanced by @adjustments.
func AdjustmentEntry(amount decimal.Decimal, bucket Bucket) Entry {
	return Entry{
		Kind: EntryAdjustment,
		Rule: "adjustment",
		Legs: []Leg{
			{Bucket: bucket, Amount: amount},
			{System: AccountAdjustments, Amount: amount.Neg()},
		},
	}
}
