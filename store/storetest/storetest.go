// Package storetest opens real, freshly migrated databases for tests: a SQLite file in a
// temporary directory, and a new Postgres database that is dropped when the test ends.
// Postgres is required: when it cannot be reached the test fails loudly, never skips.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tally/store"
)

// AdminURL is the Postgres server tests create their databases on; TALLY_TEST_POSTGRES
// overrides it.
func AdminURL() string {
	if u := os.Getenv("TALLY_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Clock is a settable test clock.
type Clock struct{ t time.Time }

// NewClock starts a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return c.t }

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) { c.t = t }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

// Dialects lists the databases every store test runs on: a new slice on each call, so
// no test can change what the others run on.
func Dialects() []store.Dialect { return []store.Dialect{store.SQLite, store.Postgres} }

// URL creates an empty database of the given dialect and returns its URL; it is removed
// when the test ends.
func URL(t testing.TB, d store.Dialect) string {
	t.Helper()
	switch d {
	case store.SQLite:
		return "sqlite://" + filepath.Join(t.TempDir(), "tally.db")
	case store.Postgres:
		return newPostgres(t)
	}
	t.Fatalf("storetest: unknown dialect %q", d)
	return ""
}

// Open returns a migrated store of the given dialect with the given clock (nil: wall clock).
func Open(t testing.TB, d store.Dialect, now func() time.Time) *store.DB {
	t.Helper()
	return OpenURL(t, URL(t, d), now)
}

// OpenURL opens and migrates the database at u, closing it when the test ends.
func OpenURL(t testing.TB, u string, now func() time.Time) *store.DB {
	t.Helper()
	return OpenWith(t, u, store.Options{Now: now})
}

// OpenWith is OpenURL with the store's options given (a webhook outbox, say).
func OpenWith(t testing.TB, u string, opt store.Options) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, u, opt)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", u, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatalf("storetest: migrate: %v", err)
	}
	return db
}

// ForEach runs fn as a subtest on each dialect.
func ForEach(t *testing.T, fn func(t *testing.T, d store.Dialect)) {
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) { fn(t, d) })
	}
}

func newPostgres(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("storetest: POSTGRES IS NOT REACHABLE at %s: %v\n"+
			"The suite needs a real Postgres; start it (scripts/postgres.sh) or set TALLY_TEST_POSTGRES.", admin, err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "tally_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("storetest: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	u.Path = "/" + name
	return fmt.Sprint(u)
}
