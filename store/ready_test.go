package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// A database that is busy, not gone, is ready: with every connection of the pool held by
// writers queued behind one long transaction (a hot wallet), Ready answers at once. It
// waited for a connection and, past /readyz's bound, said "database unreachable", taking
// every replica out of the load balancer. (On SQLite writers queued behind the write
// lock no longer hold connections: TestSQLiteWritersTakeTheirTurnInOrder.)
func TestReadyWhileEveryConnectionWaits(t *testing.T) {
	dialect := store.Postgres
	ctx := context.Background()
	db, err := store.Open(ctx, storetest.URL(t, dialect), store.Options{MaxOpenConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	fund(t, db, "hot", "100")
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("ready before: %v", err)
	}
	var wg sync.WaitGroup
	err = db.HoldWallet(ctx, "arcade", "hot", func() {
		for i := range 4 { // two wait on the lock, two more for a connection
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, _ = db.Adjust(ctx, rewards.AdjustRequest{Actor: "test", Property: "arcade", User: "hot", Amount: d("1"),
					Reason: "queued", IdempotencyKey: fmt.Sprint("queued-", i), RequestHash: "h"})
			}()
		}
		for deadline := time.Now().Add(10 * time.Second); db.PoolWaits() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) { // polls the condition: a writer waits for a connection
				t.Fatal("no writer waited for a connection in 10 s")
			}
		}
		bounded, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := db.Ready(bounded); err != nil {
			t.Errorf("ready while the writers queue: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// ClockOffset times only its own statement: the wait for a free connection of a busy
// pool counted as the round trip, and half of it read as this process's clock being
// behind Postgres's. Here the process's clock moves an hour on while the statement waits
// for the pool's one connection, and the offset measured is that hour.
func TestClockOffsetLeavesOutThePoolWait(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(time.Now())
	db, err := store.Open(ctx, storetest.URL(t, store.Postgres), store.Options{MaxOpenConns: 1, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	type result struct {
		offset time.Duration
		err    error
	}
	got := make(chan result, 1)
	err = db.HoldWriteLock(ctx, func() {
		go func() {
			o, err := db.ClockOffset(ctx)
			got <- result{o, err}
		}()
		for deadline := time.Now().Add(10 * time.Second); db.PoolWaits() == 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) { // polls the condition: ClockOffset waits for the connection
				t.Fatal("ClockOffset did not wait for the pool's connection in 10 s")
			}
		}
		clock.Advance(time.Hour)
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.offset < 59*time.Minute || r.offset > 61*time.Minute {
		t.Fatalf("offset %v, %v; want the hour the clock moved while the statement waited", r.offset, r.err)
	}
}
