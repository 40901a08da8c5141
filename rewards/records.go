package rewards

import (
	"errors"
	"time"

	"github.com/shopspring/decimal"
)

// Domain sentinels. The store translates driver errors into them; the HTTP layer maps
// them to status codes in one place. Wrap with %w; test with errors.Is.
var (
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnavailable: the database could not be reached or could not commit; nothing
	// was saved and the caller may retry.
	ErrUnavailable = errors.New("storage unavailable")
	// ErrInsufficientFunds: a debit would take available below zero.
	ErrInsufficientFunds = errors.New("insufficient available funds")
	// ErrIdempotencyMismatch: an idempotency key was reused with a different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
)

// Inbox statuses.
const (
	StatusApplied     = "applied"     // rules evaluated and their entries posted (maybe none)
	StatusQuarantined = "quarantined" // kept, not applied; `tally replay` retries it
)

// Inbound is one authenticated, decoded event to record and apply.
type Inbound struct {
	Property string
	Event    Event
	Raw      []byte // the body exactly as received
	// Rules are the property's current rules; nil keeps the event quarantined.
	Rules *Rules
	// Quarantine, when set, keeps the event without applying it, with this reason.
	Quarantine string
}

// Receipt is what became of one Inbound.
type Receipt struct {
	EventID   int64
	Duplicate bool   // an earlier delivery was recorded; nothing changed
	Status    string // StatusApplied or StatusQuarantined (of the recorded event)
	Reason    string // why it was quarantined or earned nothing
}

// Balance is one user's wallet. A user Tally has never credited has a zero balance.
type Balance struct {
	Property       string
	User           string
	Available      decimal.Decimal
	Pending        decimal.Decimal
	Redeemed       decimal.Decimal
	LifetimeEarned decimal.Decimal
	UpdatedAt      time.Time // zero when the wallet does not exist
}

// Txn is one leg of a user's wallet, as the transactions API shows it.
type Txn struct {
	ID          int64
	Kind        string
	Rule        string
	RuleVersion string
	Amount      decimal.Decimal
	Bucket      string
	CreatedAt   time.Time
	Ref         string
}

// Kept is an event stored in the inbox, as replay sees it.
type Kept struct {
	ID         int64
	Property   string
	Event      Event  // as decoded when received
	Raw        []byte // the body exactly as received
	ReceivedAt time.Time
	Status     string
	Reason     string
}
