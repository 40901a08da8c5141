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
	// ErrSchemaNewer: the database holds migrations this binary does not know (a newer
	// tally migrated it), so this one would not follow its rules.
	ErrSchemaNewer = errors.New("the database was migrated by a newer tally")
	// ErrOutcomeUnknown: the transaction's work was done and its commit sent, but the
	// database's answer to the commit never came (the connection broke): it may or may
	// not have committed. Always wrapped with ErrUnavailable; a retry with the same
	// idempotency key (or the same event) answers what was saved, never applies twice.
	ErrOutcomeUnknown = errors.New("commit outcome unknown")
	// ErrInsufficientFunds: a debit would take available below zero.
	ErrInsufficientFunds = errors.New("insufficient available funds")
	// ErrRejected: the database refused the data of a write (a constraint or a value it
	// cannot hold). Retrying the same write fails the same way; nothing was saved.
	ErrRejected = errors.New("write rejected by the database")
	// ErrIdempotencyMismatch: an idempotency key was reused with a different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
)

// Inbox statuses. A receiver records an event (recorded); the applier turns it into
// ledger effects (applied, maybe with none) or keeps it (quarantined) in the same
// transaction as those effects.
const (
	StatusRecorded    = "recorded"    // durably in the inbox, not applied yet
	StatusApplied     = "applied"     // rules evaluated and their entries posted (maybe none)
	StatusQuarantined = "quarantined" // kept, not applied; replay retries it
)

// Inbound is one authenticated, decoded event to record.
type Inbound struct {
	Property string
	Event    Event
	Raw      []byte // the body exactly as received
	// Unmapped, when set, says why the event as decoded cannot be mapped to a reward (a
	// payload shape the parser does not know); the applier keeps it quarantined with it.
	Unmapped string
}

// Receipt is what recording one Inbound did.
type Receipt struct {
	EventID   int64
	Duplicate bool   // an earlier delivery was recorded; nothing changed
	Status    string // of the recorded event: StatusRecorded for a new one
}

// Kept is an event stored in the inbox.
type Kept struct {
	ID         int64
	Property   string
	Source     Source
	DedupeKey  string
	User       string
	Event      Event  // as decoded when received
	Raw        []byte // the body exactly as received (a list reads only what it asks for: EventFilter.RawUpTo)
	RawSize    int    // the whole body's size in bytes
	ReceivedAt time.Time
	Status     string
	Reason     string     // why it was quarantined or earned nothing; for a recorded event, why it cannot be mapped
	AppliedAt  *time.Time // when it was applied or quarantined
	// Undecodable says why the event as stored could not be decoded ("" when it could;
	// Event is then empty): the applier keeps such an event quarantined with this
	// reason, where failing its whole batch would stop every event behind it.
	Undecodable string
}

// Decision is what the applier does with one claimed event: apply Event under Rules, or
// keep it quarantined with the reason. The app decides; the store carries it out.
type Decision struct {
	Event      Event
	Rules      *Rules
	Quarantine string
}

// Claim says which inbox events one apply takes.
type Claim struct {
	// Status is what the events are now: StatusRecorded for the applier,
	// StatusQuarantined for a replay.
	Status   string
	IDs      []int64 // only these events; none: the oldest first
	Property string  // "": every property
	AfterID  int64   // only ids above this (a replay walks the quarantine with it)
	Reason   string  // "": any; else only events kept with exactly this reason
	Limit    int     // at most this many; 0 means 500
	// Actor, when set, records each claimed event in the audit log as a replay by Actor,
	// in the apply's own transaction.
	Actor string
}

// Decider is the app's verdict on one claimed event. The store calls it inside the
// apply's transaction, so it must be quick and must not touch the store.
type Decider func(Kept) Decision

// Applied is what became of one claimed event.
type Applied struct {
	ID         int64
	Property   string
	Source     Source
	Status     string // StatusApplied or StatusQuarantined
	Reason     string
	ReceivedAt time.Time
	AppliedAt  time.Time
}

// Posted is one journal entry as stored, with its legs.
type Posted struct {
	ID          int64
	Property    string
	User        string
	Kind        EntryKind
	Rule        string
	RuleVersion string
	Ref         string
	CreatedAt   time.Time
	Legs        []Leg
}

// EventFilter selects inbox events for listing, newest first.
type EventFilter struct {
	Status   string // "" any
	Property string // "" any
	Source   Source // "" any
	Before   int64  // only ids below this; 0 from the newest
	Limit    int
	// RawUpTo is how much of each raw body to read, in bytes: 0 reads none (a page of
	// a thousand 64 KiB bodies is 64 MB nobody shows). Kept.RawSize is always set.
	RawUpTo int
}

// Backlog is what the applier has yet to do.
type Backlog struct {
	Events       int64     // recorded, not yet applied
	OldestRecord time.Time // received_at of the oldest of them; zero when none
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
	// NextAvailableAt is when the earliest unsettled pending credit matures (it moves to
	// available at the first settlement run from then); zero when none waits.
	NextAvailableAt time.Time
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
	// AvailableAt is when a pending credit matures (zero for every other leg).
	AvailableAt time.Time
}
