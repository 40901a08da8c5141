package app_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

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
