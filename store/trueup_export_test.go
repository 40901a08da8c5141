package store

import (
	"context"

	"gorm.io/gorm"
)

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

// BeforeTrueUpCommit runs fn at the end of the next true-ups' transactions, before they
// commit (nil: nothing).
func (db *DB) BeforeTrueUpCommit(fn func()) {
	if fn == nil {
		db.beforeTrueUpCommit = nil
		return
	}
	db.beforeTrueUpCommit = func(*gorm.DB) error { fn(); return nil }
}

// QueryRaw reads with a statement of the test's own.
func (db *DB) QueryRaw(ctx context.Context, dest any, q string, args ...any) error {
	return query(db.gorm.WithContext(ctx), dest, q, args...)
}
