package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"tally/postbacks"
	"tally/rewards"
)

// Adjuster records manual credits and debits.
type Adjuster interface {
	// Adjust credits or debits one bucket; see store.DB.Adjust. replayed reports an
	// earlier adjustment with the same key and request, returned as it was.
	Adjust(ctx context.Context, a rewards.AdjustRequest) (rewards.Adjustment, bool, error)
	// WalletExists says whether the user has a wallet, read on the primary.
	WalletExists(ctx context.Context, property, user string) (bool, error)
}

const maxReason = 500

// AdjustInput is a manual adjustment as finance asks for it.
type AdjustInput struct {
	Property       string
	User           string
	IdempotencyKey string
	Amount         decimal.Decimal // > 0 credits, < 0 debits
	Bucket         rewards.Bucket  // "" or rewards.Available; see Adjust
	Reason         string
	Actor          string // the admin's name, recorded with the adjustment and in the audit log
}

// Adjust records a manual credit or debit of the user's available balance, once per
// idempotency key (same rules as Redeem). Only available can be adjusted: finance adjusts
// what can be paid out, and the payout report's identity (closing = opening + settled −
// redeemed + adjustments) is defined on available; a pending adjustment would move units
// the report cannot see until a settlement. Errors: *ValidationError (key, user, a zero
// amount, one that does not fit the wallet scale or would take the balance past the
// ledger's integer digits, reason, bucket), ErrUnknownProperty,
// rewards.ErrInsufficientFunds for a debit below zero, rewards.ErrIdempotencyMismatch, or
// a storage error (nothing saved).
func (a *App) Adjust(ctx context.Context, in AdjustInput) (r rewards.Adjustment, replayed bool, err error) {
	p, err := a.property(in.Property)
	if err != nil {
		return r, false, err
	}
	if in.Actor == "" {
		return r, false, ErrUnauthorized // no admin to record: the caller did not authenticate
	}
	if in.Bucket == "" {
		in.Bucket = rewards.Available
	}
	req := rewards.AdjustRequest{Property: p.ID, User: in.User, Amount: in.Amount, Bucket: in.Bucket,
		Reason: in.Reason, IdempotencyKey: in.IdempotencyKey, Actor: in.Actor,
		RequestHash: requestHash("adjustment", in.User, in.Amount.String(), string(in.Bucket), in.Reason)}
	refused := checkAdjust(p, in)
	if refused == nil {
		var bad *ValidationError
		if refused = a.checkNewWallet(ctx, p, in.User); refused != nil && !errors.As(refused, &bad) {
			return r, false, refused // the store's error, not a refusal
		}
	}
	if refused != nil {
		return replayOr(refused, func() (rewards.Adjustment, bool, error) {
			req.ReplayOnly = true
			return a.store.Adjust(ctx, req)
		})
	}
	r, replayed, err = a.store.Adjust(ctx, req)
	if errors.Is(err, rewards.ErrAmount) {
		// Each amount fits, but the wallet's balance would not (rewards.Wallet.Post).
		return r, false, invalid("amount", fmt.Sprintf("would take the user's balance or lifetime earnings (lifetime_earned) past %d integer digits, more than the ledger holds", rewards.MaxIntegerDigits))
	}
	return r, replayed, err
}

// checkNewWallet refuses an id the receivers refuse (*ValidationError on user) unless
// it addresses a wallet made before they did: it must not make a new one (an XLSX
// export could not tell it from another user's). Any other error is the store's.
func (a *App) checkNewWallet(ctx context.Context, p *Property, user string) error {
	msg := postbacks.CheckNewUserID(user)
	if msg == "" {
		return nil
	}
	// On the primary: the balance read may come from a replica (read_url), which refused
	// a wallet the primary has while it lagged, and answered 503 while it was down.
	exists, err := a.store.WalletExists(ctx, p.ID, user)
	if err != nil {
		return err
	}
	if !exists {
		return invalid("user", msg+" (an existing wallet of such an id can be adjusted; there is none)")
	}
	return nil
}

// checkAdjust is the *ValidationError listing every bad field of an adjustment, or nil.
func checkAdjust(p *Property, in AdjustInput) error {
	var bad ValidationError
	_ = bad.merge(checkIdempotencyKey(in.IdempotencyKey)) // a *ValidationError or nil, as checkScale's
	bad.check("user", checkUserID(in.User))
	if in.Amount.IsZero() {
		bad.check("amount", "must not be zero: positive credits, negative debits")
	} else {
		_ = bad.merge(checkScale("amount", in.Amount, p))
	}
	if strings.TrimSpace(in.Reason) == "" {
		bad.check("reason", "is required: why the balance is adjusted")
	} else {
		bad.check("reason", checkText(in.Reason, maxReason, true))
	}
	switch in.Bucket {
	case "", rewards.Available:
	case rewards.Pending:
		bad.check("bucket", "pending cannot be adjusted: finance adjusts what can be paid out, and the payout "+
			"report's identity (closing = opening + settled − redeemed + adjustments) is defined on available")
	default:
		bad.check("bucket", `must be "available" (or omitted)`)
	}
	return bad.orNil()
}

type adjustmentJSON struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Amount    string    `json:"amount"`
	Bucket    string    `json:"bucket"`
	Reason    string    `json:"reason"`
	Actor     string    `json:"actor"`
	CreatedAt time.Time `json:"created_at"`
}

type adjustmentAnswer struct {
	Adjustment adjustmentJSON `json:"adjustment"`
	Balance    balanceJSON    `json:"balance"`
}

// adjust: POST /v1/admin/properties/:property/users/:user/adjustments
func (a *App) adjust(c *gin.Context) {
	p, err := a.property(c.Param("property"))
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
	in := AdjustInput{Property: p.ID, User: c.Param("user"), IdempotencyKey: key, Actor: actor(c)}
	var amountErr, reasonErr, bucketErr error
	in.Amount, amountErr = body.amount("amount", true)
	in.Reason, reasonErr = body.text("reason")
	var bucket string
	bucket, bucketErr = body.text("bucket")
	in.Bucket = rewards.Bucket(bucket)
	// One 400 names every bad field, as a redemption's does.
	var bad ValidationError
	if _ = bad.merge(keyErr, amountErr, reasonErr, bucketErr); bad.orNil() != nil {
		_ = bad.merge(checkAdjust(p, in))
		if !bad.has("user") {
			if err := bad.merge(a.checkNewWallet(c.Request.Context(), p, in.User)); err != nil {
				a.fail(c, err)
				return
			}
		}
		a.fail(c, &bad)
		return
	}
	r, replayed, err := a.Adjust(c.Request.Context(), in)
	if err != nil {
		a.fail(c, err)
		return
	}
	if replayed {
		c.Header("Idempotent-Replay", "true")
	}
	c.JSON(http.StatusCreated, adjustmentAnswer{
		Adjustment: adjustmentJSON{ID: strconv.FormatInt(r.ID, 10), User: r.User, Amount: amount(r.Amount), Bucket: string(r.Bucket),
			Reason: r.Reason, Actor: r.Actor, CreatedAt: r.CreatedAt.UTC()},
		Balance: toBalanceJSON(p, r.Balance),
	})
}
