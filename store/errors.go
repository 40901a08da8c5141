package store

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"tally/rewards"
)

// The store's own sentinel; the domain ones (rewards.ErrNotFound, rewards.ErrUnavailable, ...)
// are what its methods return, wrapped with %w.
var (
	// ErrNotMigrated: Ready found migrations not yet applied.
	ErrNotMigrated = errors.New("migrations pending")
)

// retryable reports a Postgres deadlock or serialization failure.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// translate maps driver errors to the domain's sentinels; those pass through. Anything
// else means the operation did not commit (connection lost, database locked past the
// busy timeout, contention that outlived the retries, a closed pool): nothing was saved
// and the caller may retry, so it is ErrUnavailable with the cause kept for the logs.
func translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rewards.ErrNotFound), errors.Is(err, rewards.ErrInsufficientFunds),
		errors.Is(err, rewards.ErrIdempotencyMismatch), errors.Is(err, rewards.ErrUnavailable):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: %w", rewards.ErrNotFound, err)
	}
	return fmt.Errorf("%w: %w", rewards.ErrUnavailable, err)
}
