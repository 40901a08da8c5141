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
	After          balanceAfter `gorm:"embedded"` // the *_after columns
	CreatedAt      time.Time
}

func (r adjustmentRow) toAdjustment() rewards.Adjustment {
	return rewards.Adjustment{ID: r.ID, Property: r.Property, User: r.UserID, Amount: r.Amount, Bucket: rewards.Bucket(r.Bucket),
		Reason: r.Reason, Actor: r.Actor, CreatedAt: r.CreatedAt.UTC(), Balance: r.After.balance(r.Property, r.UserID, r.CreatedAt)}
}

// Adjust records a manual credit (a.Amount > 0) or debit (< 0) of one bucket of the
// user's wallet, balanced by @adjustments, through the same idempotent path as Redeem
// (the key is per property, shared by nothing else). A debit that would take the bucket
// below zero is *rewards.InsufficientFundsError. rewards.Wallet.Adjust says how
// adjustments count in lifetime_earned and how a pending one settles. a.ReplayOnly is
// as Redeem's.
func (db *DB) Adjust(ctx context.Context, a rewards.AdjustRequest) (rewards.Adjustment, bool, error) {
	if a.Bucket == "" {
		a.Bucket = rewards.Available
	}
	if err := checkAdjust(a); err != nil {
		return rewards.Adjustment{}, false, err
	}
	row, replayed, err := runWalletWrite(ctx, db, walletWrite[adjustmentRow]{
		property: a.Property, user: a.User, key: a.IdempotencyKey, replayOnly: a.ReplayOnly,
		find: func(tx *gorm.DB) (*adjustmentRow, error) { return findAdjustment(tx, a.Property, a.IdempotencyKey) },
		same: func(p *adjustmentRow) bool {
			return p.UserID == a.User && p.RequestHash == a.RequestHash && p.Amount.Equal(a.Amount) &&
				p.Bucket == string(a.Bucket) && p.Reason == a.Reason
		},
		write: func(tx *gorm.DB, w *wallet, at time.Time) (adjustmentRow, bool, error) {
			next, e, err := w.Wallet.Adjust(a.Amount, a.Bucket)
			if err != nil {
				return adjustmentRow{}, false, fmt.Errorf("adjust %s of %q by %s: %w", a.Bucket, a.User, a.Amount, err)
			}
			row := adjustmentRow{Property: a.Property, UserID: a.User, Amount: a.Amount, Bucket: string(a.Bucket), Reason: a.Reason,
				Actor: a.Actor, IdempotencyKey: a.IdempotencyKey, RequestHash: a.RequestHash, After: afterOf(next), CreatedAt: at}
			q := tx.Raw(`INSERT INTO adjustments (property, user_id, amount, bucket, reason, actor, idempotency_key, request_hash,
				available_after, pending_after, redeemed_after, lifetime_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (property, idempotency_key) DO NOTHING RETURNING id`,
				append(append([]any{row.Property, row.UserID, row.Amount.String(), row.Bucket, row.Reason, row.Actor, row.IdempotencyKey, row.RequestHash},
					row.After.values()...), at)...).Scan(&row.ID)
			if q.Error != nil || q.RowsAffected == 0 || row.ID == 0 {
				return adjustmentRow{}, false, q.Error
			}
			if err := db.postOne(tx, w, e, posting{ref: fmt.Sprintf("adjustment:%d", row.ID), at: at}); err != nil {
				return adjustmentRow{}, false, err
			}
			if err := writeAudit(tx, rewards.AuditEntry{Actor: a.Actor, Action: rewards.AuditAdjustment, Property: a.Property,
				Target: "user:" + a.User, Reason: a.Reason, Detail: fmt.Sprintf("adjustment:%d of %s to %s", row.ID, a.Amount, a.Bucket),
				CreatedAt: at}); err != nil {
				return adjustmentRow{}, false, err
			}
			w.set(next, at)
			return row, true, nil
		},
	})
	if err != nil || !replayed && a.ReplayOnly {
		return rewards.Adjustment{}, false, err
	}
	return row.toAdjustment(), replayed, nil
}

func checkAdjust(a rewards.AdjustRequest) error {
	switch {
	case a.Property == "" || a.User == "":
		return fmt.Errorf("store: adjust: property and user are required: %w", rewards.ErrInvalidRequest)
	case strings.TrimSpace(a.IdempotencyKey) == "":
		return fmt.Errorf("store: adjust: idempotency key is required: %w", rewards.ErrInvalidRequest)
	case strings.TrimSpace(a.Reason) == "":
		return fmt.Errorf("store: adjust: reason is required: %w", rewards.ErrInvalidRequest)
	case a.Actor == "":
		return fmt.Errorf("store: adjust: actor is required for the audit log: %w", rewards.ErrInvalidRequest)
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
