package rewards

import (
	"errors"
	"time"

	"github.com/shopspring/decimal"
)

// Sentinels of settlement, redemptions, adjustments and the balance feed. Wrap with %w;
// test with errors.Is.
var (
	// ErrSettlementRunning: another settlement run of the property holds its lease, so
	// this one did nothing. Not a failure: the other run does the work.
	ErrSettlementRunning = errors.New("another settlement run is in progress")
	// ErrBadCursor: a feed cursor that Tally did not issue (malformed or tampered with).
	ErrBadCursor = errors.New("malformed cursor")
	// ErrInvalidRequest: a redemption or adjustment the store refuses before looking at
	// any balance (non-positive amount, missing key or reason, unknown bucket). The HTTP
	// layer validates first; this is the store's own guard.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrAlreadyReversed: the redemption was reversed before, under another idempotency
	// key; a redemption is reversed at most once.
	ErrAlreadyReversed = errors.New("redemption already reversed")
)

// Settlement run statuses.
const (
	RunRunning   = "running"   // in progress, or its process died and no run has looked since
	RunCompleted = "completed" // every wallet matured at its start was settled
	RunFailed    = "failed"    // stopped by an error or cancellation; complete batches stay committed
	RunAbandoned = "abandoned" // left running by a dead process; found by a later run
)

// SettlementRun is one recorded settlement run of one property.
type SettlementRun struct {
	ID         int64
	Property   string
	Status     string // RunRunning, RunCompleted, RunFailed or RunAbandoned
	StartedAt  time.Time
	FinishedAt time.Time       // zero while running
	Users      int64           // wallets whose matured lots this run settled
	Entries    int64           // lots (pending credits) settled
	Amount     decimal.Decimal // moved from pending to available
	Error      string
}

// RedeemRequest asks to pay Amount out of a user's available balance. RequestHash
// identifies the request body: the same IdempotencyKey with another hash (or another
// user) is ErrIdempotencyMismatch.
type RedeemRequest struct {
	Property       string
	User           string
	Amount         decimal.Decimal // positive; the caller checks it fits the wallet scale
	Reference      string
	IdempotencyKey string
	RequestHash    string
	// ReplayOnly answers only with the redemption this same request made under the key
	// before, and writes nothing: see the store's Redeem.
	ReplayOnly bool
}

// Redemption is a committed redemption and the balance right after it.
type Redemption struct {
	ID        int64
	Property  string
	User      string
	Amount    decimal.Decimal
	Reference string
	CreatedAt time.Time
	Balance   Balance // as it was right after this redemption, also when replayed
	// Reversal is set once the redemption has been reversed (as it is now, when read).
	Reversal *ReversalRef
}

// ReversalRef says which reversal undid a redemption, and when.
type ReversalRef struct {
	ID        int64
	CreatedAt time.Time
}

// RedemptionFilter selects redemptions for listing, newest first.
type RedemptionFilter struct {
	Property string
	User     string
	Before   int64 // only ids below this; 0 from the newest
	Limit    int
}

// ReverseRequest asks to return a redemption's amount to the user's available balance.
// The same IdempotencyKey with another RequestHash is ErrIdempotencyMismatch.
type ReverseRequest struct {
	RedemptionID   int64
	Reason         string // required
	Actor          string // who asked, for the record
	IdempotencyKey string
	RequestHash    string
	ReplayOnly     bool // as RedeemRequest's
}

// Reversal is a committed reversal, the redemption it undid and the balance right after.
type Reversal struct {
	ID         int64
	Redemption Redemption
	Amount     decimal.Decimal
	Reason     string
	Actor      string
	CreatedAt  time.Time
	Balance    Balance // as it was right after this reversal, also when replayed
}

// Audit actions: what an admin did that changed money or the inbox.
const (
	AuditAdjustment = "adjustment"
	AuditReversal   = "reversal"
	AuditReplay     = "replay"
	AuditTrueUp     = "trueup"         // a true-up released buffers (issue 14)
	AuditBooked     = "booked_revenue" // booked revenue imported, or a trued-up day's corrected
	AuditWebhook    = "webhook_retry"  // a webhook delivery sent again by hand
	AuditSettlement = "settlement"     // a settlement run started by hand (console or `tally settle`)
)

// AuditEntry is one admin action, recorded in the transaction that carried it out.
type AuditEntry struct {
	ID        int64
	Actor     string // the admin credential's name ("cli" for the command line)
	Action    string // one of the Audit… actions above
	Property  string
	Target    string // what it acted on: "user:<id>", "redemption:<id>", "event:<id>", "settlement:<id>", …
	Reason    string // as the actor gave it ("" for a replay or a settlement)
	Detail    string // what came of it, e.g. the amount or the replay's outcome
	CreatedAt time.Time
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Before int64 // only ids below this; 0 from the newest
	Limit  int
}

// AdjustRequest is a manual credit (Amount > 0) or debit (Amount < 0) of one bucket.
type AdjustRequest struct {
	Property       string
	User           string
	Amount         decimal.Decimal // signed, non-zero
	Bucket         Bucket          // "" means Available
	Reason         string          // required
	IdempotencyKey string          // required
	RequestHash    string
	Actor          string // who asked, for the record
	ReplayOnly     bool   // as RedeemRequest's
}

// Adjustment is a committed adjustment and the balance right after it.
type Adjustment struct {
	ID        int64
	Property  string
	User      string
	Amount    decimal.Decimal
	Bucket    Bucket
	Reason    string
	Actor     string
	CreatedAt time.Time
	Balance   Balance // as it was right after this adjustment, also when replayed
}
