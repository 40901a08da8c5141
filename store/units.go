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

// Units are a property's wallet currency and scale.
type Units struct {
	Property string
	Currency string
	Scale    int32
}

// UnitsChange is a property whose configured units differ from the ledger's.
type UnitsChange struct {
	Configured Units
	Ledger     Units     // the recorded units; zero when none were recorded
	Since      time.Time // when the ledger's were recorded
	// Finer counts, for units recorded now for the first time, the wallets whose
	// available or redeemed amounts have more decimal places than the configured scale
	// (a scale lowered before its units were recorded).
	Finer int
}

// CheckUnits compares each property's configured currency and scale with those its
// ledger was written in, and returns the properties whose differ in a way that changes
// what the stored amounts mean: another currency, or a coarser scale (the digits beyond
// it could never be redeemed). record (`tally serve`, `tally migrate`) records the units
// of a property seen for the first time, once its wallets' settled amounts fit the
// scale, and a finer scale, which every stored amount still fits; the other commands
// only compare, and refuse a finer scale until serve or migrate has recorded it. Two
// processes recording at once compare with what the first recorded.
func (db *DB) CheckUnits(ctx context.Context, configured []Units, record bool) ([]UnitsChange, error) {
	var changes []UnitsChange
	run := db.tx
	if !record {
		// Only compares: a read, which on SQLite does not queue for the write lock
		// (a long true-up holds it for minutes, and a read-only command timed out).
		run = db.read
	}
	err := run(ctx, func(tx *gorm.DB) error {
		changes = nil
		now := db.now()
		for _, u := range configured {
			c, err := db.checkUnits(tx, u, record, now)
			if err != nil {
				return err
			}
			if c != nil {
				changes = append(changes, *c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: property units: %w", translate(err))
	}
	return changes, nil
}

func (db *DB) checkUnits(tx *gorm.DB, u Units, record bool, now time.Time) (*UnitsChange, error) {
	for range 2 { // the second time after another process recorded or raised them meanwhile
		var rows []struct {
			Currency   string
			Scale      int32
			RecordedAt time.Time
		}
		if err := query(tx, &rows, `SELECT currency, scale, recorded_at FROM property_units WHERE property = ?`, u.Property); err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			if !record {
				return nil, nil
			}
			finer, err := finerAmounts(tx, u)
			if err != nil || finer > 0 {
				return &UnitsChange{Configured: u, Finer: finer}, err
			}
			n, err := rawExec(tx, `INSERT INTO property_units (property, currency, scale, recorded_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (property) DO NOTHING`, u.Property, u.Currency, u.Scale, now)
			if err != nil || n == 1 {
				return nil, err
			}
			continue // recorded by another process since the read: compare with it
		}
		r := rows[0]
		// Only serve and migrate take a finer scale (recording it): a command that only
		// compares, settling at a scale finer than the ledger's, moved fractions the
		// servers' config could never redeem, and that config was still accepted.
		if r.Currency != u.Currency || r.Scale > u.Scale || (r.Scale < u.Scale && !record) {
			return &UnitsChange{Configured: u, Since: r.RecordedAt.UTC(),
				Ledger: Units{Property: u.Property, Currency: r.Currency, Scale: r.Scale}}, nil
		}
		if r.Scale == u.Scale || !record {
			return nil, nil
		}
		n, err := rawExec(tx, `UPDATE property_units SET scale = ?, recorded_at = ? WHERE property = ? AND scale < ?`,
			u.Scale, now, u.Property, u.Scale)
		if err != nil || n == 1 {
			return nil, err
		}
		// Raised to u.Scale or beyond by another process meanwhile: compare again.
	}
	return nil, fmt.Errorf("property units of %s keep changing under this check", u.Property)
}

// finerAmounts counts the wallets of u's property whose available or redeemed amount has
// more decimal places than u.Scale (pending holds credits at full precision by design).
func finerAmounts(tx *gorm.DB, u Units) (int, error) {
	if tx.Dialector.Name() == string(Postgres) {
		var n []int
		err := query(tx, &n, `SELECT count(*) FROM wallets WHERE property = ?
			AND (available <> trunc(available, ?) OR redeemed <> trunc(redeemed, ?))`, u.Property, u.Scale, u.Scale)
		if err != nil || len(n) == 0 {
			return 0, err
		}
		return n[0], nil
	}
	// SQLite holds amounts as the text decimal.String wrote: a point only in a fraction.
	var rows []struct{ Available, Redeemed string }
	q := `SELECT available, redeemed FROM wallets WHERE property = ? AND (available LIKE '%.%' OR redeemed LIKE '%.%')`
	if err := query(tx, &rows, q, u.Property); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		for _, s := range []string{r.Available, r.Redeemed} {
			if d, err := decimal.NewFromString(strings.TrimSpace(s)); err == nil && !rewards.FitsScale(d, u.Scale) {
				n++
				break
			}
		}
	}
	return n, nil
}
