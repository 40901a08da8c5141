package store

import (
	"context"

	"tally/rewards"
)

// Balance reads one wallet without locking it.
func (db *DB) Balance(ctx context.Context, property, user string) (rewards.Balance, error) {
	var rows []wallet
	err := query(db.gorm.WithContext(ctx), &rows, `SELECT id, property, user_id, pending, available, carry, redeemed, lifetime_earned, updated_at
		FROM wallets WHERE property = ? AND user_id = ?`, property, user)
	if err != nil {
		return rewards.Balance{}, translate(err)
	}
	if len(rows) == 0 {
		return rewards.Balance{Property: property, User: user}, nil
	}
	return toBalance(rows[0]), nil
}

func toBalance(w wallet) rewards.Balance {
	return rewards.Balance{Property: w.Property, User: w.UserID, Available: w.Available, Pending: w.Pending,
		Redeemed: w.Redeemed, LifetimeEarned: w.LifetimeEarned, UpdatedAt: w.UpdatedAt.UTC()}
}

// Transactions lists a user's wallet legs newest first, at most limit of them, starting
// below the entry id before (0: from the newest). Entries of one user are appended under
// that user's wallet lock, so their ids grow in commit order and a cursor never skips or
// repeats one.
func (db *DB) Transactions(ctx context.Context, property, user string, limit int, before int64) ([]rewards.Txn, error) {
	q := `SELECT e.id, e.kind, j.rule, j.rule_version, e.amount, e.bucket, e.created_at, j.ref
		FROM entries e JOIN journal j ON j.id = e.journal_id
		WHERE e.property = ? AND e.user_id = ? AND e.account = ''`
	args := []any{property, user}
	if before > 0 {
		q += ` AND e.id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY e.id DESC LIMIT ?`
	args = append(args, limit)
	var out []rewards.Txn
	if err := query(db.gorm.WithContext(ctx), &out, q, args...); err != nil {
		return nil, translate(err)
	}
	for i := range out {
		out[i].CreatedAt = out[i].CreatedAt.UTC()
	}
	return out, nil
}
