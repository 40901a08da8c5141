package store

import (
	"context"
	"errors"
	"fmt"
	"net"

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

// translate maps driver errors to the store's sentinels. Domain sentinels pass through.
func translate(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, rewards.ErrNotFound), errors.Is(err, rewards.ErrInsufficientFunds),
		errors.Is(err, rewards.ErrIdempotencyMismatch), errors.Is(err, rewards.ErrUnavailable):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: %w", rewards.ErrNotFound, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", rewards.ErrUnavailable, err)
	}
	var netErr net.Error
	var pg *pgconn.PgError
	var connErr *pgconn.ConnectError
	switch {
	case errors.As(err, &netErr), errors.As(err, &connErr):
		return fmt.Errorf("%w: %w", rewards.ErrUnavailable, err)
	case errors.As(err, &pg) && (pg.Code[:2] == "08" || pg.Code[:2] == "53" || pg.Code[:2] == "57" || retryable(err)):
		// connection exceptions, insufficient resources, operator intervention, and
		// contention that outlived the retries: the caller should try again later.
		return fmt.Errorf("%w: %w", rewards.ErrUnavailable, err)
	}
	// Any other failure still means nothing was committed; it is reported as is so it
	// can be logged, and the HTTP layer answers 503 for it too.
	return err
}
