//go:build unix

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/pressly/goose/v3/lock"
)

// sqliteMigrationLock is goose's lock for a SQLite file, for which goose has none: an OS
// lock (flock) on a file beside it, path + ".migrate-lock", held from before goose
// lists what is applied until its last migration is recorded. Processes migrating one
// file at once (a `tally migrate` beside a starting `tally serve`) raced without it: the
// loser applied a migration the winner had just committed and failed with "partial
// migration error … already exists", or, for the migrations whose statements succeed
// twice, applied and recorded it a second time. The kernel lets the lock go when its
// process dies; the file stays.
func sqliteMigrationLock(path string) lock.Locker { return &fileLock{path: path + ".migrate-lock"} }

type fileLock struct {
	path string
	f    *os.File
}

// lockPoll is how often a process waiting for another's migrations tries the lock.
const lockPoll = 100 * time.Millisecond

func (l *fileLock) Lock(ctx context.Context, _ *sql.DB) error {
	// Readable by all, and opened read-only when it cannot be opened to write: flock
	// needs neither, and a lock file another user made (a `sudo tally migrate`) stopped
	// the service's own `tally serve` from starting.
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		var rerr error
		if f, rerr = os.Open(l.path); rerr != nil {
			if !errors.Is(rerr, fs.ErrNotExist) {
				err = rerr // it exists: why it cannot be read
			}
			return fmt.Errorf("store: migration lock: %w (the lock file beside the database; any user may own it if it is readable)", err)
		}
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			l.f = f
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return fmt.Errorf("store: migration lock %s: %w", l.path, err)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return fmt.Errorf("store: waiting for another process's migrations (lock %s): %w", l.path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}

func (l *fileLock) Unlock(context.Context, *sql.DB) error {
	if l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	err = errors.Join(err, l.f.Close())
	l.f = nil
	return err
}
