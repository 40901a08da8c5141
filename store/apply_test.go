package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// Concurrent events for one user, through separate transactions: no update is lost.
func TestConcurrentEventsForOneUserLoseNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		const n = 40
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				// 0.000012 USD → 0.672 each; alternate single events and pairs.
				batch := []rewards.Inbound{in(session("u1", fmt.Sprintf("s-%d", i), "0.000012", 60))}
				if i%2 == 0 {
					batch = append(batch, in(session("u2", fmt.Sprintf("s2-%d", i), "0.000012", 60)))
				}
				if _, err := db.Ingest(context.Background(), batch); err != nil {
					errs <- err
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		wantBalance(t, db, "u1", "26.88", "0") // 40 × 0.672
		wantBalance(t, db, "u2", "13.44", "0") // 20 × 0.672
		if err := db.CheckInvariants(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	})
}

// A failure late in a batch — after every posting is written, before commit — leaves
// nothing of it: no inbox rows, no entries, no wallet changes, no claims.
func TestFailureMidBatchLeavesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		batch := []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(score("u1", "p1", "600"))}
		store.FailAfterApply(db, errors.New("disk on fire"))
		if _, err := db.Ingest(context.Background(), batch); !errors.Is(err, rewards.ErrUnavailable) {
			t.Fatalf("Ingest = %v, want ErrUnavailable (nothing saved, retry)", err)
		}
		wantBalance(t, db, "u1", "0", "0")
		if txns, _ := db.Transactions(context.Background(), "arcade", "u1", 10, 0); len(txns) != 0 {
			t.Fatalf("entries left behind: %+v", txns)
		}
		store.FailAfterApply(db, nil)
		// The retry is new, not a duplicate, and pays the target: no claim was left either.
		res, err := db.Ingest(context.Background(), batch)
		if err != nil || res[0].Duplicate || res[1].Duplicate {
			t.Fatalf("retry: %+v %v", res, err)
		}
		wantBalance(t, db, "u1", "50.672", "0")
		if err := db.CheckInvariants(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	})
}

// A duplicate inside one batch is recorded once.
func TestDuplicateWithinOneBatch(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		ev := in(session("u1", "s-twice", "0.000012", 60))
		res, err := db.Ingest(context.Background(), []rewards.Inbound{ev, ev})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Duplicate || !res[1].Duplicate || res[0].EventID != res[1].EventID {
			t.Fatalf("receipts %+v", res)
		}
		wantBalance(t, db, "u1", "0.672", "0")
	})
}

// Quarantined events are re-applied exactly once, with the receipt day of the original.
func TestReplayAppliesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		q := in(session("u1", "s-q", "0.000012", 60))
		q.Rules = nil
		r := ingestOne(t, db, q)
		if r.Status != rewards.StatusQuarantined {
			t.Fatalf("%+v", r)
		}
		kept, err := db.Kept(context.Background(), rewards.StatusQuarantined, "arcade", 0, 10)
		if err != nil || len(kept) != 1 || kept[0].ID != r.EventID || kept[0].Event.Session == nil {
			t.Fatalf("kept = %+v, %v", kept, err)
		}
		clock.Advance(48 * 3600e9) // two days later
		fixed := testRules()
		replay := rewards.Inbound{Property: "arcade", Event: kept[0].Event, Rules: &fixed}
		var wg sync.WaitGroup
		receipts := make([]rewards.Receipt, 4)
		for i := range receipts {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				rc, err := db.Reapply(context.Background(), kept[0].ID, replay)
				if err != nil {
					t.Error(err)
				}
				receipts[i] = rc
			}(i)
		}
		wg.Wait()
		applied := 0
		for _, rc := range receipts {
			if !rc.Duplicate {
				applied++
			}
		}
		if applied != 1 {
			t.Fatalf("%d replays applied the event, want 1: %+v", applied, receipts)
		}
		wantBalance(t, db, "u1", "0.672", "0")
		txns, _ := db.Transactions(context.Background(), "arcade", "u1", 5, 0)
		if len(txns) != 1 {
			t.Fatalf("transactions %+v", txns)
		}
		if kept, _ := db.Kept(context.Background(), rewards.StatusQuarantined, "", 0, 10); len(kept) != 0 {
			t.Fatalf("still quarantined: %+v", kept)
		}
		if err := db.CheckInvariants(context.Background(), ""); err != nil {
			t.Fatal(err)
		}
	})
}

// The ledger is append-only in the database itself, not only by convention: entries,
// journal rows and claims refuse UPDATE, DELETE and (Postgres) TRUNCATE.
func TestLedgerTablesAreAppendOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		ingestOne(t, db, in(score("u1", "p1", "600")))
		stmts := []string{
			`UPDATE entries SET amount = '1000'`,
			`DELETE FROM entries`,
			`UPDATE journal SET rule = 'x'`,
			`DELETE FROM journal`,
			`DELETE FROM claims`,
			`UPDATE claims SET claim = 'x'`,
		}
		if dia == store.Postgres {
			stmts = append(stmts, `TRUNCATE entries CASCADE`, `TRUNCATE journal CASCADE`, `TRUNCATE claims`)
		}
		for _, q := range stmts {
			if err := db.ExecRaw(context.Background(), q); err == nil {
				t.Errorf("%s succeeded on an append-only table", q)
			}
		}
		wantBalance(t, db, "u1", "50", "0")
		// The claim survived, so the target still cannot pay twice.
		ingestOne(t, db, in(score("u1", "p2", "700")))
		wantBalance(t, db, "u1", "50", "0")
	})
}
