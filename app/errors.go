package app

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"tally/postbacks"
	"tally/rewards"
)

// Errors of the app layer; the domain's are in rewards, the parsers' in postbacks.
var (
	ErrUnknownProperty     = errors.New("unknown property")
	ErrSourceNotConfigured = errors.New("source not configured for this property")
	ErrUnauthorized        = errors.New("missing or invalid credentials")
	ErrBodyTooLarge        = errors.New("request body too large")
	// ErrBodyIncomplete is a body that did not arrive whole: the connection stalled past
	// the server's read timeout or closed early. It is the transport's fault, not the
	// sender's content, so it is a 408 the sender retries, never a 400 it would not.
	ErrBodyIncomplete = errors.New("request body did not arrive whole")
)

// FieldError names one invalid input.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError is a 400 listing every bad field.
type ValidationError struct{ Errors []FieldError }

func (e *ValidationError) Error() string {
	if len(e.Errors) == 0 {
		return "invalid request"
	}
	return "invalid " + e.Errors[0].Field + ": " + e.Errors[0].Message
}

// add lists one more bad field.
func (e *ValidationError) add(field, msg string) {
	e.Errors = append(e.Errors, FieldError{Field: field, Message: msg})
}

// check lists field with msg unless msg is "" or field is listed already: one message
// per field, from the first check that failed it.
func (e *ValidationError) check(field, msg string) {
	if msg != "" && !e.has(field) {
		e.add(field, msg)
	}
}

// merge lists the fields of each *ValidationError in errs, as check does. Any other
// error (a storage error, say) is returned as it is, the first one; nil otherwise.
func (e *ValidationError) merge(errs ...error) error {
	for _, err := range errs {
		var v *ValidationError
		if err != nil && !errors.As(err, &v) {
			return err
		}
		if v != nil {
			for _, f := range v.Errors {
				e.check(f.Field, f.Message)
			}
		}
	}
	return nil
}

func (e *ValidationError) has(field string) bool {
	for _, f := range e.Errors {
		if f.Field == field {
			return true
		}
	}
	return false
}

// orNil is e when it lists a field, else nil: the one 400 naming every bad field.
func (e *ValidationError) orNil() error {
	if len(e.Errors) == 0 {
		return nil
	}
	return e
}

func invalid(field, msg string) *ValidationError {
	return &ValidationError{Errors: []FieldError{{Field: field, Message: msg}}}
}

// problem is an RFC 9457 problem document. Detail is a sentence for the caller, never
// the text of a wrapped internal error (which names packages and internal values).
type problem struct {
	Type   string       `json:"type"`
	Title  string       `json:"title"`
	Status int          `json:"status"`
	Detail string       `json:"detail,omitempty"`
	Errors []FieldError `json:"errors,omitempty"`
	// Available and Requested explain an insufficient-funds 409, as decimal strings.
	Available string `json:"available,omitempty"`
	Requested string `json:"requested,omitempty"`
}

// problemFor is the one place errors become HTTP answers.
func problemFor(err error) problem {
	var ve *ValidationError
	var pve *postbacks.ValidationError
	var funds *rewards.InsufficientFundsError
	var replay *ReplayFailedError
	switch {
	case errors.As(err, &ve):
		return invalidProblem(ve.Errors)
	case errors.As(err, &pve):
		fe := make([]FieldError, len(pve.Errors))
		for i, e := range pve.Errors {
			fe[i] = FieldError{Field: e.Field, Message: e.Message}
		}
		return invalidProblem(fe)
	case errors.Is(err, ErrUnauthorized), errors.Is(err, postbacks.ErrUnauthorized):
		return problem{Type: "urn:tally:problem:unauthorized", Title: "Unauthorized", Status: http.StatusUnauthorized, Detail: "missing or invalid credentials"}
	case errors.Is(err, ErrUnknownProperty):
		return problem{Type: "urn:tally:problem:not-found", Title: "Not found", Status: http.StatusNotFound, Detail: "unknown property"}
	case errors.Is(err, ErrSourceNotConfigured):
		return problem{Type: "urn:tally:problem:not-found", Title: "Not found", Status: http.StatusNotFound, Detail: "this source is not configured for the property"}
	case errors.Is(err, rewards.ErrNotFound):
		return problem{Type: "urn:tally:problem:not-found", Title: "Not found", Status: http.StatusNotFound, Detail: "not found"}
	case errors.Is(err, ErrBodyTooLarge):
		return problem{Type: "urn:tally:problem:too-large", Title: "Request body too large", Status: http.StatusRequestEntityTooLarge, Detail: "the body is over 64 KiB"}
	case errors.Is(err, ErrBodyIncomplete):
		return problem{Type: "urn:tally:problem:incomplete-body", Title: "Request body incomplete", Status: http.StatusRequestTimeout,
			Detail: "the body did not arrive whole; nothing was saved, send the request again"}
	case errors.As(err, &replay):
		// For operators: what the database said is what they need to fix it (the event's
		// reason, had the applier quarantined it, says the same).
		return problem{Type: "urn:tally:problem:replay-failed", Title: "Replay failed", Status: http.StatusConflict,
			Detail: "the event could not be applied and stays quarantined as it was: " + replay.err.Error()}
	case errors.As(err, &funds):
		return problem{Type: "urn:tally:problem:insufficient-funds", Title: "Insufficient funds", Status: http.StatusConflict,
			Detail:    fmt.Sprintf("%s requested, but only %s is %s; nothing was saved", funds.Requested, funds.Available, funds.Bucket),
			Available: funds.Available.String(), Requested: funds.Requested.String()}
	case errors.Is(err, rewards.ErrInsufficientFunds):
		return problem{Type: "urn:tally:problem:insufficient-funds", Title: "Insufficient funds", Status: http.StatusConflict,
			Detail: "not enough available funds; nothing was saved"}
	case errors.Is(err, rewards.ErrAlreadyReversed):
		return problem{Type: "urn:tally:problem:already-reversed", Title: "Already reversed", Status: http.StatusConflict,
			Detail: "this redemption was already reversed; a redemption is reversed at most once"}
	case errors.Is(err, rewards.ErrTruedUp):
		return problem{Type: "urn:tally:problem:trued-up", Title: "Already trued up", Status: http.StatusConflict,
			Detail: "a day of the period was trued up already; a day is trued up once (a changed booked amount needs correction: true)"}
	case errors.Is(err, rewards.ErrRuleUnknown):
		return problem{Type: "urn:tally:problem:rule-unknown", Title: "Buffer unknown", Status: http.StatusConflict,
			Detail: "sessions of the period were credited, before this version, under a buffer other than the current rule's; their release cannot be computed exactly"}
	case errors.Is(err, rewards.ErrNotBooked):
		detail := "a day of the period has no booked revenue yet; import it first"
		if nb := (rewards.NotBookedError{}); errors.As(err, &nb) {
			detail = nb.Day + " has no booked revenue yet; import it first (a period's to is inclusive)"
		}
		return problem{Type: "urn:tally:problem:not-booked", Title: "Booked revenue missing", Status: http.StatusConflict,
			Detail: detail}
	case errors.Is(err, rewards.ErrIdempotencyMismatch):
		return problem{Type: "urn:tally:problem:idempotency-mismatch", Title: "Idempotency key reused", Status: http.StatusUnprocessableEntity,
			Detail: "this Idempotency-Key was already used for a different request; use a new key for a new request"}
	case errors.Is(err, rewards.ErrInvalidRequest):
		return problem{Type: "urn:tally:problem:invalid", Title: "Invalid request", Status: http.StatusBadRequest, Detail: "the request is invalid"}
	case errors.Is(err, rewards.ErrBadCursor):
		return problem{Type: "urn:tally:problem:invalid", Title: "Invalid request", Status: http.StatusBadRequest, Detail: "the cursor is not one this API returned",
			Errors: []FieldError{{Field: "cursor", Message: "not a cursor returned by this API"}}}
	case errors.Is(err, rewards.ErrSettlementRunning):
		return problem{Type: "urn:tally:problem:settlement-running", Title: "Settlement in progress", Status: http.StatusConflict,
			Detail: "another settlement run of this property is in progress; retry when it has finished"}
	case errors.Is(err, errReportsBusy):
		return problem{Type: "urn:tally:problem:unavailable", Title: "Service unavailable", Status: http.StatusServiceUnavailable,
			Detail: fmt.Sprintf("%d payout reports are being streamed by this instance, as many as it serves at once; retry when one has finished", maxReportStreams)}
	case errors.Is(err, rewards.ErrOutcomeUnknown):
		return problem{Type: "urn:tally:problem:outcome-unknown", Title: "Outcome unknown", Status: http.StatusServiceUnavailable,
			Detail: "the database did not confirm the commit, so this may or may not have been saved; send the same request again (with the same Idempotency-Key where it takes one), which answers what was saved and never applies it twice"}
	case errors.Is(err, rewards.ErrUnavailable):
		return problem{Type: "urn:tally:problem:unavailable", Title: "Service unavailable", Status: http.StatusServiceUnavailable, Detail: "storage is unavailable; nothing was saved, retry later"}
	}
	return problem{Type: "urn:tally:problem:internal", Title: "Internal error", Status: http.StatusInternalServerError, Detail: "internal error; nothing was saved"}
}

// problemForRequest is problemFor as the request is answered: a read saves nothing in
// any case, so its failure does not say "nothing was saved", which would only puzzle.
func problemForRequest(c *gin.Context, err error) problem {
	p := problemFor(err)
	if m := c.Request.Method; (m == http.MethodGet || m == http.MethodHead) && p.Status >= 500 {
		p.Detail = strings.Replace(p.Detail, "; nothing was saved", "", 1)
	}
	return p
}

// invalidProblem is a 400 whose detail lists the bad fields in words, e.g.
// "Invalid fields: user-id (required); country (must be an ISO 3166-1 alpha-2 code)."
func invalidProblem(errs []FieldError) problem {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Field + " (" + e.Message + ")"
	}
	detail := "Invalid request."
	switch len(parts) {
	case 0:
	case 1:
		detail = "Invalid field: " + parts[0] + "."
	default:
		detail = "Invalid fields: " + strings.Join(parts, "; ") + "."
	}
	return problem{Type: "urn:tally:problem:invalid", Title: "Invalid request", Status: http.StatusBadRequest, Detail: detail, Errors: errs}
}

// fail renders err as problem+json and logs server-side failures.
func (a *App) fail(c *gin.Context, err error) {
	p := problemForRequest(c, err)
	if p.Status >= 500 {
		a.logFor(c.Request.Context()).Error("request failed", "route", c.FullPath(), "err", err)
		if p.Status == http.StatusServiceUnavailable {
			c.Header("Retry-After", strconv.Itoa(retryAfterSeconds))
		}
	}
	// Set before rendering: gin keeps a Content-Type that is already there.
	c.Header("Content-Type", "application/problem+json")
	c.AbortWithStatusJSON(p.Status, p)
}

const retryAfterSeconds = 5
