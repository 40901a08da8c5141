package app

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

// Reverser returns redemptions to available balances and reads them back.
type Reverser interface {
	// Reverse undoes one redemption once; see store.DB.Reverse. replayed reports an
	// earlier reversal with the same key and request, returned as it was.
	Reverse(ctx context.Context, r rewards.ReverseRequest) (rewards.Reversal, bool, error)
	// Redemption reads one redemption of property ("" any); unknown is rewards.ErrNotFound.
	Redemption(ctx context.Context, property string, id int64) (rewards.Redemption, error)
	// Redemptions lists a user's redemptions newest first.
	Redemptions(ctx context.Context, f rewards.RedemptionFilter) ([]rewards.Redemption, error)
}

// AuditReader lists the admin actions recorded.
type AuditReader interface {
	Audit(ctx context.Context, f rewards.AuditFilter) ([]rewards.AuditEntry, error)
}

// ReverseInput is a reversal as finance asks for it.
type ReverseInput struct {
	RedemptionID   int64
	IdempotencyKey string
	Reason         string
	Actor          string // the admin's name
	// PartAsked is a request that named an amount: refused, since a reversal returns the
	// whole redemption, and a partial refund asked so returned everything (review helper
	// 229). A retry of one an earlier release reversed still gets its answer (replayOr).
	PartAsked bool
}

// Reverse returns a redemption's amount to its user's available balance, at most once
// per redemption, once per idempotency key (same rules as Redeem). Errors:
// *ValidationError (key, reason), rewards.ErrNotFound for an unknown redemption,
// rewards.ErrAlreadyReversed when another request reversed it, rewards.ErrIdempotencyMismatch,
// or a storage error (nothing saved).
func (a *App) Reverse(ctx context.Context, in ReverseInput) (rewards.Reversal, bool, error) {
	if in.Actor == "" {
		return rewards.Reversal{}, false, ErrUnauthorized
	}
	req := rewards.ReverseRequest{RedemptionID: in.RedemptionID, Reason: in.Reason, Actor: in.Actor,
		IdempotencyKey: in.IdempotencyKey, RequestHash: requestHash("reversal", strconv.FormatInt(in.RedemptionID, 10), in.Reason)}
	if err := checkReverse(in); err != nil {
		return replayOr(err, func() (rewards.Reversal, bool, error) {
			req.ReplayOnly = true
			return a.store.Reverse(ctx, req)
		})
	}
	return a.store.Reverse(ctx, req)
}

// checkReverse is the *ValidationError listing every bad field of a reversal, or nil.
func checkReverse(in ReverseInput) error {
	var bad ValidationError
	_ = bad.merge(checkIdempotencyKey(in.IdempotencyKey)) // a *ValidationError or nil
	if strings.TrimSpace(in.Reason) == "" {
		bad.check("reason", "is required: why the redemption is reversed")
	} else {
		bad.check("reason", checkText(in.Reason, maxReason, true))
	}
	if in.PartAsked {
		bad.check("amount", "not accepted: a reversal returns the whole redemption; to return part of it, reverse it and redeem the rest again, or adjust the balance")
	}
	return bad.orNil()
}

type reversalJSON struct {
	ID           string    `json:"id"`
	RedemptionID string    `json:"redemption_id"`
	Property     string    `json:"property"`
	User         string    `json:"user"`
	Amount       string    `json:"amount"`
	Reason       string    `json:"reason"`
	Actor        string    `json:"actor"`
	CreatedAt    time.Time `json:"created_at"`
}

type reversalAnswer struct {
	Reversal   reversalJSON   `json:"reversal"`
	Redemption redemptionJSON `json:"redemption"`
	Balance    balanceJSON    `json:"balance"`
}

// reverseRedemption: POST /v1/admin/redemptions/:id/reversal
func (a *App) reverseRedemption(c *gin.Context) {
	id, err := redemptionIDParam(c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	body, err := readObject(c.Request)
	if err != nil {
		a.fail(c, err)
		return
	}
	key, keyErr := idempotencyKey(c)
	in := ReverseInput{RedemptionID: id, IdempotencyKey: key, Actor: actor(c)}
	var reasonErr error
	in.Reason, reasonErr = body.text("reason")
	in.PartAsked = body.present("amount") // other unknown members are ignored
	// One 400 names every bad field, as a redemption's does.
	var bad ValidationError
	if _ = bad.merge(keyErr, reasonErr); bad.orNil() != nil {
		_ = bad.merge(checkReverse(in))
		a.fail(c, &bad)
		return
	}
	r, replayed, err := a.Reverse(c.Request.Context(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	p, err := a.property(r.Redemption.Property)
	if err != nil {
		// The redemption's property is no longer configured: its currency and scale are
		// unknown, but the reversal is committed and must be answered.
		p = &Property{ID: r.Redemption.Property}
	}
	if replayed {
		c.Header("Idempotent-Replay", "true")
	}
	c.JSON(http.StatusCreated, reversalAnswer{
		Reversal: reversalJSON{ID: strconv.FormatInt(r.ID, 10), RedemptionID: strconv.FormatInt(r.Redemption.ID, 10),
			Property: r.Redemption.Property, User: r.Redemption.User, Amount: amount(r.Amount), Reason: r.Reason, Actor: r.Actor,
			CreatedAt: r.CreatedAt.UTC()},
		Redemption: toRedemptionJSON(r.Redemption),
		Balance:    toBalanceJSON(p, r.Balance),
	})
}

// listRedemptions: GET /v1/properties/:property/users/:user/redemptions?limit=&cursor=
func (a *App) listRedemptions(c *gin.Context) {
	p := c.MustGet(ctxProperty).(*Property)
	user, err := userParam(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	limit, err := limitParam(c, 50, 500)
	if err != nil {
		a.fail(c, err)
		return
	}
	f := rewards.RedemptionFilter{Property: p.ID, User: user, Limit: limit + 1}
	if f.Before, err = cursorParam(c); err != nil {
		a.fail(c, err)
		return
	}
	got, err := a.store.Redemptions(c.Request.Context(), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toListPage(got, limit, func(r rewards.Redemption) int64 { return r.ID }, toRedemptionJSON))
}

// getRedemption: GET /v1/properties/:property/redemptions/:id. A redemption of another
// property is not found: a publisher key sees its own property only.
func (a *App) getRedemption(c *gin.Context) {
	p := c.MustGet(ctxProperty).(*Property)
	id, err := redemptionIDParam(c.Param("id"))
	if err != nil {
		a.fail(c, err)
		return
	}
	r, err := a.store.Redemption(c.Request.Context(), p.ID, id)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toRedemptionJSON(r))
}

func redemptionIDParam(s string) (int64, error) {
	id, ok := positiveID(s)
	if !ok {
		return 0, invalid("id", "must be a redemption id: a positive integer")
	}
	return id, nil
}

type auditJSON struct {
	ID        string    `json:"id"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Property  string    `json:"property"`
	Target    string    `json:"target"`
	Reason    string    `json:"reason"`
	Detail    string    `json:"detail"`
	CreatedAt time.Time `json:"created_at"`
}

// listAudit: GET /v1/admin/audit?limit=&cursor=
func (a *App) listAudit(c *gin.Context) {
	limit, err := limitParam(c, 100, 1000)
	if err != nil {
		a.fail(c, err)
		return
	}
	f := rewards.AuditFilter{Limit: limit + 1}
	if f.Before, err = cursorParam(c); err != nil {
		a.fail(c, err)
		return
	}
	got, err := a.store.Audit(c.Request.Context(), f)
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toListPage(got, limit, func(e rewards.AuditEntry) int64 { return e.ID }, func(e rewards.AuditEntry) auditJSON {
		return auditJSON{ID: strconv.FormatInt(e.ID, 10), Actor: e.Actor, Action: e.Action, Property: e.Property,
			Target: e.Target, Reason: e.Reason, Detail: e.Detail, CreatedAt: e.CreatedAt.UTC()}
	}))
}
