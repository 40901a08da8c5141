package rewards

import (
	"time"

	"github.com/shopspring/decimal"
)

// Bucket is the part of a user's wallet a leg touches.
type Bucket string

// Pending holds credits until they mature and settle; available can be redeemed.
const (
	Pending   Bucket = "pending"
	Available Bucket = "available"
)

// System accounts. They are never running-balance rows (DESIGN.md §2): their balances are
// the sums of their legs.
const (
	AccountRevenue      = "@revenue"      // source of revenue-share credits
	AccountBuffer       = "@buffer"       // withheld part of the revenue share
	AccountTargets      = "@targets"      // source of score-target rewards
	AccountAchievements = "@achievements" // source of achievement rewards
	AccountRedemptions  = "@redemptions"  // destination of redemptions
	AccountAdjustments  = "@adjustments"  // counterpart of manual adjustments
)

// EntryKind classifies a journal entry; reports group by it.
type EntryKind string

// Entry kinds.
const (
	EntryRevenue     EntryKind = "revenue"
	EntryTarget      EntryKind = "target"
	EntryAchievement EntryKind = "achievement"
	EntrySettlement  EntryKind = "settlement"
	EntryRedemption  EntryKind = "redemption"
	EntryAdjustment  EntryKind = "adjustment"
	// EntryReversal returns a redemption's amount from @redemptions to the user's
	// available balance; its ref names the redemption.
	EntryReversal EntryKind = "reversal"
	// EntryPrize credits a tournament prize to pending from @prizes; its ref names the
	// tournament, window and rank (tournament.go).
	EntryPrize EntryKind = "prize"
)

// Leg is one side of an entry. A user leg has System == "" and a Bucket; a system leg
// names its account and has no bucket. Positive amounts increase the account.
type Leg struct {
	System string
	Bucket Bucket
	Amount decimal.Decimal
}

// Entry is one balanced journal entry for one user: its legs sum to exactly zero.
type Entry struct {
	Kind        EntryKind
	Rule        string // which rule produced it, e.g. "revenue", "target:snake-500"
	RuleVersion string
	// Claim, when set, makes the entry payable at most once per (property, user, claim):
	// the store records the claim in the same transaction and drops the entry if the
	// claim exists already.
	Claim string
	// ClaimedAs are other names of the same claim: when one of them is taken the entry
	// was paid already, under a rule's earlier name (an achievement rule that came to
	// name its event), or for the same play on another day (a `per: day` target). Only
	// Claim (and AlsoClaims) is recorded.
	ClaimedAs []string
	// AlsoClaims are claims the entry takes besides Claim when they are free: a
	// target's claims under its other `per`s, so that a target whose `per` changes
	// never pays a period it paid before (see targetClaims). Credit keeps only the free
	// ones; the store records them with Claim.
	AlsoClaims []string
	// SeenClaims are claims the entry takes, where free, when it is dropped because its
	// Claim is taken: the store records them against the payment that holds Claim. A
	// `per: day` target's claim of a Gamezop report, so that a report whose day was paid
	// already is not paid on another day when it comes again, with a new timestamp,
	// after midnight (see targetClaims).
	SeenClaims []string
	MaturesAt  time.Time // when the pending credit may settle
	Legs       []Leg
}

// Balanced reports whether the legs sum to zero.
func (e Entry) Balanced() bool {
	sum := decimal.Zero
	for _, l := range e.Legs {
		sum = sum.Add(l.Amount)
	}
	return sum.IsZero()
}

// UserDelta is how much the entry changes the user's bucket b.
func (e Entry) UserDelta(b Bucket) decimal.Decimal {
	sum := decimal.Zero
	for _, l := range e.Legs {
		if l.System == "" && l.Bucket == b {
			sum = sum.Add(l.Amount)
		}
	}
	return sum
}
