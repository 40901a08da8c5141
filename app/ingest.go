package app

import (
	"context"
	"errors"
	"net/http"

	"tally/postbacks"
	"tally/rewards"
)

// Receive authenticates, decodes and validates one provider delivery and returns once it
// is committed (recorded, and applied or quarantined). Errors: ErrUnknownProperty,
// ErrSourceNotConfigured, postbacks.ErrUnauthorized, *postbacks.ValidationError, or a
// storage error (nothing saved).
func (a *App) Receive(ctx context.Context, property string, src rewards.Source, h http.Header, body []byte) (rewards.Receipt, error) {
	r, err := a.receive(ctx, property, src, h, body)
	a.metrics.ingest.WithLabelValues(string(src), ingestOutcome(r, err)).Inc()
	return r, err
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
	var unmapped *postbacks.UnmappedError
	if errors.As(err, &unmapped) {
		// Authentic but not mappable to a reward (an undocumented payload shape): kept
		// quarantined with the reason, never dropped (DESIGN §2).
		in := a.inbound(p.ID, unmapped.Event, body)
		in.Quarantine = unmapped.Error()
		return a.ingest.submit(ctx, in)
	}
	if err != nil {
		return rewards.Receipt{}, err
	}
	return a.ingest.submit(ctx, a.inbound(p.ID, ev, body))
}

// inbound prepares an event for the store with the property's current rules, or with a
// quarantine reason when it cannot be applied yet. Receive and Replay share it.
func (a *App) inbound(property string, ev rewards.Event, raw []byte) rewards.Inbound {
	in := rewards.Inbound{Property: property, Event: ev, Raw: raw}
	p, ok := a.props[property]
	if !ok {
		in.Quarantine = "property " + property + " is not configured"
		return in
	}
	in.Rules = &p.Rules
	if ev.Session != nil && p.GamezopPropertyID != "" && ev.Session.PropertyID != p.GamezopPropertyID {
		// Authenticated but addressed to another Gamezop property: most likely our config
		// is out of date, so keep it for replay rather than refuse it.
		in.Quarantine = "property-id " + quoteOrMissing(ev.Session.PropertyID) + " does not match gamezop_property_id " + p.GamezopPropertyID
	}
	return in
}

func quoteOrMissing(s string) string {
	if s == "" {
		return "(missing)"
	}
	return `"` + s + `"`
}

func ingestOutcome(r rewards.Receipt, err error) string {
	var pve *postbacks.ValidationError
	switch {
	case err == nil && r.Duplicate:
		return "duplicate"
	case err == nil && r.Status == rewards.StatusQuarantined:
		return "quarantined"
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
	case errors.Is(err, rewards.ErrUnavailable):
		return "unavailable"
	}
	return "error"
}
