package rewards

import "time"

// Outbound webhook event types (issue 13): what a publisher can subscribe to. The store
// writes one outbox delivery per subscribed endpoint in the transaction of the change.
const (
	WebhookCreditSettled      = "credit.settled"      // a settlement moved a user's matured credits to available
	WebhookBalanceUpdated     = "balance.updated"     // any change to a user's wallet
	WebhookRedemptionCreated  = "redemption.created"  // a redemption was committed
	WebhookRedemptionReversed = "redemption.reversed" // a redemption was returned to the user
	WebhookEventQuarantined   = "event.quarantined"   // an inbox event was kept quarantined
)

// WebhookEventTypes lists every event type a webhook may subscribe to, in a fixed order.
func WebhookEventTypes() []string {
	return []string{WebhookCreditSettled, WebhookBalanceUpdated, WebhookRedemptionCreated, WebhookRedemptionReversed,
		WebhookEventQuarantined}
}

// Delivery statuses.
const (
	DeliveryPending   = "pending"   // to be sent, waiting for its next retry, or of an endpoint no longer configured
	DeliveryDelivered = "delivered" // the endpoint answered 2xx
	DeliveryFailed    = "failed"    // retries exhausted, or the endpoint disabled
)

// Delivery is one webhook event for one endpoint.
type Delivery struct {
	ID       int64
	Property string
	User     string
	Endpoint string // the URL
	Type     string
	// Body is the exact JSON sent (and signed) on every attempt.
	Body          []byte
	Status        string
	Attempts      int // every attempt made, manual retries included
	Step          int // position in the retry schedule; a manual retry starts it over
	NextAttemptAt time.Time
	LastAttemptAt time.Time // zero before the first attempt
	LastStatus    int       // HTTP status of the last attempt; 0 when none came back
	LastError     string
	DeliveredAt   time.Time
	CreatedAt     time.Time
	// EndpointDisabledAt is set when the endpoint was disabled for failing too long.
	EndpointDisabledAt time.Time
}

// DeliveryFilter selects deliveries for listing, newest first.
type DeliveryFilter struct {
	Status string // "" for any
	Before int64  // only ids below this; 0 for no bound
	Limit  int
}

// DeliveryAttempt is the outcome of sending one claimed delivery.
type DeliveryAttempt struct {
	ID     int64
	Holder string // the claim's holder: an attempt whose lease another worker took is dropped
	// Step is the delivery's step when it was claimed, which RetryIn was worked out from.
	// When an operator retried the delivery meanwhile (step 0 again, due now), a failed
	// attempt is counted but leaves it pending and due as the retry made it.
	Step int
	// Due is the delivery's next_attempt_at when it was claimed: a retry meanwhile made
	// it due at the retry's time, which tells a retry of an attempt at step 0 (where the
	// step it reset is the same) from none. Zero: the step alone says.
	Due    time.Time
	OK     bool
	Status int    // HTTP status; 0 when the request failed before an answer
	Error  string // why it failed
	// RetryIn is how long to wait before the next attempt after a failure; 0 gives up
	// and marks the delivery failed.
	RetryIn time.Duration
	// DisableAfter disables the endpoint when it has failed without a success for this
	// long (0: never), and fails its pending deliveries.
	DisableAfter time.Duration
}
