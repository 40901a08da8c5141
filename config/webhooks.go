package config

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"tally/rewards"
)

// Webhook is one publisher endpoint that Tally notifies of changes (Standard Webhooks).
type Webhook struct {
	URL    string `yaml:"url"`
	Secret Secret `yaml:"secret"` // whsec_… (base64 after the prefix)
	// PreviousSecrets sign each message too while the publisher moves to Secret: a
	// rotation without a moment when some replica signs with a key the receiver no
	// longer (or not yet) checks (Standard Webhooks' list of signatures).
	PreviousSecrets []Secret `yaml:"previous_secrets,omitempty"`
	Events          []string `yaml:"events"`
}

// Standard Webhooks asks for a key of 24 to 64 bytes.
const (
	minWebhookKey = 24
	maxWebhookKey = 64
)

// webhooks validates a property's webhooks. An endpoint is known by its URL (its
// deliveries and its health are kept per property and URL), so a URL appears once.
func (v *validator) webhooks(path string, hs []Webhook) {
	known := rewards.WebhookEventTypes()
	seen := map[string]int{}
	for i, h := range hs {
		at := fmt.Sprintf("%s[%d]", path, i)
		u, err := url.Parse(h.URL)
		switch {
		case h.URL == "":
			v.add(at+".url", "is required")
		case err == nil && u.User != nil:
			// The URL is shown in the deliveries API and in logs; credentials go in the
			// signature's secret, not here.
			v.add(at+".url", "must not contain credentials (user:password@)")
		case err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
			v.add(at+".url", "must be an absolute http:// or https:// URL, got %q", shownURL(h.URL, u, err))
		default:
			if j, dup := seen[h.URL]; dup {
				v.add(at+".url", "is already the url of %s[%d]", path, j)
			} else {
				seen[h.URL] = i
			}
		}
		v.webhookSecret(at+".secret", h.Secret)
		v.previousSecrets(at+".previous_secrets", h.PreviousSecrets, at+".secret", h.Secret, v.webhookSecret)
		if len(h.Events) == 0 {
			v.add(at+".events", "must list at least one of %s", strings.Join(known, ", "))
		}
		events := map[string]bool{}
		for j, e := range h.Events {
			ep := fmt.Sprintf("%s.events[%d]", at, j)
			switch {
			case !slices.Contains(known, e):
				v.add(ep, "must be one of %s, got %q", strings.Join(known, ", "), e)
			case events[e]:
				v.add(ep, "%q is listed twice", e)
			}
			events[e] = true
		}
	}
}

// shownURL is a URL as an error may show it: with any password hidden, and hidden whole
// when it does not parse (there is no telling where its password is then).
func shownURL(raw string, u *url.URL, err error) string {
	if err != nil {
		return mask
	}
	return u.Redacted()
}

// webhookSecret checks a Standard Webhooks secret without ever echoing it.
func (v *validator) webhookSecret(path string, s Secret) {
	b64, ok := strings.CutPrefix(s.Reveal(), "whsec_")
	switch {
	case s == "":
		v.add(path, `is required: "whsec_" followed by a base64 key of %d to %d bytes`, minWebhookKey, maxWebhookKey)
		return
	case !ok:
		v.add(path, `must start with "whsec_" (Standard Webhooks)`)
		return
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	switch {
	case err != nil:
		v.add(path, `must be "whsec_" followed by standard base64`)
	case len(key) < minWebhookKey || len(key) > maxWebhookKey:
		v.add(path, "must hold a key of %d to %d bytes, got %d", minWebhookKey, maxWebhookKey, len(key))
	}
}

// WebhookSubscriptions returns a lookup of the URLs of a property's webhooks subscribed
// to an event type, for the store's outbox. It is built once, here, because the store
// calls it on the write path; call it on a validated config.
func (c Config) WebhookSubscriptions() func(property, eventType string) []string {
	subs := map[[2]string][]string{}
	for _, p := range c.Properties {
		for _, h := range p.Webhooks {
			for _, e := range h.Events {
				k := [2]string{p.ID, e}
				if !slices.Contains(subs[k], h.URL) {
					subs[k] = append(subs[k], h.URL)
				}
			}
		}
	}
	if len(subs) == 0 {
		return nil
	}
	return func(property, eventType string) []string { return subs[[2]string{property, eventType}] }
}
