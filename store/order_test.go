package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// A payout report for a period ending now, taken while a writer that stamped its entry
// before the cut has not committed yet, waits for it: the same period reported again
// later gives the same rows.
func TestReportToNowWaitsForWritersInFlight(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		u := storetest.URL(t, dia)
		writer, reader := storetest.OpenURL(t, u, nil), storetest.OpenURL(t, u, nil)
		if _, _, err := writer.Adjust(ctx, rewards.AdjustRequest{Actor: "test", Property: "arcade", User: "u1", Amount: d("5"), Reason: "opening",
			IdempotencyKey: "k0", RequestHash: "h0"}); err != nil {
			t.Fatal(err)
		}
		locked, release := make(chan struct{}), make(chan struct{})
		slow := make(chan error, 1)
		go func() { slow <- writer.CreditSlowly(ctx, "arcade", "u1", d("7"), locked, release) }()
		<-locked // its entry is stamped now, before the report's cut; it has not committed
		var once sync.Once
		releaseWriter := func() { once.Do(func() { close(release) }) }
		defer releaseWriter()
		if dia == store.Postgres {
			// The writer goes on only once the report has seen it in flight and waits: a
			// report that did not wait would run without its entry, and fail below.
			store.WhileReportWaits(reader, releaseWriter)
		} else {
			// On SQLite the wait is taking the write lock, which blocks until the writer
			// commits: it goes on when the report starts waiting.
			store.BeforeReportWaits(reader, releaseWriter)
		}

		q := rewards.ReportQuery{From: time.Now().Add(-time.Hour), To: time.Now()}
		first := repReport(t, reader, q)
		releaseWriter() // if the report did not wait for it
		if err := <-slow; err != nil {
			t.Fatal(err)
		}
		again := repReport(t, reader, q)
		if diff := repDiffRows(first, again); diff != "" {
			t.Fatalf("the same period reported twice differs:\n%s", diff)
		}
		if len(first) != 1 || !first[0].Adjustments.Equal(d("12")) {
			t.Fatalf("rows %v, want u1 with adjustments 12", first)
		}
	})
}

// Under concurrent writers of every kind, a user's transactions listed newest first
// never go up in time as the list is read down.
func TestTransactionTimesFollowTheirOrder(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		u := storetest.URL(t, dia)
		const writers, each = 6, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			db := storetest.OpenURL(t, u, nil) // the wall clock, a pool per writer
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					key := fmt.Sprintf("w%d-%d", w, i)
					var err error
					switch i % 3 {
					case 0:
						_, _, err = db.Adjust(ctx, rewards.AdjustRequest{Actor: "test", Property: "arcade", User: "u1", Amount: d("3"), Reason: "r",
							IdempotencyKey: key, RequestHash: key})
					case 1:
						_, err = ingest(db, ctx, []rewards.Inbound{in(session("u1", key, "0.000012", 60))})
					case 2:
						_, _, err = db.Redeem(ctx, rewards.RedeemRequest{Property: "arcade", User: "u1", Amount: d("1"), IdempotencyKey: key,
							RequestHash: key})
					}
					if err != nil && !strings.Contains(err.Error(), rewards.ErrInsufficientFunds.Error()) {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		db := storetest.OpenURL(t, u, nil)
		txns, err := db.Transactions(ctx, "arcade", "u1", 1000, 0)
		if err != nil || len(txns) < writers*each*2/3 {
			t.Fatalf("%d transactions, %v", len(txns), err)
		}
		for i := 1; i < len(txns); i++ {
			if txns[i].CreatedAt.After(txns[i-1].CreatedAt) {
				t.Fatalf("transaction %d (%s, %v) is listed below %d (%s, %v) but is later", txns[i].ID, txns[i].Kind,
					txns[i].CreatedAt, txns[i-1].ID, txns[i-1].Kind, txns[i-1].CreatedAt)
			}
		}
		if err := db.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}

// A redelivery is found through the inbox's unique index, not a scan: with a large
// inbox, the duplicate lookup's plan probes inbox_dedupe.
func TestRedeliveryLookupUsesTheUniqueIndex(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	const n = 20000
	batch := make([]rewards.Inbound, 0, 1000)
	for i := range n {
		batch = append(batch, in(session(fmt.Sprintf("u%d", i%50), fmt.Sprintf("s-%d", i), "0.000012", 60)))
		if len(batch) == cap(batch) {
			if _, err := db.Record(ctx, batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := db.ExecRaw(ctx, `ANALYZE inbox`); err != nil {
		t.Fatal(err)
	}
	plan, err := store.DuplicatePlan(ctx, db, []rewards.Inbound{in(session("u1", "s-17", "0.000012", 60)), in(session("u2", "s-9000", "0.000012", 60))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "inbox_dedupe") || strings.Contains(plan, "Seq Scan on inbox") {
		t.Fatalf("duplicate lookup plan does not probe the unique index:\n%s", plan)
	}
	// And a redelivery of an old event answers what was recorded.
	res, err := db.Record(ctx, []rewards.Inbound{in(session("u17", "s-17", "0.000012", 60)), in(session("u1", "s-new", "0.000012", 60))})
	if err != nil || !res[0].Duplicate || res[1].Duplicate {
		t.Fatalf("receipts %+v, %v", res, err)
	}
	if k, _, err := db.Event(ctx, res[0].EventID); err != nil || k.DedupeKey != "s-17" || k.User != "u17" {
		t.Fatalf("the duplicate names event %+v, %v", k, err)
	}
}

// A report for a period ending now waits for the events received before the cut that the
// applier has not applied yet: the session counts in it (by receipt) as it will in every
// later report of the period. Its credit is stamped when applied, after the cut, so it
// counts in the next period — a known split, see the README.
func TestReportToNowWaitsForTheBacklog(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dia, nil)
		if _, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-late", "0.000012", 60))}); err != nil {
			t.Fatal(err)
		}
		// The applier runs beside the report, as in a serving process.
		var once sync.Once
		var applier sync.WaitGroup
		store.BeforeReportWaits(db, func() {
			once.Do(func() {
				applier.Go(func() {
					if err := applyAll(ctx, db); err != nil {
						t.Error(err)
					}
				})
			})
		})
		defer applier.Wait()
		q := rewards.ReportQuery{From: time.Now().Add(-time.Hour), To: time.Now()}
		rows := repReport(t, db, q)
		if len(rows) != 1 || rows[0].Sessions != 1 {
			t.Fatalf("rows %v, want the session", rows)
		}
		if diff := repDiffRows(rows, repReport(t, db, q)); diff != "" {
			t.Fatalf("the same period reported twice differs:\n%s", diff)
		}
	})
}

// An event whose insert is in flight when a report "to now" looks at the inbox (its
// receipt time before the cut) commits while the report waits for writers: the report
// then waits for it to be applied too. Here no applier runs, so the report gives up
// (503) rather than answer without the session; before, it answered at once, without
// it, and the same period reported later differed.
func TestReportToNowWaitsForAnInsertInFlight(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	inserted, release := make(chan int64, 1), make(chan struct{})
	recorded := make(chan error, 1)
	go func() {
		recorded <- store.RecordSlowly(ctx, db, in(session("u1", "s-inflight", "0.000012", 60)), inserted, release)
	}()
	<-inserted // in the inbox, not committed: the report's first look does not see it
	var once sync.Once
	letGo := func() { once.Do(func() { close(release) }) }
	t.Cleanup(letGo)                  // never left holding its transaction
	store.WhileReportWaits(db, letGo) // it commits while the report waits
	q := rewards.ReportQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Second)}
	var rows []rewards.PayoutRow
	err := db.PayoutRows(ctx, q, func(r rewards.PayoutRow) error { rows = append(rows, r); return nil })
	if !errors.Is(err, rewards.ErrUnavailable) || !strings.Contains(err.Error(), "wait for the applier") {
		t.Fatalf("report with an unapplied event received before the cut: rows %v, err %v; want it to wait for the applier", rows, err)
	}
	if err := <-recorded; err != nil {
		t.Fatal(err)
	}
}

// A receiver's batch whose receipt time comes before a report's cut, but whose insert is
// sent only after the report has looked at the inbox and at the writers in flight, is
// waited for: its session counts in that report as in every later one of the period.
// Before, the receipt time was taken before the batch's transaction began, so on
// Postgres the report saw neither the row nor a writer, answered without the session,
// and the same period reported again once the event was applied differed.
func TestReportToNowWaitsForABatchStampedBeforeTheCut(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		u := storetest.URL(t, dia)
		recorder, reader := storetest.OpenURL(t, u, nil), storetest.OpenURL(t, u, nil)
		stamped, release := make(chan struct{}), make(chan struct{})
		store.AfterReceiptStamp(recorder, func() { close(stamped); <-release })
		done := make(chan error, 1)
		go func() { // a receiver's group commit, then the applier
			_, err := recorder.Record(ctx, []rewards.Inbound{in(session("u1", "s-stamped", "0.000012", 60))})
			if err == nil {
				err = applyAll(ctx, recorder)
			}
			done <- err
		}()
		<-stamped
		var once sync.Once
		letGo := func() { once.Do(func() { close(release) }) }
		t.Cleanup(letGo)
		if dia == store.Postgres {
			store.WhileReportWaits(reader, letGo) // it goes on once the report waits for it
		} else {
			store.BeforeReportWaits(reader, letGo) // the report's write lock then waits for it
		}
		q := rewards.ReportQuery{From: time.Now().Add(-time.Hour), To: time.Now()} // after the receipt
		first := repReport(t, reader, q)
		letGo() // if the report did not wait for it
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if diff := repDiffRows(first, repReport(t, reader, q)); diff != "" {
			t.Fatalf("the same period reported twice differs:\n%s", diff)
		}
		if len(first) != 1 || first[0].Sessions != 1 {
			t.Fatalf("rows %v, want u1's session", first)
		}
	})
}

// The applier's statements are prepared once per connection, and Postgres keeps a plan
// for each. A plan made while a table was nearly empty (a new database, before
// autovacuum first analyzes it) would scan the whole table, and went on doing so for
// every batch as the table grew. Batches applied while wallets and user_days hold a few
// rows, the tables then grown past 20,000 rows with autovacuum (which would make
// Postgres re-plan) off, then more batches: none scans user_days whole, which nothing
// else here reads (Postgres's own counters, which a connection writes out when it ends;
// its index lookups show they were written).
func TestApplyKeepsToIndexesAsTablesGrow(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, store.Postgres)
	migrated := storetest.OpenURL(t, url, nil)
	for _, q := range []string{
		`ALTER TABLE wallets SET (autovacuum_enabled = false)`,
		`ALTER TABLE user_days SET (autovacuum_enabled = false)`,
	} {
		if err := migrated.ExecRaw(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	before := userDaysScans(t, url, migrated) // the migrations' own
	db := storetest.OpenURL(t, url, storetest.NewClock(t0).Now)
	// Batches of 100 sessions: for that many keys a scan of a small table is the cheaper
	// plan, and after 5 such plans Postgres keeps a generic one for the statement.
	batches := func(prefix string, n int) {
		t.Helper()
		for b := range n {
			batch := make([]rewards.Inbound, 100)
			for i := range batch {
				batch[i] = in(session(fmt.Sprintf("%s%d", prefix, b*100+i+1), fmt.Sprintf("s-%s-%d-%d", prefix, b, i), "0.000012", 60))
			}
			if _, err := ingest(db, ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
	}
	batches("a", 10)
	for _, q := range []string{ // ids of their own, so that growing reads neither table
		`INSERT INTO wallets (id, property, user_id, created_at, updated_at)
			SELECT 1000000 + g, 'arcade', 'g' || g, now(), now() FROM generate_series(1, 20000) g`,
		`INSERT INTO user_days (wallet_id, day, revenue_credited) SELECT 1000000 + g, '2026-11-22', 1 FROM generate_series(1, 20000) g`,
	} {
		if err := db.ExecRaw(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	batches("g", 10) // users g1 … g1000, whose wallets and day totals were grown in
	after := userDaysScans(t, url, db)
	if scans, looked := after[0]-before[0], after[1]-before[1]; scans != 0 || looked < 20 {
		t.Errorf("applying scanned user_days whole %d times and through its key %d times; want 0 and each batch's lookup", scans, looked)
	}
}

// userDaysScans closes db and returns how often user_days was read whole and through
// an index, once db's connections have ended and so written out their counters.
func userDaysScans(t *testing.T, url string, db *store.DB) [2]int64 {
	t.Helper()
	ctx := context.Background()
	pids, err := store.QueryInts(ctx, db, `SELECT pid FROM pg_stat_activity WHERE datname = current_database()`)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	reader, err := store.Open(ctx, url, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		n, err := store.QueryInt(ctx, reader, `SELECT count(*) FROM pg_stat_activity WHERE pid IN ?`, pids)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("%d of the store's connections %v still open 30 s after it closed", n, pids)
		}
	}
	var out [2]int64
	for i, col := range []string{"seq_scan", "idx_scan"} {
		if out[i], err = store.QueryInt(ctx, reader, `SELECT coalesce(`+col+`, 0) FROM pg_stat_user_tables WHERE relname = 'user_days'`); err != nil {
			t.Fatal(err)
		}
	}
	return out
}
