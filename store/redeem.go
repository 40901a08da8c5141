package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Redemptions and adjustments are idempotent writes to one wallet, and they share one
// path (walletWrite): the row that records each carries its (property, idempotency key)
// under a unique constraint, and a request whose key is taken answers with that row.
// Only successes are recorded: a request refused for insufficient funds leaves nothing
// behind, so retrying it with the same key once funds have arrived succeeds.

// walletWrite is one idempotent change to one user's wallet. R is what it records (a
// redemption, an adjustment); the flow around it is the same for every kind.
type walletWrite[R any] struct {
	property, user, key string
	// find returns the write recorded under the key, if any.
	find func(tx *gorm.DB) (*R, error)
	// same reports whether a recorded write was made by this same request.
	same func(prev *R) bool
	// write changes the locked wallet through rewards, records the write and posts its
	// entry, stamped at; recorded=false means the key was taken meanwhile (by another
	// user's request, under another wallet lock), and nothing was written.
	write func(tx *gorm.DB, w *wallet, at time.Time) (r R, recorded bool, err error)
	// replayOnly: only look the key up. The write it holds, if this same request made
	// it, comes back replayed; anything else (no write, another request's) is the zero
	// R, not replayed, and no error. Nothing is written; the wallet is locked only to
	// wait for a write of the key in flight.
	replayOnly bool
}

// runWalletWrite runs ww in one transaction and reports replayed when the key had been
// used before by the same request, returning that first write as it was. The key with
// another request is ErrIdempotencyMismatch. Concurrent requests on one wallet queue on
// its lock, so two with one new key produce one write.
func runWalletWrite[R any](ctx context.Context, db *DB, ww walletWrite[R]) (R, bool, error) {
	var out R
	var replayed bool
	if ww.replayOnly {
		if !textStorable(ww.key) {
			return out, false, nil // no write can have it: not even looked up
		}
		err := db.tx(ctx, func(tx *gorm.DB) error {
			var zero R
			out, replayed = zero, false
			prev, err := ww.find(tx)
			if err == nil && prev == nil && db.dialect == Postgres && textStorable(ww.user) {
				// A write of this key may be in flight, holding the wallet's lock (its
				// row written, not committed): wait for it, as the write path does, and
				// look again. On SQLite the transaction's write turn waits for it. A new
				// user's wallet, which that write is creating, no lock finds: inserting
				// it waits for that write's outcome instead, and the insert is rolled
				// back (review helper 219: a refused retry of a new user's first
				// adjustment in flight was answered 400, then the adjustment committed).
				var n int64
				if n, err = rawExec(tx, `SELECT 1 FROM wallets WHERE property = ? AND user_id = ? FOR UPDATE`, ww.property, ww.user); err == nil && n == 0 {
					_, err = rawExec(tx, `INSERT INTO wallets (property, user_id, created_at, updated_at) VALUES (?, ?, ?, ?)
						ON CONFLICT (property, user_id) DO NOTHING`, ww.property, ww.user, db.now(), db.now())
					if tooLongToIndex(err) {
						// A user no wallet's key can hold (kilobytes long, refused by the
						// request's validation): no write of it is in flight, or can be.
						return errLookedUp
					}
				}
				if err == nil {
					prev, err = ww.find(tx)
				}
			}
			if err == nil && prev != nil && ww.same(prev) {
				out, replayed = *prev, true
			}
			if err == nil {
				err = errLookedUp // nothing of this transaction is kept
			}
			return err
		})
		if errors.Is(err, errLookedUp) {
			err = nil
		}
		return out, replayed, err
	}
	answer := func(prev *R, what string) error {
		if !ww.same(prev) {
			return fmt.Errorf("store: %s key %q was used for another request: %w", what, ww.key, rewards.ErrIdempotencyMismatch)
		}
		out, replayed = *prev, true
		return nil
	}
	err := db.tx(ctx, func(tx *gorm.DB) error {
		var zero R
		out, replayed = zero, false
		// A retry usually finds its answer here, before locking anything.
		if prev, err := ww.find(tx); err != nil || prev != nil {
			if err != nil {
				return err
			}
			return answer(prev, "idempotency")
		}
		wallets, err := lockWallets(tx, []walletKey{{ww.property, ww.user}}, db.now())
		if err != nil {
			return err
		}
		w := wallets[walletKey{ww.property, ww.user}]
		// A request with the same key for this user held the lock before us and has
		// committed by now: its row is visible to this statement.
		if prev, err := ww.find(tx); err != nil || prev != nil {
			if err != nil {
				return err
			}
			return answer(prev, "idempotency")
		}
		r, recorded, err := ww.write(tx, w, w.stamp(db.now()))
		if err != nil {
			return err
		}
		if !recorded {
			prev, err := ww.find(tx)
			if err == nil && prev == nil {
				err = fmt.Errorf("store: key %q conflicted but no row found", ww.key)
			}
			if err != nil {
				return err
			}
			return answer(prev, "idempotency")
		}
		out = r
		return db.saveWallets(tx, []*wallet{w})
	})
	if err != nil {
		var zero R
		return zero, false, err
	}
	return out, replayed, nil
}

// errLookedUp rolls back a replay-only lookup's transaction, which keeps nothing.
var errLookedUp = errors.New("store: looked up, rolled back")

// textStorable reports whether s can be a database text value (valid UTF-8, no NUL,
// which Postgres refuses with an error): a lookup by anything else could only fail.
func textStorable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// postOne writes one entry of w now.
func (db *DB) postOne(tx *gorm.DB, w *wallet, e rewards.Entry, p posting) error {
	l := db.newLedger(tx)
	l.add(w, e, p)
	return l.flush()
}

// balanceAfter is the wallet's balance right after a redemption, adjustment or
// reversal, stored in its row (the *_after columns) so that a retry of the request
// answers what the first one did.
type balanceAfter struct {
	AvailableAfter decimal.Decimal
	PendingAfter   decimal.Decimal
	RedeemedAfter  decimal.Decimal
	LifetimeAfter  decimal.Decimal
}

func afterOf(w rewards.Wallet) balanceAfter {
	return balanceAfter{AvailableAfter: w.Available, PendingAfter: w.Pending, RedeemedAfter: w.Redeemed, LifetimeAfter: w.LifetimeEarned}
}

// values are the four columns' values, in the order available_after, pending_after,
// redeemed_after, lifetime_after.
func (b balanceAfter) values() []any {
	return []any{b.AvailableAfter.String(), b.PendingAfter.String(), b.RedeemedAfter.String(), b.LifetimeAfter.String()}
}

// balance is the user's balance as it was at the write's time at.
func (b balanceAfter) balance(property, user string, at time.Time) rewards.Balance {
	return rewards.Balance{Property: property, User: user, Available: b.AvailableAfter, Pending: b.PendingAfter,
		Redeemed: b.RedeemedAfter, LifetimeEarned: b.LifetimeAfter, UpdatedAt: at.UTC()}
}

// json is the balance as webhooks carry it.
func (b balanceAfter) json() balanceJSON {
	return balanceJSON{Available: b.AvailableAfter.String(), Pending: b.PendingAfter.String(), Redeemed: b.RedeemedAfter.String(),
		LifetimeEarned: b.LifetimeAfter.String()}
}

type redemptionRow struct {
	ID             int64
	Property       string
	UserID         string
	Amount         decimal.Decimal
	Reference      string
	IdempotencyKey string
	RequestHash    string
	After          balanceAfter `gorm:"embedded"` // the *_after columns
	CreatedAt      time.Time
}

func (r redemptionRow) toRedemption() rewards.Redemption {
	return rewards.Redemption{ID: r.ID, Property: r.Property, User: r.UserID, Amount: r.Amount, Reference: r.Reference,
		CreatedAt: r.CreatedAt.UTC(), Balance: r.After.balance(r.Property, r.UserID, r.CreatedAt)}
}

// Redeem pays r.Amount out of the user's available balance: the redemption row, its
// ledger entry and the wallet update commit together (see runWalletWrite for the
// idempotency rules). Available below the amount is *rewards.InsufficientFundsError.
// With r.ReplayOnly it only returns, replayed, the redemption this same request made
// under the key before; without one it returns the zero Redemption, not replayed.
func (db *DB) Redeem(ctx context.Context, r rewards.RedeemRequest) (rewards.Redemption, bool, error) {
	if err := checkRedeem(r); err != nil {
		return rewards.Redemption{}, false, err
	}
	row, replayed, err := runWalletWrite(ctx, db, walletWrite[redemptionRow]{
		property: r.Property, user: r.User, key: r.IdempotencyKey, replayOnly: r.ReplayOnly,
		find: func(tx *gorm.DB) (*redemptionRow, error) { return findRedemption(tx, r.Property, r.IdempotencyKey) },
		same: func(p *redemptionRow) bool {
			return p.UserID == r.User && p.Amount.Equal(r.Amount) && p.Reference == r.Reference && p.RequestHash == r.RequestHash
		},
		write: func(tx *gorm.DB, w *wallet, at time.Time) (redemptionRow, bool, error) {
			next, e, err := w.Wallet.Redeem(r.Amount)
			if err != nil {
				return redemptionRow{}, false, fmt.Errorf("redeem %s from %q: %w", r.Amount, r.User, err)
			}
			row := redemptionRow{Property: r.Property, UserID: r.User, Amount: r.Amount, Reference: r.Reference,
				IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash, After: afterOf(next), CreatedAt: at}
			q := tx.Raw(`INSERT INTO redemptions (property, user_id, amount, reference, idempotency_key, request_hash,
				available_after, pending_after, redeemed_after, lifetime_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (property, idempotency_key) DO NOTHING RETURNING id`,
				append(append([]any{row.Property, row.UserID, row.Amount.String(), row.Reference, row.IdempotencyKey, row.RequestHash},
					row.After.values()...), at)...).Scan(&row.ID)
			if q.Error != nil || q.RowsAffected == 0 || row.ID == 0 {
				return redemptionRow{}, false, q.Error
			}
			if err := db.postOne(tx, w, e, posting{ref: fmt.Sprintf("redemption:%d", row.ID), at: at}); err != nil {
				return redemptionRow{}, false, err
			}
			if err := db.announce(tx, func(ob *outbox) error { return ob.redemptionCreated(row) }); err != nil {
				return redemptionRow{}, false, err
			}
			w.set(next, at)
			return row, true, nil
		},
	})
	if err != nil || !replayed && r.ReplayOnly {
		return rewards.Redemption{}, false, err
	}
	return row.toRedemption(), replayed, nil
}

func checkRedeem(r rewards.RedeemRequest) error {
	switch {
	case r.Property == "" || r.User == "":
		return fmt.Errorf("store: redeem: property and user are required: %w", rewards.ErrInvalidRequest)
	case strings.TrimSpace(r.IdempotencyKey) == "":
		return fmt.Errorf("store: redeem: idempotency key is required: %w", rewards.ErrInvalidRequest)
	case !r.Amount.IsPositive():
		return fmt.Errorf("store: redeem: amount %s is not positive: %w", r.Amount, rewards.ErrInvalidRequest)
	}
	if err := rewards.CheckAmount(r.Amount); err != nil {
		return fmt.Errorf("store: redeem: %w: %w", rewards.ErrInvalidRequest, err)
	}
	return nil
}

func findRedemption(tx *gorm.DB, property, key string) (*redemptionRow, error) {
	var rows []redemptionRow
	err := tx.Raw(`SELECT id, property, user_id, amount, reference, idempotency_key, request_hash,
		available_after, pending_after, redeemed_after, lifetime_after, created_at
		FROM redemptions WHERE property = ? AND idempotency_key = ?`, property, key).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}
