package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"tally/postbacks"
	"tally/rewards"
)

// A problem's detail is a sentence for the caller: never the text of the wrapped error,
// which names Go packages and internal values ("postbacks: invalid postback: …",
// `store: redeem 100 from "sub1"…`).
func TestProblemForDetails(t *testing.T) {
	funds := &rewards.InsufficientFundsError{Bucket: rewards.Available, Available: decimal.RequireFromString("10.5"), Requested: decimal.NewFromInt(100)}
	tests := []struct {
		name                 string
		err                  error
		status               int
		detail               string
		available, requested string
	}{
		{"provider validation, one field",
			&postbacks.ValidationError{Errors: []postbacks.FieldError{{Field: "user-id", Message: "required"}}},
			400, "Invalid field: user-id (required).", "", ""},
		{"provider validation, two fields",
			fmt.Errorf("ingest: %w", &postbacks.ValidationError{Errors: []postbacks.FieldError{{Field: "user-id", Message: "required"}, {Field: "country", Message: "must be an ISO 3166-1 alpha-2 code"}}}),
			400, "Invalid fields: user-id (required); country (must be an ISO 3166-1 alpha-2 code).", "", ""},
		{"API validation", invalid("amount", "must be greater than zero"), 400, "Invalid field: amount (must be greater than zero).", "", ""},
		{"insufficient funds with figures", fmt.Errorf(`store: redeem 100 from "sub1": %w`, funds),
			409, "100 requested, but only 10.5 is available; nothing was saved", "10.5", "100"},
		{"insufficient funds without figures", fmt.Errorf("store: wallet 7 would go negative: %w", rewards.ErrInsufficientFunds),
			409, "not enough available funds; nothing was saved", "", ""},
		{"idempotency mismatch", fmt.Errorf(`store: redemption key "k" was used by redemption 3: %w`, rewards.ErrIdempotencyMismatch),
			422, "this Idempotency-Key was already used for a different request; use a new key for a new request", "", ""},
		{"not found", fmt.Errorf("inbox event 5: %w", rewards.ErrNotFound), 404, "not found", "", ""},
		{"store refusal", fmt.Errorf("store: redeem: amount -1 is not positive: %w", rewards.ErrInvalidRequest), 400, "the request is invalid", "", ""},
		{"bad cursor", fmt.Errorf(`store: cursor "x": %w`, rewards.ErrBadCursor), 400, "the cursor is not one this API returned", "", ""},
		{"settlement running", fmt.Errorf(`store: settle "arcade": %w`, rewards.ErrSettlementRunning),
			409, "another settlement run of this property is in progress; retry when it has finished", "", ""},
		{"unavailable", fmt.Errorf("store: ping: %w", errors.Join(rewards.ErrUnavailable, errors.New("dial tcp: user=tally database=ledger"))),
			503, "storage is unavailable; nothing was saved, retry later", "", ""},
		{"commit unanswered", fmt.Errorf("store: tx: %w: %w: %w", rewards.ErrUnavailable, rewards.ErrOutcomeUnknown, errors.New("conn closed")),
			503, "the database did not confirm the commit, so this may or may not have been saved; send the same request again (with the same Idempotency-Key where it takes one), which answers what was saved and never applies it twice", "", ""},
		{"anything else", errors.New("store: something internal about \"sub1\""), 500, "internal error; nothing was saved", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := problemFor(tt.err)
			if p.Status != tt.status || p.Detail != tt.detail || p.Available != tt.available || p.Requested != tt.requested {
				t.Errorf("problem = %+v\nwant status %d, detail %q, available %q, requested %q", p, tt.status, tt.detail, tt.available, tt.requested)
			}
			for _, leak := range []string{"store:", "postbacks:", "ingest:", "sub1", "%!"} {
				if strings.Contains(p.Detail, leak) {
					t.Errorf("detail %q leaks %q", p.Detail, leak)
				}
			}
		})
	}
}

// A write that may have been saved has a problem type of its own: a client switching on
// the type, as the OpenAPI document tells it to, must not take it for "unavailable",
// which says nothing was saved and may be retried as a new request.
func TestOutcomeUnknownHasItsOwnType(t *testing.T) {
	maybe := problemFor(fmt.Errorf("store: tx: %w: %w", rewards.ErrUnavailable, rewards.ErrOutcomeUnknown))
	none := problemFor(fmt.Errorf("store: ping: %w", rewards.ErrUnavailable))
	if maybe.Type != "urn:tally:problem:outcome-unknown" || none.Type != "urn:tally:problem:unavailable" || maybe.Status != 503 {
		t.Fatalf("outcome unknown %q (%d), unavailable %q", maybe.Type, maybe.Status, none.Type)
	}
}

// A read that fails saves nothing whatever happens, so its answer (or console page) does
// not say "nothing was saved", which a client would take to mean that something could
// have been; a write keeps the sentence.
func TestFailedReadDoesNotSayNothingWasSaved(t *testing.T) {
	a := &App{log: slog.New(slog.DiscardHandler)}
	for _, tt := range []struct {
		method, want string
		err          error
	}{
		{"GET", "storage is unavailable, retry later", rewards.ErrUnavailable},
		{"HEAD", "storage is unavailable, retry later", rewards.ErrUnavailable},
		{"GET", "internal error", errors.New("store: broken")},
		{"POST", "storage is unavailable; nothing was saved, retry later", rewards.ErrUnavailable},
	} {
		rec := httptest.NewRecorder()
		c, _ := gin.CreateTestContext(rec)
		c.Request = httptest.NewRequest(tt.method, "/v1/properties/arcade/users/u1/balance", nil)
		a.fail(c, tt.err)
		var p problem
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("%s: %v: %s", tt.method, err, rec.Body)
		}
		if p.Detail != tt.want {
			t.Errorf("%s %v: detail %q, want %q", tt.method, tt.err, p.Detail, tt.want)
		}
		// The console's pages say the same.
		con := &console{app: a}
		if _, msg := con.failure(c, tt.err); !strings.HasSuffix(msg, ": "+tt.want) {
			t.Errorf("console %s %v: %q, want it to end %q", tt.method, tt.err, msg, tt.want)
		}
	}
}
