package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// The outbox: webhook deliveries are rows written in the transaction of the change they
// report (issue 13), so a rollback takes the announcement with it and a commit cannot
// lose it. Delivery happens later, from webhook_deliveries (webhook.go).
//
// Most properties subscribe to nothing, and the applier writes thousands of events per
// second: whether anything is written is decided by Options.Webhooks, a lookup in memory,
// before any payload is built.

// outbox buffers the deliveries of one transaction; flush writes them with multi-row
// INSERTs, like the ledger.
type outbox struct {
	subs func(property, eventType string) []string
	now  func() time.Time
	rows [][]any
}

func (db *DB) newOutbox() *outbox { return &outbox{subs: db.webhooks, now: db.now} }

// wants reports whether any endpoint of property subscribes to eventType.
func (o *outbox) wants(property, eventType string) bool {
	return o.subs != nil && len(o.subs(property, eventType)) > 0
}

// webhookBody is the Standard Webhooks payload: type, timestamp, data.
type webhookBody struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      any       `json:"data"`
}

// add queues eventType about user of property, at the time of the change, for every
// endpoint subscribed to it.
func (o *outbox) add(property, user, eventType string, at time.Time, data any) error {
	if o.subs == nil {
		return nil
	}
	urls := o.subs(property, eventType)
	if len(urls) == 0 {
		return nil
	}
	b, err := json.Marshal(webhookBody{Type: eventType, Timestamp: at.UTC(), Data: data})
	if err != nil {
		return fmt.Errorf("store: encode webhook %s: %w", eventType, err)
	}
	// Due now, or at the change's stamp if that is earlier. A wallet's stamp never goes
	// back (wallet.stamp), so after a replica whose clock ran ahead wrote the wallet, or
	// the clock was stepped back, the stamp lies ahead of now: due then, the message,
	// and the user's later ones behind it, waited for the clock to catch up.
	due := at
	if n := o.now(); n.Before(due) {
		due = n
	}
	for _, u := range urls {
		o.rows = append(o.rows, []any{property, user, u, eventType, string(b), due, at})
	}
	return nil
}

// flush writes what was queued.
//
// A message whose user already has a pending one at that endpoint waits behind it (order
// per user), so it is parked: due parkedBehind after that first one (or after now, if
// that one is due already), and made due at once by nextInLine when its turn comes. So
// while an endpoint is down, and while one user's backlog drains one message a pass
// after it, the checks for due work (DueEndpoints, the claim) read the few due rows, not
// every message waiting (see waitBehindHead). Several messages of one user written
// together wait behind the first of them the same way.
func (o *outbox) flush(tx *gorm.DB) error {
	rows := o.rows
	o.rows = nil
	if len(rows) == 0 {
		return nil
	}
	keys := make([][3]string, 0, len(rows))
	seen := make(map[[3]string]bool, len(rows))
	for _, r := range rows {
		k := [3]string{r[0].(string), r[2].(string), r[1].(string)} // property, endpoint, user
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	heads, err := headsDue(tx, keys)
	if err != nil {
		return err
	}
	now := o.now()
	parked := make(map[[3]string]time.Time, len(heads))
	for k, h := range heads {
		parked[k] = parkedAt(h, now)
	}
	for _, r := range rows {
		k := [3]string{r[0].(string), r[2].(string), r[1].(string)}
		p, behind := parked[k]
		if !behind { // the user's first pending message there: the rest of rows wait behind it
			parked[k] = parkedAt(r[5].(time.Time), now)
			continue
		}
		if p.After(r[5].(time.Time)) {
			r[5] = p
		}
	}
	return insertRows(tx, `INSERT INTO webhook_deliveries (property, user_id, endpoint, type, body, next_attempt_at, created_at) VALUES `,
		rows, "")
}

// headsDue returns, for each (property, endpoint, user) of keys that has a pending
// delivery, when the first of them is due: one statement, an index probe per key.
//
// On Postgres it takes a share lock on each first delivery, and counts one another
// transaction is writing (a recording of its attempt, a claim, a retry by hand) as no
// first delivery: the message is then written due at once. Held, a recording that ends
// that delivery waits for this transaction, then makes the message written behind it
// due (nextInLine sees it committed). Without the lock, a message written while the one
// before it was delivered, both committing at once, was parked with nothing to make it
// due (nextInLine did not see it) until its parked time. Only the first one is locked,
// never one behind it: a failure that disables the endpoint fails every pending delivery
// but those another transaction holds, and one behind a first one it failed, kept, was
// first in line and parked with nothing to make it due once the endpoint was enabled
// again (review helper 221). A first one that another transaction ended since this
// statement began is no first delivery either. It never waits for a lock.
func headsDue(tx *gorm.DB, keys [][3]string) (map[[3]string]time.Time, error) {
	var q string
	var args []any
	if tx.Dialector.Name() == string(Postgres) {
		p, e, u := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			p[i], e[i], u[i] = k[0], k[1], k[2]
		}
		q = `SELECT k.p, k.e, k.u, f.next_attempt_at FROM unnest(?::text[], ?::text[], ?::text[]) AS k (p, e, u)
			CROSS JOIN LATERAL (SELECT g.id FROM webhook_deliveries g WHERE g.status = 'pending'
				AND g.property = k.p AND g.endpoint = k.e AND g.user_id = k.u ORDER BY g.id LIMIT 1) h
			JOIN webhook_deliveries f ON f.id = h.id
			WHERE f.status = 'pending'
			FOR SHARE OF f SKIP LOCKED`
		args = []any{p, e, u}
	} else {
		// A scalar subquery's time comes back untyped from SQLite: the head is joined.
		b, err := json.Marshal(keys)
		if err != nil {
			return nil, err
		}
		q = `SELECT f.property, f.endpoint, f.user_id, f.next_attempt_at FROM webhook_deliveries f
			WHERE f.status = 'pending' AND f.id IN (SELECT (SELECT g.id FROM webhook_deliveries g WHERE g.status = 'pending'
				AND g.property = json_extract(k.value, '$[0]') AND g.endpoint = json_extract(k.value, '$[1]')
				AND g.user_id = json_extract(k.value, '$[2]') ORDER BY g.id LIMIT 1) FROM json_each(?) AS k)`
		args = []any{string(b)}
	}
	rows, err := rawQuery(tx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[[3]string]time.Time)
	for rows.Next() {
		var k [3]string
		var at time.Time
		if err := rows.Scan(&k[0], &k[1], &k[2], &at); err != nil {
			return nil, err
		}
		out[k] = at
	}
	return out, rows.Err()
}

// balanceJSON is a wallet's balance in a webhook payload: decimal strings, never floats.
type balanceJSON struct {
	Available      string `json:"available"`
	Pending        string `json:"pending"`
	Redeemed       string `json:"redeemed"`
	LifetimeEarned string `json:"lifetime_earned"`
}

func toBalanceJSON(w rewards.Wallet) balanceJSON {
	return balanceJSON{Available: w.Available.String(), Pending: w.Pending.String(), Redeemed: w.Redeemed.String(),
		LifetimeEarned: w.LifetimeEarned.String()}
}

// balanceUpdated: any change to a wallet, with what changed in each bucket.
type balanceUpdated struct {
	Property  string      `json:"property"`
	User      string      `json:"user"`
	Balance   balanceJSON `json:"balance"`
	Change    balanceJSON `json:"change"` // after minus before, per bucket
	UpdatedAt time.Time   `json:"updated_at"`
}

func (o *outbox) balanceUpdated(w *wallet) error {
	if !o.wants(w.Property, rewards.WebhookBalanceUpdated) {
		return nil
	}
	b := w.before
	if w.Available.Equal(b.Available) && w.Pending.Equal(b.Pending) && w.Redeemed.Equal(b.Redeemed) &&
		w.LifetimeEarned.Equal(b.LifetimeEarned) {
		return nil // only internal state changed (a settlement's carry): nothing a publisher sees
	}
	d := func(after, before decimal.Decimal) string { return after.Sub(before).String() }
	return o.add(w.Property, w.UserID, rewards.WebhookBalanceUpdated, w.UpdatedAt, balanceUpdated{
		Property: w.Property, User: w.UserID, Balance: toBalanceJSON(w.Wallet), UpdatedAt: w.UpdatedAt.UTC(),
		Change: balanceJSON{Available: d(w.Available, w.before.Available), Pending: d(w.Pending, w.before.Pending),
			Redeemed: d(w.Redeemed, w.before.Redeemed), LifetimeEarned: d(w.LifetimeEarned, w.before.LifetimeEarned)},
	})
}

// creditSettled: a settlement moved amount of w's matured credits to available.
func (o *outbox) creditSettled(w *wallet, settlementID int64, amount decimal.Decimal, at time.Time) error {
	if !o.wants(w.Property, rewards.WebhookCreditSettled) {
		return nil
	}
	return o.add(w.Property, w.UserID, rewards.WebhookCreditSettled, at, struct {
		Property     string      `json:"property"`
		User         string      `json:"user"`
		SettlementID string      `json:"settlement_id"`
		Amount       string      `json:"amount"`
		Balance      balanceJSON `json:"balance"`
		SettledAt    time.Time   `json:"settled_at"`
	}{w.Property, w.UserID, fmt.Sprint(settlementID), amount.String(), toBalanceJSON(w.Wallet), at.UTC()})
}

// redemptionCreated: r was committed (its *_after columns are the balance after it).
func (o *outbox) redemptionCreated(r redemptionRow) error {
	if !o.wants(r.Property, rewards.WebhookRedemptionCreated) {
		return nil
	}
	return o.add(r.Property, r.UserID, rewards.WebhookRedemptionCreated, r.CreatedAt, struct {
		Property     string      `json:"property"`
		User         string      `json:"user"`
		RedemptionID string      `json:"redemption_id"`
		Amount       string      `json:"amount"`
		Reference    string      `json:"reference"`
		Balance      balanceJSON `json:"balance"`
		CreatedAt    time.Time   `json:"created_at"`
	}{r.Property, r.UserID, fmt.Sprint(r.ID), r.Amount.String(), r.Reference, r.After.json(), r.CreatedAt.UTC()})
}

// redemptionReversed: r returned its redemption's amount to the user.
func (o *outbox) redemptionReversed(r reversalRow) error {
	if !o.wants(r.Property, rewards.WebhookRedemptionReversed) {
		return nil
	}
	return o.add(r.Property, r.UserID, rewards.WebhookRedemptionReversed, r.CreatedAt, struct {
		Property     string      `json:"property"`
		User         string      `json:"user"`
		ReversalID   string      `json:"reversal_id"`
		RedemptionID string      `json:"redemption_id"`
		Amount       string      `json:"amount"`
		Reason       string      `json:"reason"`
		Balance      balanceJSON `json:"balance"`
		CreatedAt    time.Time   `json:"created_at"`
	}{r.Property, r.UserID, fmt.Sprint(r.ID), fmt.Sprint(r.RedemptionID), r.Amount.String(), r.Reason, r.After.json(), r.CreatedAt.UTC()})
}

// quarantinedJSON: an authenticated event was kept instead of applied. Replayed is true
// when a replay left it quarantined (with the reason as it is now).
type quarantinedJSON struct {
	Property   string    `json:"property"`
	User       string    `json:"user"`
	EventID    string    `json:"event_id"`
	Source     string    `json:"source"`
	Reason     string    `json:"reason"`
	Replayed   bool      `json:"replayed"`
	ReceivedAt time.Time `json:"received_at"`
}

func (o *outbox) eventQuarantined(q quarantinedJSON, at time.Time) error {
	if !o.wants(q.Property, rewards.WebhookEventQuarantined) {
		return nil
	}
	q.ReceivedAt = q.ReceivedAt.UTC()
	return o.add(q.Property, q.User, rewards.WebhookEventQuarantined, at, q)
}

// announce writes what fn queues, in tx: for writes of one row, such as a redemption.
func (db *DB) announce(tx *gorm.DB, fn func(*outbox) error) error {
	ob := db.newOutbox()
	if err := fn(ob); err != nil {
		return err
	}
	return ob.flush(tx)
}
