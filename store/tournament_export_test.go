package store

import (
	"context"

	"gorm.io/gorm"

	"tally/rewards"
)

// CloseTournamentWindowKilled is CloseTournamentWindow ending its transaction the way a
// killed process would, after every prize, record and mark is written: on Postgres the
// backend is terminated, on SQLite the transaction fails.
func (db *DB) CloseTournamentWindowKilled(ctx context.Context, property string, t rewards.Tournament, w rewards.Window) (rewards.WindowClose, error) {
	return db.closeWindow(ctx, property, t, w, func(tx *gorm.DB) error {
		if db.dialect == Postgres {
			return tx.Exec(`SELECT pg_terminate_backend(pg_backend_pid())`).Error
		}
		return errKilled
	})
}
