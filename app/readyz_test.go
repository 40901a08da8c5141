package app_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tally/app"
	"tally/store"
	"tally/store/storetest"
)

// /readyz is unauthenticated: it names the condition, never the database's user or name,
// and the cause goes to the log.
func TestReadyzRevealsNoDatabaseDetails(t *testing.T) {
	t.Run("database unreachable", func(t *testing.T) {
		dbURL := storetest.URL(t, store.Postgres)
		db := storetest.OpenURL(t, dbURL, nil)
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(u.Path, "/")
		ctx := context.Background()
		admin, err := pgx.Connect(ctx, storetest.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		// The database goes away under the running app; reconnecting fails with an error
		// that names the user and the database.
		if _, err := admin.Exec(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Fatal(err)
		}
		e, logs := loggedEnv(t, db)
		// The first ping may only find its pooled connection broken; the next ones
		// reconnect and fail with the named database. Every answer must hide it.
		for i := 0; i < 10 && !strings.Contains(logs.String(), name); i++ {
			a := e.do("GET", "/readyz", "")
			if a.Code != 503 || a.Body["detail"] != "database unreachable" {
				t.Fatalf("readyz: %d %s", a.Code, a.Raw)
			}
			for _, secret := range []string{name, "user=", u.User.Username()} {
				if strings.Contains(a.Raw, secret) {
					t.Fatalf("readyz body reveals %q: %s", secret, a.Raw)
				}
			}
		}
		if !strings.Contains(logs.String(), name) || !strings.Contains(logs.String(), "database unreachable") {
			t.Errorf("the cause is not logged:\n%s", logs)
		}
	})

	t.Run("migrations pending", func(t *testing.T) {
		db, err := store.Open(context.Background(), storetest.URL(t, store.SQLite), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		e, logs := loggedEnv(t, db)
		if a := e.do("GET", "/readyz", ""); a.Code != 503 || a.Body["detail"] != "migrations pending" {
			t.Fatalf("readyz: %d %s", a.Code, a.Raw)
		}
		if !strings.Contains(logs.String(), "not ready") {
			t.Errorf("not logged:\n%s", logs)
		}
	})
}

// /readyz answers 200 while publisher reads hold every connection of the read pool
// (waiting on a lock, as during a migration that rewrites a table): the probe pinged
// through that pool and answered 503 "database unreachable" on every replica at once.
func TestReadyzDoesNotQueueBehindPublisherReads(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.Postgres)
	db := storetest.OpenURL(t, u, nil)
	a := app.New(db, app.Options{Properties: []app.Property{arcade(), other()}, AdminToken: adminTok, IngestWorkers: 1})
	t.Cleanup(a.Close)
	e := &env{t: t, db: db, app: a, h: a.Handler()}
	admin, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE entries, wallets IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() { _ = tx.Rollback(ctx) }()
	for i := range 8 {
		wg.Go(func() {
			path := fmt.Sprintf("/v1/properties/arcade/users/u%d/transactions", i)
			if i%2 == 0 {
				path = fmt.Sprintf("/v1/properties/arcade/users/u%d/balance", i)
			}
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+apiKey)
			e.h.ServeHTTP(httptest.NewRecorder(), req)
		})
	}
	// Every connection of the read pool (5) waits on the lock. Watched from a connection
	// outside the locking transaction, whose view of pg_stat_activity is its first.
	watch, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reads wait on the lock, want the read pool's 5", waiting)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, with a deadline
	}
	if r := e.do("GET", "/readyz", ""); r.Code != 200 {
		t.Fatalf("readyz while publisher reads wait on a lock: %d %s", r.Code, r.Raw)
	}
}

// A replica whose database a newer tally migrated says so, not "migrations pending",
// which would send the operator to `tally migrate`, which this binary refuses.
func TestReadyzNamesASchemaNewerThanTheBinary(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, d store.Dialect) {
		ctx := context.Background()
		u := storetest.URL(t, d)
		storetest.OpenURL(t, u, nil) // migrated, then a newer tally's migration:
		execSQL(t, d, u, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (9999, true)`)
		older, err := store.Open(ctx, u, store.Options{}) // started without migrating
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = older.Close() })
		e, _ := loggedEnv(t, older)
		if a := e.do("GET", "/readyz", ""); a.Code != 503 || a.Body["detail"] != "database schema is newer than this binary" {
			t.Fatalf("readyz: %d %s", a.Code, a.Raw)
		}
	})
}
