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
