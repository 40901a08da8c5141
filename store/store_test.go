package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// On SQLite the process's write transactions take the one write lock in the order they
// asked, and wait for it without holding a pooled connection. In SQLite's busy handler
// the writer trying at the right moment won (the webhook recorder, back to back, kept
// postbacks waiting past their deadline; review helper 212) and every waiting writer held
// a connection, so balance reads waited for one.
func TestSQLiteWritersTakeTheirTurnInOrder(t *testing.T) {
	ctx := context.Background()
	db := storetest.OpenWith(t, storetest.URL(t, store.SQLite), store.Options{})
	const writers = 20 // more than the pool's connections
	adjust := func(user string) error {
		_, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "t", Property: "arcade", User: user, Amount: d("1"),
			Reason: "r", IdempotencyKey: "k-" + user, RequestHash: "h"})
		return err
	}
	if err := adjust("reader"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	held := make(chan struct{})
	release := make(chan struct{})
	wg.Go(func() {
		errs <- db.HoldWriteTurn(ctx, func() { close(held); <-release })
	})
	<-held
	// Writers queue one after another behind the held turn.
	for i := range writers {
		wg.Go(func() { errs <- adjust(fmt.Sprintf("w%02d", i)) })
		deadline := time.Now().Add(10 * time.Second)
		for store.WriteTurnWaiters(db) != int64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("%d writers waiting for their turn, want %d", store.WriteTurnWaiters(db), i+1)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// A balance read answers meanwhile: the waiting writers hold no connection.
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	b, err := db.Balance(rctx, "arcade", "reader")
	cancel()
	if err != nil || !b.Available.Equal(d("1")) {
		t.Errorf("a balance read while %d writers wait: %+v, %v", writers, b, err)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Committed in the order they asked: their journal rows are numbered so.
	var order []string
	for i := range writers {
		order = append(order, fmt.Sprintf("w%02d", i))
	}
	ids, err := store.QueryInts(ctx, db, `SELECT min(id) FROM journal WHERE user_id LIKE 'w%' GROUP BY user_id ORDER BY user_id`)
	if err != nil || len(ids) != writers {
		t.Fatalf("entries of %d writers, %v", len(ids), err)
	}
	for i := 1; i < writers; i++ {
		if ids[i] < ids[i-1] {
			t.Fatalf("%s committed before %s, which asked first: journal ids %v", order[i], order[i-1], ids)
		}
	}
}

// The store's transactions are READ COMMITTED, what it is written for, on a database
// whose default is SERIALIZABLE (an operator's choice, per server, database or role):
// else its reads after a lock saw their snapshot, and contended writes failed as
// serialization errors (review helper 229). The BEGIN names it: a connection's startup
// parameter, tried first, made PgBouncer refuse every connection (review helper 234).
func TestTransactionsAreReadCommittedWhateverTheDatabaseDefault(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.Postgres)
	first := storetest.OpenURL(t, u, nil)
	if err := first.ExecRaw(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_isolation = ''serializable''', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	db := storetest.OpenURL(t, u, nil) // new connections, which take the database's default
	if err := db.ExecRaw(ctx, `DO $$ BEGIN IF current_setting('default_transaction_isolation') <> 'serializable' THEN RAISE 'default %', current_setting('default_transaction_isolation'); END IF; END $$`); err != nil {
		t.Fatal(err) // the database's default did not take: the test would prove nothing
	}
	w, r, err := db.Isolations(ctx)
	if err != nil || w != "read committed" || r != "read committed" {
		t.Fatalf("isolation: writers %q, readers %q (%v), want read committed", w, r, err)
	}

	// A write on its own too: two replicas race for an expired lease, and the loser,
	// having waited for the winner's row, finds the lease taken, where under the
	// database's default it failed with a serialization error (review helper 237).
	if err := db.ExecRaw(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ('settle:arcade', 'gone', ?)`, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	other, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	winner, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer winner.Rollback(ctx)
	if _, err := winner.Exec(ctx, `UPDATE leases SET holder = 'winner', expires_at = now() + interval '1 hour' WHERE name = 'settle:arcade'`); err != nil {
		t.Fatal(err)
	}
	type result struct {
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		ok, err := db.AcquireLease(ctx, "settle:arcade", "loser")
		done <- result{ok, err}
	}()
	for waiting := false; !waiting; { // the loser waits for the winner's row
		if err := other.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE NOT l.granted AND l.locktype = 'transactionid' AND a.datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
	}
	if err := winner.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got.ok || got.err != nil {
		t.Fatalf("the loser of the lease: taken %v, err %v; want not taken, no error", got.ok, got.err)
	}
}
