package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Which commit errors leave the outcome unknown (the commit may have been applied) and
// which are definite rollbacks.
func TestCommitUnanswered(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		unknown bool
	}{
		{"an ERROR the server sent", &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "40001"}, false},
		{"a FATAL around the commit (a proxy's server connection died)", &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "08P01"}, true},
		{"a PANIC", &pgconn.PgError{Severity: "PANIC", SeverityUnlocalized: "PANIC", Code: "XX000"}, true},
		{"the context ended before database/sql sent COMMIT", context.Canceled, false},
		{"the deadline passed before database/sql sent COMMIT", context.DeadlineExceeded, false},
		{"the transaction was already rolled back", sql.ErrTxDone, false},
		{"the server rolled back", fmt.Errorf("commit: %w", pgx.ErrTxCommitRollback), false},
		{"the connection broke while COMMIT was in flight", fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), true},
		{"the context ended while COMMIT was in flight", fmt.Errorf("timeout: %w", context.DeadlineExceeded), true},
		{"something else", errors.New("connection reset by peer"), true},
	} {
		if got := commitUnanswered(tc.err); got != tc.unknown {
			t.Errorf("%s: unknown = %v, want %v", tc.name, got, tc.unknown)
		}
	}
}
