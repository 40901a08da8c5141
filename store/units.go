package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
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
	Ledger     Units
	Since      time.Time // when the ledger's were recorded
}

// CheckUnits compares each property's configured currency and scale with those its
// ledger was written in, and returns the properties whose differ in a way that changes
// what the stored amounts mean: another currency, or a coarser scale (the digits beyond
// it could never be redeemed). record (`tally serve`, `tally migrate`) records the units
// of a property seen for the first time, and a finer scale, which every stored amount
// still fits; the other commands only compare.
func (db *DB) CheckUnits(ctx context.Context, configured []Units, record bool) ([]UnitsChange, error) {
	var changes []UnitsChange
	err := db.tx(ctx, func(tx *gorm.DB) error {
		changes = nil
		now := db.now()
		for _, u := range configured {
			var rows []struct {
				Currency   string
				Scale      int32
				RecordedAt time.Time
			}
			if err := query(tx, &rows, `SELECT currency, scale, recorded_at FROM property_units WHERE property = ?`, u.Property); err != nil {
				return err
			}
			switch {
			case len(rows) == 0:
				if record {
					if _, err := rawExec(tx, `INSERT INTO property_units (property, currency, scale, recorded_at) VALUES (?, ?, ?, ?)
						ON CONFLICT (property) DO NOTHING`, u.Property, u.Currency, u.Scale, now); err != nil {
						return err
					}
				}
			case rows[0].Currency != u.Currency || rows[0].Scale > u.Scale:
				changes = append(changes, UnitsChange{Configured: u, Since: rows[0].RecordedAt.UTC(),
					Ledger: Units{Property: u.Property, Currency: rows[0].Currency, Scale: rows[0].Scale}})
			case rows[0].Scale < u.Scale && record:
				if _, err := rawExec(tx, `UPDATE property_units SET scale = ?, recorded_at = ? WHERE property = ?`, u.Scale, now, u.Property); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: property units: %w", translate(err))
	}
	return changes, nil
}
