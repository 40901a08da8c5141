//go:build !unix

package store

import "github.com/pressly/goose/v3/lock"

// sqliteMigrationLock is nil where there is no flock: processes migrating one SQLite
// file at once may race (the README says so).
func sqliteMigrationLock(string) lock.Locker { return nil }
