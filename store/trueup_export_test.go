package store

import "gorm.io/gorm"

// KillTrueUpBeforeCommit makes the next true-ups end their transaction the way a killed
// process would: on Postgres the backend is terminated, on SQLite the transaction fails.
func (db *DB) KillTrueUpBeforeCommit(on bool) {
	if !on {
		db.beforeTrueUpCommit = nil
		return
	}
	db.beforeTrueUpCommit = func(tx *gorm.DB) error {
		if db.dialect == Postgres {
			return tx.Exec(`SELECT pg_terminate_backend(pg_backend_pid())`).Error
		}
		return errKilled
	}
}

type killed struct{}

func (killed) Error() string { return "killed before commit" }

var errKilled error = killed{}
