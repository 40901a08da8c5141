package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Redemptions and adjustments are idempotent writes: the row that records one carries
// its (property, idempotency key) under a unique constraint, and a request whose key is
// taken answers with that row. Only successes are recorded: a request refused for
// insufficient funds leaves nothing behind, so retrying it with the same key once funds
// have arrived succeeds.

// after is the balance an idempotent write saw right after itself; it is stored with
// the write so a replay answers exactly as the first request was answered.
type after struct {
	Available, Pending, Redeemed, Lifetime decimal.Decimal
	At                                     time.Time
}

func (a after) balance(property, user string) rewards.Balance {
	return rewards.Balance{Property: property, User: user, Available: a.Available, Pending: a.Pending,
		Redeemed: a.Redeemed, LifetimeEarned: a.Lifetime, UpdatedAt: a.At.UTC()}
}

func (a after) equal(b after) bool {
	return a.Available.Equal(b.Available) && a.Pending.Equal(b.Pending) && a.Redeemed.Equal(b.Redeemed) &&
		a.Lifetime.Equal(b.Lifetime) && a.At.Equal(b.At)
}

// afterOf is wallet w's balance as a recorded "after".
func afterOf(w *wallet, now time.Time) after {
	return after{Available: w.Available, Pending: w.Pending, Redeemed: w.Redeemed, Lifetime: w.LifetimeEarned, At: now}
}

type redemptionRow struct {
	ID             int64
	Property       string
	UserID         string
	Amount         decimal.Decimal
	Reference      string
	IdempotencyKey string
	RequestHash    string
	AvailableAfter decimal.Decimal
	PendingAfter   decimal.Decimal
	RedeemedAfter  decimal.Decimal
	LifetimeAfter  decimal.Decimal
	CreatedAt      time.Time
}

func (r redemptionRow) toRedemption() rewards.Redemption {
	a := after{Available: r.AvailableAfter, Pending: r.PendingAfter, Redeemed: r.RedeemedAfter, Lifetime: r.LifetimeAfter, At: r.CreatedAt}
	return rewards.Redemption{ID: r.ID, Property: r.Property, User: r.UserID, Amount: r.Amount, Reference: r.Reference,
		CreatedAt: r.CreatedAt.UTC(), Balance: a.balance(r.Property, r.UserID)}
}

// Redeem pays r.Amount out of the user's available balance: the redemption row, its
// ledger entry and the wallet update commit together. It reports replayed when the
// idempotency key was used before by the same request (same user, hash, amount and
// reference) and returns that first redemption, balance included, as it was. The key
// with another request is ErrIdempotencyMismatch; available below the amount is
// ErrInsufficientFunds. Concurrent requests on one wallet queue on its lock, so they
// never overdraw it; two with one new key produce one redemption.
func (db *DB) Redeem(ctx context.Context, r rewards.RedeemRequest) (rewards.Redemption, bool, error) {
	if err := checkRedeem(r); err != nil {
		return rewards.Redemption{}, false, err
	}
	var out rewards.Redemption
	var replayed bool
	err := db.tx(ctx, func(tx *gorm.DB) error {
		out, replayed = rewards.Redemption{}, false
		// A retry usually finds its answer here, before locking anything.
		prev, err := findRedemption(tx, r.Property, r.IdempotencyKey)
		if err != nil || prev != nil {
			out, replayed, err = replayRedemption(prev, r, err)
			return err
		}
		now := db.now()
		wallets, err := lockWallets(tx, []walletKey{{r.Property, r.User}}, now)
		if err != nil {
			return err
		}
		w := wallets[walletKey{r.Property, r.User}]
		// A request with the same key for this user held the lock before us and has
		// committed by now: its row is visible to this statement.
		if prev, err = findRedemption(tx, r.Property, r.IdempotencyKey); err != nil || prev != nil {
			out, replayed, err = replayRedemption(prev, r, err)
			return err
		}
		if w.Available.LessThan(r.Amount) {
			return fmt.Errorf("store: redeem %s from %q: %w", r.Amount, r.User, &rewards.InsufficientFundsError{Bucket: rewards.Available, Available: w.Available, Requested: r.Amount})
		}
		// The row goes in first, for its id, with the balance the entry below leaves.
		want := after{Available: w.Available.Sub(r.Amount), Pending: w.Pending, Redeemed: w.Redeemed.Add(r.Amount),
			Lifetime: w.LifetimeEarned, At: now}
		var id int64
		q := tx.Raw(`INSERT INTO redemptions (property, user_id, amount, reference, idempotency_key, request_hash,
			available_after, pending_after, redeemed_after, lifetime_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (property, idempotency_key) DO NOTHING RETURNING id`,
			r.Property, r.User, r.Amount.String(), r.Reference, r.IdempotencyKey, r.RequestHash,
			want.Available.String(), want.Pending.String(), want.Redeemed.String(), want.Lifetime.String(), now).Scan(&id)
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 || id == 0 {
			// The key was taken meanwhile under another wallet's lock: another user's.
			prev, err = findRedemption(tx, r.Property, r.IdempotencyKey)
			if err == nil && prev == nil {
				err = fmt.Errorf("store: redemption key %q conflicted but no row found", r.IdempotencyKey)
			}
			out, replayed, err = replayRedemption(prev, r, err)
			return err
		}
		posted, err := db.post(tx, w, rewards.RedemptionEntry(r.Amount), posting{ref: fmt.Sprintf("redemption:%d", id), now: now})
		if err != nil {
			return err
		}
		if !posted || !afterOf(w, now).equal(want) {
			return fmt.Errorf("store: redemption %d: wallet %d not debited as recorded", id, w.ID)
		}
		if err := db.saveWallets(tx, wallets, now); err != nil {
			return err
		}
		out = rewards.Redemption{ID: id, Property: r.Property, User: r.User, Amount: r.Amount, Reference: r.Reference,
			CreatedAt: now, Balance: want.balance(r.Property, r.User)}
		return nil
	})
	if err != nil {
		return rewards.Redemption{}, false, err
	}
	return out, replayed, nil
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

// replayRedemption answers a request whose key is taken by prev.
func replayRedemption(prev *redemptionRow, r rewards.RedeemRequest, err error) (rewards.Redemption, bool, error) {
	if err != nil {
		return rewards.Redemption{}, false, err
	}
	if prev.UserID != r.User || prev.RequestHash != r.RequestHash || !prev.Amount.Equal(r.Amount) || prev.Reference != r.Reference {
		return rewards.Redemption{}, false, fmt.Errorf("store: redemption key %q was used for redemption %d: %w",
			r.IdempotencyKey, prev.ID, rewards.ErrIdempotencyMismatch)
	}
	return prev.toRedemption(), true, nil
}
