package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"tally/rewards"
)

// The store's own sentinel; the domain ones (rewards.ErrNotFound, rewards.ErrUnavailable, ...)
// are what its methods return, wrapped with %w.
var (
	// ErrNotMigrated: Ready found migrations not yet applied.
	ErrNotMigrated = errors.New("migrations pending")
	// ErrSchemaNewer is rewards.ErrSchemaNewer.
	ErrSchemaNewer = rewards.ErrSchemaNewer
	// ErrNoDatabase: Options.Existing and the SQLite file is not there.
	ErrNoDatabase = errors.New("no such database")
)

// retryable reports a Postgres deadlock or serialization failure.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40P01" || pg.Code == "40001")
}

// tooLongToIndex reports Postgres refusing a value too long for an index entry
// (program_limit_exceeded: a key over btree's 2,704 bytes).
func tooLongToIndex(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "54000"
}

// commitUnanswered reports whether a Postgres commit's error leaves its outcome unknown:
// COMMIT may have reached the server and no answer came back (a broken connection, a
// context ended while it was in flight), or the server ended the session (FATAL, PANIC)
// around it. Definite rollbacks are not: an ERROR the server sent, a commit database/sql
// never sent (its context ended first, the transaction already done), and pgx's "the
// server rolled back". pgconn's SafeToRetry is no proof the commit was not sent: when
// the answer to a sent COMMIT is lost, pgx marks the connection closed and reports "conn
// closed", which it counts safe to retry; so a commit that had committed was answered
// "nothing was saved", and a publisher retrying under a new key paid twice. (SQLite is
// in-process: a failed commit there rolled back.)
func commitUnanswered(err error) bool {
	var pg *pgconn.PgError
	switch {
	case errors.As(err, &pg):
		sev := pg.SeverityUnlocalized
		if sev == "" {
			sev = pg.Severity
		}
		return sev != "ERROR" // FATAL or PANIC: the session ended around the commit
	case err == context.Canceled, err == context.DeadlineExceeded, // bare: database/sql's own check, before sending
		errors.Is(err, sql.ErrTxDone), errors.Is(err, pgx.ErrTxCommitRollback):
		return false
	}
	return true
}

// rejected reports an error about the data written, not the database's state: Postgres
// classes 22 (data exception) and 23 (integrity constraint), a SQLite constraint
// (extended codes of 19), or gorm's translations of those.
func rejected(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return strings.HasPrefix(pg.Code, "22") || strings.HasPrefix(pg.Code, "23")
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		return lite.Code()&0xff == 19
	}
	return errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, gorm.ErrForeignKeyViolated) ||
		errors.Is(err, gorm.ErrCheckConstraintViolated)
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
		errors.Is(err, rewards.ErrIdempotencyMismatch), errors.Is(err, rewards.ErrUnavailable),
		errors.Is(err, rewards.ErrAlreadyReversed), errors.Is(err, rewards.ErrInvalidRequest),
		errors.Is(err, rewards.ErrTruedUp), errors.Is(err, rewards.ErrNotBooked), errors.Is(err, rewards.ErrRuleUnknown):
		return err
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%w: %w", rewards.ErrNotFound, err)
	case rejected(err):
		return fmt.Errorf("%w: %w", rewards.ErrRejected, err)
	}
	return fmt.Errorf("%w: %w", rewards.ErrUnavailable, err)
}
