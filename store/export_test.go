package store

import (
	"context"
	"fmt"

	"github.com/shopspring/decimal"
	"gorm.io/gorm"

	"tally/rewards"
)

// Test seams for package store_test. Nothing here is reachable from production code.

// SettleOptions tune SettleWith.
type SettleOptions struct {
	Batch      int       // wallets per transaction
	NoLock     bool      // skip the lease, so concurrent runs really race
	AfterBatch func(int) // called after each committed batch
}

// SettleWith is Settle with test options.
func (db *DB) SettleWith(ctx context.Context, property string, scale int32, o SettleOptions) (rewards.SettlementRun, error) {
	return db.settle(ctx, property, scale, settleOptions{batch: o.Batch, lock: !o.NoLock, afterBatch: o.AfterBatch})
}

// ExecRaw runs a statement outside the store's methods: to corrupt data on purpose, or
// to leave behind what a killed process would.
func (db *DB) ExecRaw(ctx context.Context, q string, args ...any) error {
	return db.gorm.WithContext(ctx).Exec(q, args...).Error
}

// LeaseTTL is how long a settlement lease lasts.
const LeaseTTL = leaseTTL

// CreditSlowly credits amount to the user's available through the real write path
// (lockWallets, post, saveWallets), but after taking the wallet lock (and, on Postgres,
// a transaction id) it signals locked and waits for release before it commits: a
// writer that commits after writers that started later.
func (db *DB) CreditSlowly(ctx context.Context, property, user string, amount decimal.Decimal, locked chan<- struct{}, release <-chan struct{}) error {
	return db.tx(ctx, func(tx *gorm.DB) error {
		now := db.now()
		ws, err := lockWallets(tx, []walletKey{{property, user}}, now)
		if err != nil {
			return err
		}
		if db.dialect == Postgres {
			if err := tx.Exec(`SELECT pg_current_xact_id()`).Error; err != nil {
				return err
			}
		}
		close(locked)
		<-release
		w := ws[walletKey{property, user}]
		if _, err := db.post(tx, w, rewards.AdjustmentEntry(amount, rewards.Available), posting{ref: fmt.Sprintf("slow:%s", user), now: now}); err != nil {
			return err
		}
		return db.saveWallets(tx, ws, now)
	})
}

// FailAfterApply makes every following Ingest fail after its postings are written, just
// before commit, until called with nil.
func FailAfterApply(db *DB, err error) {
	if err == nil {
		db.afterApply = nil
		return
	}
	db.afterApply = func() error { return err }
}
