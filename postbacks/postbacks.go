// Package postbacks turns the raw requests of Tally's four providers into canonical
// rewards.Events. Each provider file authenticates over the exact bytes received, decodes
// the body strictly and validates every field, so nothing downstream ever sees an
// unauthenticated, ambiguous or out-of-range value. It holds no database, HTTP server or
// logger: app maps ErrUnauthorized to 401 and *ValidationError to 400.
package postbacks

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"tally/rewards"
)

// Credentials are one property's secrets for one source. Only the field that source uses
// matters: BearerToken for gamezop_spp and APIKey for gamezop_scores (empty means the
// publisher chose no authentication, which Gamezop allows); Secret for gamepush and
// trackscore, where it is required because their bodies are signed.
type Credentials struct {
	BearerToken string
	APIKey      string
	Secret      string
	// Previous are the values that field had before a rotation, accepted too while the
	// provider moves to the current one. ParseGamePush ignores them: its dedupe key is
	// the signed body, so a payload redelivered under the new secret would be paid again.
	Previous []string
	// verified marks a body authenticated when it was received (Decode): its
	// credentials are not checked again.
	verified bool
}

// String masks the secrets so that a Credentials value logged by mistake leaks nothing.
func (c Credentials) String() string {
	mask := func(s string) string {
		if s == "" {
			return `""`
		}
		return "***"
	}
	return fmt.Sprintf("{BearerToken:%s APIKey:%s Secret:%s Previous:%d}", mask(c.BearerToken), mask(c.APIKey), mask(c.Secret), len(c.Previous))
}

// GoString masks the secrets under %#v too.
func (c Credentials) GoString() string { return "postbacks.Credentials" + c.String() }

// ErrUnauthorized is returned by every Parse function when the request does not carry
// the configured credentials or a valid signature (HTTP 401). It is checked before the
// body is decoded, so an unauthenticated sender learns nothing about body validation.
var ErrUnauthorized = errors.New("postbacks: bad or missing authentication")

// FieldError names one bad field by the provider's own JSON name, dotted for nesting
// ("player.id", "data.participant_id"), or "body" for a problem with the whole body.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every bad field of an authenticated request (HTTP 400). The Parse
// functions return it as *ValidationError.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		parts[i] = fe.Field + ": " + fe.Message
	}
	return "postbacks: invalid postback: " + strings.Join(parts, "; ")
}

// bodyError is a ValidationError about the body as a whole.
func bodyError(msg string) *ValidationError {
	return &ValidationError{Errors: []FieldError{{Field: "body", Message: msg}}}
}

// Parse authenticates, decodes and validates a postback from src. The error is
// ErrUnauthorized, a *ValidationError, or (only for a source this package does not know,
// which the caller should have answered with 404) a plain error.
func Parse(src rewards.Source, h http.Header, body []byte, c Credentials) (rewards.Event, error) {
	switch src {
	case rewards.SourceGamezopSPP:
		return ParseGamezopSPP(h, body, c)
	case rewards.SourceGamezopScores:
		return ParseGamezopScore(h, body, c)
	case rewards.SourceGamePush:
		return ParseGamePush(h, body, c)
	case rewards.SourceTrackScore:
		return ParseTrackScore(h, body, c)
	}
	return rewards.Event{}, fmt.Errorf("postbacks: unknown source %q", src)
}

// Decode re-reads a body that was authenticated when it was received — an inbox row's
// raw body — without checking credentials again. Replay uses it so a kept event is
// mapped by the current parser: an event quarantined because its payload shape was not
// understood becomes applicable once the parser understands it.
func Decode(src rewards.Source, body []byte) (rewards.Event, error) {
	return Parse(src, nil, body, Credentials{verified: true})
}

// UnmappedError reports an authentic, well-formed delivery that lacks a field Tally maps
// rewards by, on a path the provider does not document (GamePush result shapes,
// TrackScore achievement ids), or carries a score beyond the range Tally ranks. It is
// not a refusal: DESIGN §2 keeps such events as
// quarantined ("unknown game mapping"), so the caller records Event with the reason and
// it can be looked at and replayed; nothing authenticated is dropped.
type UnmappedError struct {
	Event   rewards.Event // decoded as far as possible; DedupeKey and Source are set
	Missing []FieldError
}

func (e *UnmappedError) Error() string {
	parts := make([]string, len(e.Missing))
	for i, m := range e.Missing {
		parts[i] = m.Field + ": " + m.Message
	}
	return "unmapped " + string(e.Event.Source) + " " + e.Event.Type + ": " + strings.Join(parts, "; ")
}
