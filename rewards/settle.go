package rewards

import "github.com/shopspring/decimal"

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

// ReversalEntry returns amount, paid out by a redemption, from @redemptions to the
// user's available: the redemption's entry with its legs negated.
func ReversalEntry(amount decimal.Decimal) Entry {
	return Entry{
		Kind: EntryReversal,
		Rule: "reversal",
		Legs: []Leg{
			{Bucket: Available, Amount: amount},
			{System: AccountRedemptions, Amount: amount.Neg()},
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
