package store

import (
	"context"
	"database/sql"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"tally/rewards"
)

// WalletExists says whether the user has a wallet, read on the primary (never the
// read_url replica).
func (db *DB) WalletExists(ctx context.Context, property, user string) (bool, error) {
	var n []int
	err := query(db.gorm.WithContext(ctx), &n, `SELECT 1 FROM wallets WHERE property = ? AND user_id = ?`, property, user)
	return len(n) > 0, translate(err)
}

// Balance reads one wallet without locking it, with when its earliest unsettled credit
// matures (on the read pool on Postgres, a replica's with read_url).
func (db *DB) Balance(ctx context.Context, property, user string) (rewards.Balance, error) {
	if db.balances != nil {
		return db.balances.balance(ctx, property, user)
	}
	// SQLite: the wallet and its earliest lot in one statement, so from one snapshot. Read
	// in two, a settlement committing between them gave a pending balance from before it
	// with the maturity of a credit it had settled, or none.
	var ws []struct {
		ID       int64
		Property string
		UserID   string
		rewards.Wallet
		UpdatedAt time.Time
		MaturesAt *time.Time
	}
	if err := query(db.gorm.WithContext(ctx), &ws, `SELECT w.id, w.property, w.user_id, w.pending, w.available, w.carry, w.redeemed,
		w.lifetime_earned, w.updated_at, l.matures_at FROM wallets w LEFT JOIN lots l ON l.rowid = (`+earliestLotSQL+`)
		WHERE w.property = ? AND w.user_id = ?`, property, user); err != nil {
		return rewards.Balance{}, translate(err)
	}
	if len(ws) == 0 {
		return rewards.Balance{Property: property, User: user}, nil
	}
	w := ws[0]
	b := toBalance(wallet{ID: w.ID, Property: w.Property, UserID: w.UserID, Wallet: w.Wallet, UpdatedAt: w.UpdatedAt})
	if w.MaturesAt != nil {
		b.NextAvailableAt = w.MaturesAt.UTC()
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
//
// The page's legs come from entries_user and their journal rows from journal_user, the
// user's own rows in id order, between the smallest and the largest journal id of the
// page: a leg and its journal row have the same property and user (ledger.go writes both
// from one wallet). On Postgres both are index-only scans of a few pages (migration
// 00011), where a join on journal's primary key read a heap and an index page per row.
func (db *DB) Transactions(ctx context.Context, property, user string, limit int, before int64) ([]rewards.Txn, error) {
	q, args := transactionsSQL(property, user, limit, before)
	rows, err := db.txnRows(ctx, q, args)
	if err != nil {
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

// transactionsSQL is Transactions' statement. The amount is read as text: parseNumeric
// reads most amounts' text as one int64, where pgx reads a binary NUMERIC through a
// big.Int (a page of 100 cost tally ~15 % less CPU so).
func transactionsSQL(property, user string, limit int, before int64) (string, []any) {
	q := `WITH e AS MATERIALIZED (SELECT id, kind, amount, bucket, created_at, journal_id FROM entries
		WHERE property = ? AND user_id = ? AND account = ''`
	args := []any{property, user}
	if before > 0 {
		q += ` AND id < ?`
		args = append(args, before)
	}
	q += ` ORDER BY id DESC LIMIT ?)
		SELECT e.id, e.kind, j.rule, j.rule_version, CAST(e.amount AS TEXT) AS amount, e.bucket, e.created_at, j.ref, j.matures_at
		FROM e JOIN journal j ON j.id = e.journal_id AND j.property = ? AND j.user_id = ?
			AND j.id BETWEEN (SELECT min(journal_id) FROM e) AND (SELECT max(journal_id) FROM e)
		ORDER BY e.id DESC`
	return q, append(args, limit, property, user)
}

// txnRows runs the transactions query, on the read pool when there is one.
func (db *DB) txnRows(ctx context.Context, q string, args []any) ([]txnRow, error) {
	return readPage(ctx, db, q, args, func(rows pgx.Rows, r *txnRow) error {
		var amount decimalColumn // text (transactionsSQL), read by parseNumeric
		if err := rows.Scan(&r.ID, &r.Kind, &r.Rule, &r.RuleVersion, &amount, &r.Bucket, &r.CreatedAt, &r.Ref, &r.MaturesAt); err != nil {
			return err
		}
		r.Amount = amount.Decimal
		return nil
	})
}

// earliestLotSQL finds, on SQLite, the rowid of the earliest unsettled credit's lot of
// wallet w.id (what a balance's next_available_at is), off lots_wallet (wallet_id,
// matures_at). SQLite returns an aggregate or a subquery's value of a DATETIME column as
// text, so the lot is joined as a row, found by this rowid. Money is TEXT: a negative
// lot (a pending debit, matured from the start) begins with '-'.
const earliestLotSQL = `SELECT rowid FROM lots WHERE wallet_id = w.id AND settlement_id IS NULL AND substr(amount, 1, 1) <> '-'
	ORDER BY matures_at LIMIT 1`
