package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"tally/rewards"
)

// Redeemer pays redemptions out of available balances.
type Redeemer interface {
	// Redeem debits available; see store.DB.Redeem. replayed reports an earlier
	// redemption with the same key and request, returned as it was.
	Redeem(ctx context.Context, r rewards.RedeemRequest) (rewards.Redemption, bool, error)
}

// Limits of the write APIs' text inputs, in characters.
const (
	maxIdempotencyKey = 200
	maxReference      = 200
)

// RedeemInput is a redemption as a publisher asks for it.
type RedeemInput struct {
	Property       string
	User           string
	IdempotencyKey string
	Amount         decimal.Decimal
	Reference      string
}

// Redeem pays in.Amount out of the user's available balance, once per idempotency key:
// the same key with the same request returns the first redemption and replayed; with
// another request it is rewards.ErrIdempotencyMismatch. Errors: *ValidationError (key,
// user, an amount that is not positive or does not fit the wallet scale, reference),
// ErrUnknownProperty, rewards.ErrInsufficientFunds, or a storage error (nothing saved).
func (a *App) Redeem(ctx context.Context, in RedeemInput) (r rewards.Redemption, replayed bool, err error) {
	p, err := a.property(in.Property)
	if err != nil {
		return r, false, err
	}
	req := rewards.RedeemRequest{Property: p.ID, User: in.User, Amount: in.Amount, Reference: in.Reference,
		IdempotencyKey: in.IdempotencyKey, RequestHash: requestHash("redemption", in.User, in.Amount.String(), in.Reference)}
	if err := checkRedeem(p, in); err != nil {
		return replayOr(err, func() (rewards.Redemption, bool, error) {
			req.ReplayOnly = true
			return a.store.Redeem(ctx, req)
		})
	}
	return a.store.Redeem(ctx, req)
}

// replayOr answers a request today's rules refuse (refused) with the write its key
// holds, when this same request made it: a retry of a redemption or adjustment that an
// earlier release accepted, before a rule tightened, gets the answer it got then, as
// idempotency promises. A 400 would tell the caller it never happened, though it was
// paid. Without such a write the answer is refused. A lookup that failed (a 5xx:
// storage down, say) is answered as such, so the caller retries and then gets the right
// answer; a refusal of the lookup (an unknown redemption) leaves refused.
func replayOr[R any](refused error, replay func() (R, bool, error)) (R, bool, error) {
	var zero R
	r, replayed, err := replay()
	switch {
	case err != nil && problemFor(err).Status >= http.StatusInternalServerError:
		return zero, false, err
	case err != nil || !replayed:
		return zero, false, refused
	}
	return r, true, nil
}

// checkRedeem is the *ValidationError listing every bad field of a redemption, or nil.
func checkRedeem(p *Property, in RedeemInput) error {
	var bad ValidationError
	_ = bad.merge(checkIdempotencyKey(in.IdempotencyKey)) // a *ValidationError or nil, as checkScale's
	bad.check("user", checkUserID(in.User))
	if !in.Amount.IsPositive() {
		bad.check("amount", "must be greater than zero")
	} else {
		_ = bad.merge(checkScale("amount", in.Amount, p))
	}
	bad.check("reference", checkText(in.Reference, maxReference, false))
	return bad.orNil()
}

type redemptionJSON struct {
	ID         string     `json:"id"`
	Property   string     `json:"property"`
	User       string     `json:"user"`
	Amount     string     `json:"amount"`
	Reference  string     `json:"reference"`
	CreatedAt  time.Time  `json:"created_at"`
	ReversalID *string    `json:"reversal_id"` // null until reversed
	ReversedAt *time.Time `json:"reversed_at"`
}

func toRedemptionJSON(r rewards.Redemption) redemptionJSON {
	out := redemptionJSON{ID: strconv.FormatInt(r.ID, 10), Property: r.Property, User: r.User, Amount: amount(r.Amount),
		Reference: r.Reference, CreatedAt: r.CreatedAt.UTC()}
	if r.Reversal != nil {
		id, at := strconv.FormatInt(r.Reversal.ID, 10), r.Reversal.CreatedAt.UTC()
		out.ReversalID, out.ReversedAt = &id, &at
	}
	return out
}

type redemptionAnswer struct {
	Redemption redemptionJSON `json:"redemption"`
	Balance    balanceJSON    `json:"balance"`
}

// redeem: POST /v1/properties/:property/users/:user/redemptions
func (a *App) redeem(c *gin.Context) {
	p := c.MustGet(ctxProperty).(*Property)
	body, err := readObject(c.Request)
	if err != nil {
		a.fail(c, err)
		return
	}
	key, keyErr := idempotencyKey(c)
	in := RedeemInput{Property: p.ID, User: c.Param("user"), IdempotencyKey: key}
	var amountErr, referenceErr error
	in.Amount, amountErr = body.amount("amount", true)
	in.Reference, referenceErr = body.text("reference")
	// One 400 names every bad field: those that did not decode, then the others'.
	// Decoding fails only with a *ValidationError.
	var bad ValidationError
	if _ = bad.merge(keyErr, amountErr, referenceErr); bad.orNil() != nil {
		_ = bad.merge(checkRedeem(p, in))
		a.fail(c, &bad)
		return
	}
	r, replayed, err := a.Redeem(c.Request.Context(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	if replayed {
		c.Header("Idempotent-Replay", "true")
	}
	c.JSON(http.StatusCreated, redemptionAnswer{
		Redemption: toRedemptionJSON(r),
		Balance:    toBalanceJSON(p, r.Balance),
	})
}

// The request-side helpers below are shared by redemptions and adjustments.

const idempotencyHeader = "Idempotency-Key"

// idempotencyKey is the request's Idempotency-Key ("" when absent, which
// checkIdempotencyKey refuses). Sent more than once it is refused: proxies and
// frameworks disagree on which copy counts, so a retry through another path could land
// under another key and pay twice.
func idempotencyKey(c *gin.Context) (string, error) {
	vs := c.Request.Header.Values(idempotencyHeader)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", invalid(idempotencyHeader, "must be sent once, not "+strconv.Itoa(len(vs))+" times")
}

func checkIdempotencyKey(k string) error {
	switch {
	case strings.TrimSpace(k) == "":
		return invalid(idempotencyHeader, "the header is required: a unique key per request, reused only to retry it")
	case !utf8.ValidString(k):
		return invalid(idempotencyHeader, "must be valid UTF-8")
	case utf8.RuneCountInString(k) > maxIdempotencyKey:
		return invalid(idempotencyHeader, "must be at most "+strconv.Itoa(maxIdempotencyKey)+" characters")
	}
	for _, r := range k {
		if unicode.IsControl(r) {
			return invalid(idempotencyHeader, "must not contain control characters")
		}
	}
	return nil
}

// checkScale refuses an amount with more decimal places than the property's wallet
// (or than the ledger keeps).
func checkScale(field string, d decimal.Decimal, p *Property) error {
	if !rewards.FitsScale(d, p.Scale) {
		return invalid(field, "must have at most "+strconv.Itoa(int(p.Scale))+" decimal places (the scale of "+p.Currency+")")
	}
	if rewards.CheckAmount(d) != nil {
		return invalid(field, "too large: at most "+strconv.Itoa(rewards.MaxIntegerDigits)+" integer digits")
	}
	return nil
}

// checkText: valid UTF-8, at most max characters, no NUL or other control characters
// (tab, CR and LF are allowed where multiline is). "" is allowed; callers that require
// a value check that first.
func checkText(s string, max int, multiline bool) string {
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	if utf8.RuneCountInString(s) > max {
		return "must be at most " + strconv.Itoa(max) + " characters"
	}
	for _, r := range s {
		if unicode.IsControl(r) && !(multiline && (r == '\t' || r == '\n' || r == '\r')) {
			return "must not contain control characters"
		}
	}
	return ""
}

// requestHash identifies a write request by its meaning, not its spelling: the parts
// are the normalized values (amount as decimal.String, so "100" and "100.0" agree),
// JSON-encoded so that no two different requests share an encoding.
func requestHash(parts ...string) string {
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// object is a decoded request body: its top-level members, undecoded.
type object map[string]json.RawMessage

// readObject reads a JSON object body (at most MaxBodyBytes) strictly where it matters
// for money: valid UTF-8, exactly one object and nothing after it, no duplicate member
// (which copy would win is up to the parser). Unknown members are ignored.
func readObject(r *http.Request) (object, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	return readObjectBytes(body)
}

// readObjectBytes is readObject of a body already read.
func readObjectBytes(body []byte) (object, error) {
	if !utf8.Valid(body) {
		return nil, invalid("body", "not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	bad := func(msg string) error { return invalid("body", msg) }
	tok, err := dec.Token()
	if errors.Is(err, io.EOF) {
		return nil, bad("empty body: a JSON object is required")
	}
	if d, ok := tok.(json.Delim); err != nil || !ok || d != '{' {
		return nil, bad("must be a JSON object")
	}
	obj := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad("not valid JSON: " + err.Error())
		}
		key := tok.(string) // inside an object the decoder yields only string keys here
		if _, dup := obj[key]; dup {
			return nil, bad("duplicate member " + strconv.Quote(key))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, bad("not valid JSON: " + err.Error())
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("not valid JSON: " + err.Error())
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad("trailing data after the JSON object")
	}
	return obj, nil
}

// present reports whether the member exists and is not null.
func (o object) present(key string) bool {
	v, ok := o[key]
	return ok && !bytes.Equal(v, []byte("null"))
}

// amount reads a decimal sent as a string ("12.5") or a JSON number (12.5), parsed
// exactly from its literal; never through float64.
func (o object) amount(key string, required bool) (decimal.Decimal, error) {
	if !o.present(key) {
		if required {
			return decimal.Decimal{}, invalid(key, "is required: a decimal string such as \"100\"")
		}
		return decimal.Zero, nil
	}
	raw := o[key]
	lit := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &lit); err != nil {
			return decimal.Decimal{}, invalid(key, "must be a decimal string or number")
		}
	}
	d, ok := parseDecimal(lit)
	if !ok {
		return decimal.Decimal{}, invalid(key, "must be a decimal string or number, such as \"100\" or \"12.5\"")
	}
	return d, nil
}

// text reads an optional string member ("" when absent or null).
func (o object) text(key string) (string, error) {
	if !o.present(key) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(o[key], &s); err != nil {
		return "", invalid(key, "must be a string")
	}
	return s, nil
}

// decimalLiteral is a JSON number (RFC 8259 §6) with at most a 4-digit exponent, so a
// literal like 1e999999999 cannot make the decimal library build a huge number.
var decimalLiteral = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]{1,4})?$`)

// parseDecimal parses a decimal literal exactly. It takes JSON's number grammar, so the
// same amount cannot arrive spelled "+1", ".5" or "01".
func parseDecimal(lit string) (decimal.Decimal, bool) {
	if len(lit) > 100 || !decimalLiteral.MatchString(lit) {
		return decimal.Decimal{}, false
	}
	d, err := decimal.NewFromString(lit)
	return d, err == nil
}
