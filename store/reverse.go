package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

type reversalRow struct {
	ID             int64
	Property       string
	UserID         string
	RedemptionID   int64
	Amount         decimal.Decimal
	Reason         string
	Actor          string
	IdempotencyKey string
	RequestHash    string
	After          balanceAfter `gorm:"embedded"` // the *_after columns
	CreatedAt      time.Time
}

// Reverse returns a redemption's amount to its user's available balance, once: the
// reversal row, its ledger entry (kind reversal, ref "redemption:<id>"), the wallet and
// the audit entry commit together, through the same idempotent path as Redeem (the key
// is per property). A redemption that was reversed under another key is
// rewards.ErrAlreadyReversed; an unknown one rewards.ErrNotFound.
func (db *DB) Reverse(ctx context.Context, r rewards.ReverseRequest) (rewards.Reversal, bool, error) {
	switch {
	case r.RedemptionID <= 0:
		return rewards.Reversal{}, false, fmt.Errorf("store: reverse: redemption id %d: %w", r.RedemptionID, rewards.ErrInvalidRequest)
	case strings.TrimSpace(r.IdempotencyKey) == "":
		return rewards.Reversal{}, false, fmt.Errorf("store: reverse: idempotency key is required: %w", rewards.ErrInvalidRequest)
	case strings.TrimSpace(r.Reason) == "":
		return rewards.Reversal{}, false, fmt.Errorf("store: reverse: reason is required: %w", rewards.ErrInvalidRequest)
	case r.Actor == "":
		return rewards.Reversal{}, false, fmt.Errorf("store: reverse: actor is required for the audit log: %w", rewards.ErrInvalidRequest)
	}
	// A redemption's property, user and amount never change, so they are read before the
	// wallet they name is locked.
	red, err := db.redemption(ctx, "", r.RedemptionID)
	if err != nil {
		return rewards.Reversal{}, false, err
	}
	row, replayed, err := runWalletWrite(ctx, db, walletWrite[reversalRow]{
		property: red.Property, user: red.User, key: r.IdempotencyKey, replayOnly: r.ReplayOnly,
		find: func(tx *gorm.DB) (*reversalRow, error) { return findReversal(tx, red.Property, r.IdempotencyKey) },
		same: func(p *reversalRow) bool { return p.RedemptionID == r.RedemptionID && p.RequestHash == r.RequestHash },
		write: func(tx *gorm.DB, w *wallet, at time.Time) (reversalRow, bool, error) {
			// Under the wallet lock every reversal of this redemption has committed or
			// waits behind us: one found here was made under another key.
			var done []int64
			if err := query(tx, &done, `SELECT id FROM reversals WHERE redemption_id = ?`, red.ID); err != nil {
				return reversalRow{}, false, err
			}
			if len(done) > 0 {
				return reversalRow{}, false, fmt.Errorf("store: redemption %d reversed by reversal %d: %w", red.ID, done[0], rewards.ErrAlreadyReversed)
			}
			next, e, err := w.Wallet.Reverse(red.Amount)
			if err != nil {
				return reversalRow{}, false, fmt.Errorf("reverse redemption %d of %q: %w", red.ID, red.User, err)
			}
			row := reversalRow{Property: red.Property, UserID: red.User, RedemptionID: red.ID, Amount: red.Amount, Reason: r.Reason,
				Actor: r.Actor, IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash, After: afterOf(next), CreatedAt: at}
			q := tx.Raw(`INSERT INTO reversals (property, user_id, redemption_id, amount, reason, actor, idempotency_key, request_hash,
				available_after, pending_after, redeemed_after, lifetime_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (property, idempotency_key) DO NOTHING RETURNING id`,
				append(append([]any{row.Property, row.UserID, row.RedemptionID, row.Amount.String(), row.Reason, row.Actor, row.IdempotencyKey,
					row.RequestHash}, row.After.values()...), at)...).Scan(&row.ID)
			if q.Error != nil || q.RowsAffected == 0 || row.ID == 0 {
				return reversalRow{}, false, q.Error
			}
			ref := "redemption:" + strconv.FormatInt(red.ID, 10)
			if err := db.postOne(tx, w, e, posting{ref: ref, at: at}); err != nil {
				return reversalRow{}, false, err
			}
			if err := db.announce(tx, func(ob *outbox) error { return ob.redemptionReversed(row) }); err != nil {
				return reversalRow{}, false, err
			}
			if err := writeAudit(tx, rewards.AuditEntry{Actor: r.Actor, Action: rewards.AuditReversal, Property: red.Property,
				Target: ref, Reason: r.Reason, Detail: "returned " + red.Amount.String() + " to " + strconv.Quote(red.User),
				CreatedAt: at}); err != nil {
				return reversalRow{}, false, err
			}
			w.set(next, at)
			return row, true, nil
		},
	})
	if err != nil || !replayed && r.ReplayOnly {
		return rewards.Reversal{}, false, err
	}
	red.Reversal = &rewards.ReversalRef{ID: row.ID, CreatedAt: row.CreatedAt.UTC()}
	return rewards.Reversal{ID: row.ID, Redemption: red, Amount: row.Amount, Reason: row.Reason, Actor: row.Actor,
		CreatedAt: row.CreatedAt.UTC(), Balance: row.After.balance(row.Property, row.UserID, row.CreatedAt)}, replayed, nil
}

func findReversal(tx *gorm.DB, property, key string) (*reversalRow, error) {
	var rows []reversalRow
	err := query(tx, &rows, `SELECT id, property, user_id, redemption_id, amount, reason, actor, idempotency_key, request_hash,
		available_after, pending_after, redeemed_after, lifetime_after, created_at
		FROM reversals WHERE property = ? AND idempotency_key = ?`, property, key)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	return &rows[0], nil
}

// redemptionSelect reads redemptions with the reversal that undid each, if any.
const redemptionSelect = `SELECT r.id, r.property, r.user_id, r.amount, r.reference, r.available_after, r.pending_after,
	r.redeemed_after, r.lifetime_after, r.created_at, v.id, v.created_at
	FROM redemptions r LEFT JOIN reversals v ON v.redemption_id = r.id`

func scanRedemptions(rows *sql.Rows) ([]rewards.Redemption, error) {
	defer rows.Close()
	var out []rewards.Redemption
	for rows.Next() {
		var r redemptionRow
		var revID sql.NullInt64
		var revAt sql.NullTime
		if err := rows.Scan(&r.ID, &r.Property, &r.UserID, &r.Amount, &r.Reference, &r.After.AvailableAfter, &r.After.PendingAfter,
			&r.After.RedeemedAfter, &r.After.LifetimeAfter, &r.CreatedAt, &revID, &revAt); err != nil {
			return nil, err
		}
		red := r.toRedemption()
		if revID.Valid {
			red.Reversal = &rewards.ReversalRef{ID: revID.Int64, CreatedAt: revAt.Time.UTC()}
		}
		out = append(out, red)
	}
	return out, rows.Err()
}

// Redemption returns one redemption of property ("" for any property) as it is now: with
// its reversal, if it has been reversed. Unknown is rewards.ErrNotFound.
func (db *DB) Redemption(ctx context.Context, property string, id int64) (rewards.Redemption, error) {
	return db.redemption(ctx, property, id)
}

func (db *DB) redemption(ctx context.Context, property string, id int64) (rewards.Redemption, error) {
	q, args := redemptionSelect+` WHERE r.id = ?`, []any{id}
	if property != "" {
		q += ` AND r.property = ?`
		args = append(args, property)
	}
	rows, err := rawQuery(db.gorm.WithContext(ctx), q, args...)
	if err != nil {
		return rewards.Redemption{}, translate(err)
	}
	got, err := scanRedemptions(rows)
	if err != nil {
		return rewards.Redemption{}, translate(err)
	}
	if len(got) == 0 {
		return rewards.Redemption{}, fmt.Errorf("store: redemption %d: %w", id, rewards.ErrNotFound)
	}
	return got[0], nil
}

// Redemptions lists a user's redemptions newest first, each with its reversal if any.
func (db *DB) Redemptions(ctx context.Context, f rewards.RedemptionFilter) ([]rewards.Redemption, error) {
	q, args := redemptionSelect+` WHERE r.property = ? AND r.user_id = ?`, []any{f.Property, f.User}
	if f.Before > 0 {
		q += ` AND r.id < ?`
		args = append(args, f.Before)
	}
	q += ` ORDER BY r.id DESC LIMIT ?`
	args = append(args, max(f.Limit, 1))
	rows, err := rawQuery(db.gorm.WithContext(ctx), q, args...)
	if err != nil {
		return nil, translate(err)
	}
	out, err := scanRedemptions(rows)
	return out, translate(err)
}
