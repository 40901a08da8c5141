package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"tally/postbacks"
	"tally/rewards"
)

// Recorder writes events to the inbox (group-committed by the batcher).
type Recorder interface {
	Record(ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error)
}

// ReceiveDeadline is how long a provider delivery may take, from the moment its request
// arrives to its answer: within it the event is committed (200), or nothing was and the
// answer is 503 with Retry-After, whatever the database does. Providers retry; a hung
// request helps nobody.
const ReceiveDeadline = 4500 * time.Millisecond

// Receive authenticates, decodes and validates one provider delivery and returns once it
// is durably recorded in the inbox; the applier applies it shortly after (DESIGN §2).
// Errors: ErrUnknownProperty, ErrSourceNotConfigured, postbacks.ErrUnauthorized,
// *postbacks.ValidationError, or a storage error (nothing saved).
func (a *App) Receive(ctx context.Context, property string, src rewards.Source, h http.Header, body []byte) (rewards.Receipt, error) {
	r, err := a.receive(ctx, property, src, h, body)
	a.countIngest(property, src, ingestOutcome(r, err))
	return r, err
}

// countIngest counts one delivery. A property that is not configured is counted as ""
// so that senders cannot mint label values.
func (a *App) countIngest(property string, src rewards.Source, outcome string) {
	if _, ok := a.props[property]; !ok {
		property = ""
	}
	a.metrics.ingest.WithLabelValues(property, string(src), outcome).Inc()
}

func (a *App) receive(ctx context.Context, property string, src rewards.Source, h http.Header, body []byte) (rewards.Receipt, error) {
	p, err := a.property(property)
	if err != nil {
		return rewards.Receipt{}, err
	}
	creds, ok := p.Sources[src]
	if !ok {
		return rewards.Receipt{}, ErrSourceNotConfigured
	}
	ev, err := postbacks.Parse(src, h, body, creds)
	in := rewards.Inbound{Property: p.ID, Event: ev, Raw: body}
	var unmapped *postbacks.UnmappedError
	switch {
	case errors.As(err, &unmapped):
		// Authentic but not mappable to a reward (an undocumented payload shape): recorded
		// and kept quarantined by the applier with the reason, never dropped (DESIGN §2).
		in.Event, in.Unmapped = unmapped.Event, unmapped.Error()
	case err != nil:
		return rewards.Receipt{}, err
	case p.SubTokens == nil && subIsUser(src):
		// Without sub tokens the whole sub is the wallet.
		if msg := wholeSubProblem(ev.User); msg != "" {
			return rewards.Receipt{}, &postbacks.ValidationError{Errors: []postbacks.FieldError{{Field: subField(src), Message: msg}}}
		}
	}
	r, err := a.ingest.submit(ctx, in)
	if err == nil && !r.Duplicate {
		a.applier.wake()
	}
	return r, err
}

func ingestOutcome(r rewards.Receipt, err error) string {
	var pve *postbacks.ValidationError
	switch {
	case err == nil && r.Duplicate:
		return "duplicate"
	case err == nil:
		return "accepted"
	case errors.As(err, &pve):
		return "invalid"
	case errors.Is(err, postbacks.ErrUnauthorized):
		return "unauthorized"
	case errors.Is(err, ErrUnknownProperty), errors.Is(err, ErrSourceNotConfigured):
		return "not_found"
	case errors.Is(err, ErrBodyTooLarge):
		return "too_large"
	case errors.Is(err, ErrBodyIncomplete):
		return "incomplete"
	case errors.Is(err, rewards.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}
