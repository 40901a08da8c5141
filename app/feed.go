package app

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"tally/rewards"
)

// FeedReader lists wallets by when they last changed.
type FeedReader interface {
	// BalancesSince returns at most limit wallets of property written after cursor, oldest
	// change first, and the cursor to continue from; see store.DB.BalancesSince. A cursor
	// it did not issue is rewards.ErrBadCursor.
	BalancesSince(ctx context.Context, property, cursor string, limit int) ([]rewards.Balance, string, error)
}

// Feed page sizes.
const (
	defaultFeedLimit = 100
	maxFeedLimit     = 1000
)

// BalancesSince is the balance feed: the property's wallets whose balance changed after
// since ("" is the beginning, so a first pass lists every wallet), at most limit, and the
// cursor for the next call. A wallet that changes again comes back again after the
// cursor, so a publisher mirrors every balance by polling with the cursor it was given.
// A since Tally did not issue is a *ValidationError on "since".
func (a *App) BalancesSince(ctx context.Context, property, since string, limit int) ([]rewards.Balance, string, error) {
	p, err := a.property(property)
	if err != nil {
		return nil, "", err
	}
	if limit < 1 || limit > maxFeedLimit {
		return nil, "", invalid("limit", "must be an integer from 1 to "+strconv.Itoa(maxFeedLimit))
	}
	bs, next, err := a.store.BalancesSince(ctx, p.ID, since, limit)
	if errors.Is(err, rewards.ErrBadCursor) {
		return nil, "", invalid("since", "not a cursor returned by this API (use next_cursor of the previous page, or omit it to start)")
	}
	return bs, next, err
}

type feedPage struct {
	Data       []balanceJSON `json:"data"`
	NextCursor string        `json:"next_cursor"`
}

// balanceFeed: GET /v1/properties/:property/balances?since=&limit=
func (a *App) balanceFeed(c *gin.Context) {
	p := c.MustGet(ctxProperty).(*Property)
	limit, err := limitParam(c, defaultFeedLimit, maxFeedLimit)
	if err != nil {
		a.fail(c, err)
		return
	}
	bs, next, err := a.BalancesSince(c.Request.Context(), p.ID, c.Query("since"), limit)
	if err != nil {
		a.fail(c, err)
		return
	}
	page := feedPage{Data: make([]balanceJSON, len(bs)), NextCursor: next}
	for i, b := range bs {
		page.Data[i] = toBalanceJSON(p, b)
	}
	answerJSON(c, http.StatusOK, page.appendJSON)
}
