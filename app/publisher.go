package app

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/shopspring/decimal"

	"tally/postbacks"
	"tally/rewards"
)

type balanceJSON struct {
	Property       string     `json:"property"`
	User           string     `json:"user"`
	Currency       string     `json:"currency"`
	Scale          int32      `json:"scale"`
	Available      string     `json:"available"`
	Pending        string     `json:"pending"`
	Redeemed       string     `json:"redeemed"`
	LifetimeEarned string     `json:"lifetime_earned"`
	UpdatedAt      *time.Time `json:"updated_at"`
	// NextAvailableAt is when the earliest pending credit matures; it moves to available
	// at the first settlement run from then. Null when nothing is pending.
	NextAvailableAt *time.Time `json:"next_available_at"`
}

func toBalanceJSON(p *Property, b rewards.Balance) balanceJSON {
	out := balanceJSON{Property: p.ID, User: b.User, Currency: p.Currency, Scale: p.Scale,
		Available: amount(b.Available), Pending: amount(b.Pending), Redeemed: amount(b.Redeemed),
		LifetimeEarned: amount(b.LifetimeEarned)}
	if !b.UpdatedAt.IsZero() {
		t := b.UpdatedAt.UTC()
		out.UpdatedAt = &t
	}
	if !b.NextAvailableAt.IsZero() {
		t := b.NextAvailableAt.UTC()
		out.NextAvailableAt = &t
	}
	return out
}

// amount renders money as a decimal string, shortest exact form ("12.5", "0").
func amount(d decimal.Decimal) string { return rewards.Format(d) }

type txnJSON struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Rule        string    `json:"rule"`
	RuleVersion string    `json:"rule_version,omitempty"`
	Amount      string    `json:"amount"`
	Bucket      string    `json:"bucket"`
	CreatedAt   time.Time `json:"created_at"`
	Ref         string    `json:"ref"`
	// AvailableAt is when a pending credit matures; null for every other entry.
	AvailableAt *time.Time `json:"available_at"`
}

// listPage is one page of a list read newest first: its items and the cursor of the next
// page, null on the last.
type listPage[J any] struct {
	Data       []J     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

// toListPage makes a page of up to limit items from items read with limit+1: one more
// than the page says there is a next page, which starts below the last id shown.
func toListPage[T, J any](items []T, limit int, id func(T) int64, conv func(T) J) listPage[J] {
	out := listPage[J]{Data: make([]J, 0, min(len(items), limit))}
	for i, it := range items {
		if i == limit {
			next := strconv.FormatInt(id(items[limit-1]), 10)
			out.NextCursor = &next
			break
		}
		out.Data = append(out.Data, conv(it))
	}
	return out
}

// positiveID parses an id as the API spells it (the OpenAPI ID pattern ^[1-9][0-9]*$,
// within int64): strconv.ParseInt also takes "+4" and "004", so one id had many
// spellings.
func positiveID(s string) (int64, bool) {
	if s == "" || s[0] < '1' || s[0] > '9' {
		return 0, false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// cursorParam reads the cursor of a list: an id from next_cursor; "" (0) from the newest.
func cursorParam(c *gin.Context) (int64, error) {
	return optionalID(c, "cursor", "not a cursor returned by this API")
}

// optionalID reads the query parameter name as a positive id, 0 when it is absent or
// empty; anything else is a 400 naming it with msg.
func optionalID(c *gin.Context, name, msg string) (int64, error) {
	s := c.Query(name)
	if s == "" {
		return 0, nil
	}
	n, ok := positiveID(s)
	if !ok {
		return 0, invalid(name, msg)
	}
	return n, nil
}

// getBalance: GET /v1/properties/:property/users/:user/balance
func (a *App) getBalance(c *gin.Context) {
	p := c.MustGet(ctxProperty).(*Property)
	user, err := userParam(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	b, err := a.store.Balance(c.Request.Context(), p.ID, user)
	if err != nil {
		a.fail(c, err)
		return
	}
	b.User = user
	out := toBalanceJSON(p, b)
	answerJSON(c, 200, out.appendJSON)
}

// listTransactions: GET /v1/properties/:property/users/:user/transactions?limit=&cursor=
func (a *App) listTransactions(c *gin.Context) {
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
	before, err := cursorParam(c)
	if err != nil {
		a.fail(c, err)
		return
	}
	txns, err := a.store.Transactions(c.Request.Context(), p.ID, user, limit+1, before)
	if err != nil {
		a.fail(c, err)
		return
	}
	page := toListPage(txns, limit, func(t rewards.Txn) int64 { return t.ID }, toTxnJSON)
	answerJSON(c, 200, func(b []byte) []byte { return page.appendJSON(b, (*txnJSON).appendJSON) })
}

func toTxnJSON(t rewards.Txn) txnJSON {
	tj := txnJSON{ID: strconv.FormatInt(t.ID, 10), Kind: t.Kind, Rule: t.Rule, RuleVersion: t.RuleVersion,
		Amount: amount(t.Amount), Bucket: t.Bucket, CreatedAt: t.CreatedAt.UTC(), Ref: t.Ref}
	if !t.AvailableAt.IsZero() {
		at := t.AvailableAt.UTC()
		tj.AvailableAt = &at
	}
	return tj
}

// userParam validates the user id in the path with the same rule as provider user ids.
func userParam(c *gin.Context) (string, error) {
	u := c.Param("user")
	if err := checkUserID(u); err != "" {
		return "", invalid("user", err)
	}
	return u, nil
}

// checkUserID applies the APIs' user id rule (postbacks.CheckUserID: 1–100 characters
// of valid UTF-8, no control or format characters), which admits every id a provider can
// credit (the receivers' rule is stricter), so every wallet is one the APIs address.
func checkUserID(u string) string { return postbacks.CheckUserID(u) }

func limitParam(c *gin.Context, def, max int) (int, error) {
	s := c.Query("limit")
	if s == "" {
		return def, nil
	}
	n, ok := positiveID(s)
	if !ok || n > int64(max) {
		return 0, invalid("limit", "must be an integer from 1 to "+strconv.Itoa(max))
	}
	return int(n), nil
}
