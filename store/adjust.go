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

type adjustmentRow struct {
	ID             int64
	Property       string
	UserID         string
	Amount         decimal.Decimal
	Bucket         string
	Reason         string
	Actor          string
	IdempotencyKey string
	RequestHash    string
	AvailableAfter decimal.Decimal
	PendingAfter   decimal.Decimal
	RedeemedAfter  decimal.Decimal
	LifetimeAfter  decimal.Decimal
	CreatedAt      time.Time
}

func (r adjustmentRow) toAdjustment() rewards.Adjustment {
	a := after{Available: r.AvailableAfter, Pending: r.PendingAfter, Redeemed: r.RedeemedAfter, Lifetime: r.LifetimeAfter, At: r.CreatedAt}
	return rewards.Adjustment{ID: r.ID, Property: r.Property, User: r.UserID, Amount: r.Amount, Bucket: rewards.Bucket(r.Bucket),
		Reason: r.Reason, Actor: r.Actor, CreatedAt: r.CreatedAt.UTC(), Balance: a.balance(r.Property, r.UserID)}
}

// Adjust records a manual credit (a.Amount > 0) or debit (< 0) of one bucket of the
// user's wallet, balanced by @adjustments, with the same idempotency rules as Redeem
// (the key is per property, shared by nothing else). A debit that would take the bucket
// below zero is ErrInsufficientFunds.
//
// Adjustments count in lifetime_earned, signed, so available + pending ==
// lifetime_earned − redeemed holds for every wallet. A pending credit is a lot maturing
// at once, so the next settlement moves it; a pending debit is a negative lot that has
// always matured, so settlement nets it against the credits it offsets.
func (db *DB) Adjust(ctx context.Context, a rewards.AdjustRequest) (rewards.Adjustment, bool, error) {
	if a.Bucket == "" {
		a.Bucket = rewards.Available
	}
	if err := checkAdjust(a); err != nil {
		return rewards.Adjustment{}, false, err
	}
	var out rewards.Adjustment
	var replayed bool
	err := db.tx(ctx, func(tx *gorm.DB) error {
		out, replayed = rewards.Adjustment{}, false
		prev, err := findAdjustment(tx, a.Property, a.IdempotencyKey)
		if err != nil || prev != nil {
			out, replayed, err = replayAdjustment(prev, a, err)
			return err
		}
		now := db.now()
		wallets, err := lockWallets(tx, []walletKey{{a.Property, a.User}}, now)
		if err != nil {
			return err
		}
		w := wallets[walletKey{a.Property, a.User}]
		if prev, err = findAdjustment(tx, a.Property, a.IdempotencyKey); err != nil || prev != nil {
			out, replayed, err = replayAdjustment(prev, a, err)
			return err
		}
		want := afterOf(w, now)
		want.Lifetime = want.Lifetime.Add(a.Amount)
		bucket := &want.Available
		if a.Bucket == rewards.Pending {
			bucket = &want.Pending
		}
		*bucket = bucket.Add(a.Amount)
		if bucket.IsNegative() {
			return fmt.Errorf("store: adjust %s of %q by %s: %w", a.Bucket, a.User, a.Amount, &rewards.InsufficientFundsError{Bucket: a.Bucket, Available: bucket.Sub(a.Amount), Requested: a.Amount.Neg()})
		}
		var id int64
		q := tx.Raw(`INSERT INTO adjustments (property, user_id, amount, bucket, reason, actor, idempotency_key, request_hash,
			available_after, pending_after, redeemed_after, lifetime_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (property, idempotency_key) DO NOTHING RETURNING id`,
			a.Property, a.User, a.Amount.String(), string(a.Bucket), a.Reason, a.Actor, a.IdempotencyKey, a.RequestHash,
			want.Available.String(), want.Pending.String(), want.Redeemed.String(), want.Lifetime.String(), now).Scan(&id)
		if q.Error != nil {
			return q.Error
		}
		if q.RowsAffected == 0 || id == 0 {
			prev, err = findAdjustment(tx, a.Property, a.IdempotencyKey)
			if err == nil && prev == nil {
				err = fmt.Errorf("store: adjustment key %q conflicted but no row found", a.IdempotencyKey)
			}
			out, replayed, err = replayAdjustment(prev, a, err)
			return err
		}
		e := rewards.AdjustmentEntry(a.Amount, a.Bucket)
		if a.Bucket == rewards.Pending && a.Amount.IsNegative() {
			e.MaturesAt = debitMatures
		}
		posted, err := db.post(tx, w, e, posting{ref: fmt.Sprintf("adjustment:%d", id), now: now})
		if err != nil {
			return err
		}
		if !posted || !afterOf(w, now).equal(want) {
			return fmt.Errorf("store: adjustment %d: wallet %d not changed as recorded", id, w.ID)
		}
		if err := db.saveWallets(tx, wallets, now); err != nil {
			return err
		}
		out = rewards.Adjustment{ID: id, Property: a.Property, User: a.User, Amount: a.Amount, Bucket: a.Bucket, Reason: a.Reason,
			Actor: a.Actor, CreatedAt: now, Balance: want.balance(a.Property, a.User)}
		return nil
	})
	if err != nil {
		return rewards.Adjustment{}, false, err
	}
	return out, replayed, nil
}

func checkAdjust(a rewards.AdjustRequest) error {
	switch {
	case a.Property == "" || a.User == "":
		return fmt.Errorf("store: adjust: property and user are required: %w", rewards.ErrInvalidRequest)
	case strings.TrimSpace(a.IdempotencyKey) == "":
		return fmt.Errorf("store: adjust: idempotency key is required: %w", rewards.ErrInvalidRequest)
	case strings.TrimSpace(a.Reason) == "":
		return fmt.Errorf("store: adjust: reason is required: %w", rewards.ErrInvalidRequest)
	case a.Amount.IsZero():
		return fmt.Errorf("store: adjust: amount is zero: %w", rewards.ErrInvalidRequest)
	case a.Bucket != rewards.Available && a.Bucket != rewards.Pending:
		return fmt.Errorf("store: adjust: unknown bucket %q: %w", a.Bucket, rewards.ErrInvalidRequest)
	}
	if err := rewards.CheckAmount(a.Amount); err != nil {
		return fmt.Errorf("store: adjust: %w: %w", rewards.ErrInvalidRequest, err)
	}
	return nil
}

func findAdjustment(tx *gorm.DB, property, key string) (*adjustmentRow, error) {
	var rows []adjustmentRow
	err := tx.Raw(`SELECT id, property, user_id, amount, bucket, reason, actor, idempotency_key, request_hash,
		available_after, pending_after, redeemed_after, lifetime_after, created_at
		FROM adjustments WHERE property = ? AND idempotency_key = ?`, property, key).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

func replayAdjustment(prev *adjustmentRow, a rewards.AdjustRequest, err error) (rewards.Adjustment, bool, error) {
	if err != nil {
		return rewards.Adjustment{}, false, err
	}
	if prev.UserID != a.User || prev.RequestHash != a.RequestHash || !prev.Amount.Equal(a.Amount) ||
		prev.Bucket != string(a.Bucket) || prev.Reason != a.Reason {
		return rewards.Adjustment{}, false, fmt.Errorf("store: adjustment key %q was used for adjustment %d: %w",
			a.IdempotencyKey, prev.ID, rewards.ErrIdempotencyMismatch)
	}
	return prev.toAdjustment(), true, nil
}
