package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
)

// Balance reads one wallet without locking it, with when its earliest unsettled credit
// matures.
func (db *DB) Balance(ctx context.Context, property, user string) (rewards.Balance, error) {
	g := db.gorm.WithContext(ctx)
	q := `SELECT id, property, user_id, pending, available, carry, redeemed, lifetime_earned, updated_at`
	if db.dialect == Postgres {
		// One round trip: the partial index lots_wallet holds only unsettled lots.
		q += `, (SELECT min(l.matures_at) FROM lots l WHERE l.wallet_id = w.id AND l.settlement_id IS NULL AND l.amount > 0)`
	}
	rows, err := rawQuery(g, q+` FROM wallets w WHERE property = ? AND user_id = ?`, property, user)
	if err != nil {
		return rewards.Balance{}, translate(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return rewards.Balance{Property: property, User: user}, translate(rows.Err())
	}
	var w wallet
	var next sql.NullTime
	dest := []any{&w.ID, &w.Property, &w.UserID, &w.Pending, &w.Available, &w.Carry, &w.Redeemed, &w.LifetimeEarned, &w.UpdatedAt}
	if db.dialect == Postgres {
		dest = append(dest, &next)
	}
	if err := rows.Scan(dest...); err != nil {
		return rewards.Balance{}, translate(err)
	}
	if err := rows.Close(); err != nil {
		return rewards.Balance{}, translate(err)
	}
	if db.dialect == SQLite {
		// SQLite returns an aggregate of a DATETIME column as text, so the earliest lot
		// is read as a row. A statement costs no round trip there. Money is TEXT: a
		// negative lot (a pending debit, matured from the start) begins with '-'.
		var lots []time.Time
		if err := query(g, &lots, `SELECT matures_at FROM lots WHERE wallet_id = ? AND settlement_id IS NULL
			AND substr(amount, 1, 1) <> '-' ORDER BY matures_at LIMIT 1`, w.ID); err != nil {
			return rewards.Balance{}, translate(err)
		}
		if len(lots) > 0 {
			next = sql.NullTime{Time: lots[0], Valid: true}
		}
	}
	b := toBalance(w)
	if next.Valid {
		b.NextAvailableAt = next.Time.UTC()
	}
	return b, nil
}

func toBalance(w wallet) rewards.Balance {
	return rewards.Balance{Property: w.Property, User: w.UserID, Available: w.Available, Pending: w.Pending,
		Redeemed: w.Redeemed, LifetimeEarned: w.LifetimeEarned, UpdatedAt: w.UpdatedAt.UTC()}
}

type txnRow struct {
	ID          int64
	Kind        string
	Rule        string
	RuleVersion string
	Amount      decimal.Decimal
	Bucket      string
	CreatedAt   time.Time
	Ref         string
	MaturesAt   sql.NullTime
}

// Transactions lists a user's wallet legs newest first, at most limit of them, starting
// below the entry id before (0: from the newest). Entries of one user are appended under
// that user's wallet lock, so their ids grow in commit order and a cursor never skips or
// repeats one. A pending credit carries when it matures (its lot's maturity: the entry's
// matures_at, or its creation for a credit held for no time).
func (db *DB) Transactions(ctx context.Context, property, user string, limit int, before int64) ([]rewards.Txn, error) {
	q := `SELECT e.id, e.kind, j.rule, j.rule_version, e.amount, e.bucket, e.created_at, j.ref, j.matures_at
		FROM entries e JOIN journal j ON j.id = e.journal_id
		WHERE e.property = ? AND e.user_id = ? AND e.account = ''`
	args := []any{property, user}
	if before > 0 {
		q += ` AND e.id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY e.id DESC LIMIT ?`
	args = append(args, limit)
	var rows []txnRow
	if err := query(db.gorm.WithContext(ctx), &rows, q, args...); err != nil {
		return nil, translate(err)
	}
	out := make([]rewards.Txn, len(rows))
	for i, r := range rows {
		t := rewards.Txn{ID: r.ID, Kind: r.Kind, Rule: r.Rule, RuleVersion: r.RuleVersion, Amount: r.Amount, Bucket: r.Bucket,
			CreatedAt: r.CreatedAt.UTC(), Ref: r.Ref}
		if rewards.Bucket(t.Bucket) == rewards.Pending && rewards.EntryKind(t.Kind).Credits() && t.Amount.IsPositive() {
			t.AvailableAt = t.CreatedAt
			if r.MaturesAt.Valid {
				t.AvailableAt = r.MaturesAt.Time.UTC()
			}
		}
		out[i] = t
	}
	return out, nil
}
