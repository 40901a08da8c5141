package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// floorAbove calls Apply (a floor round each time, with SetFloorRounds(db, 0, …)) until
// the claim floor is above id, ticking every 5 ms, for at most 30 s: the floor waits for
// every transaction of the server in flight, and other tests' databases share the server.
func floorAbove(t *testing.T, db *store.DB, id int64) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		if floor, _ := store.ClaimFloor(db); floor > id {
			return
		}
		if err := applyAll(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		select {
		case <-tick.C:
		case <-deadline:
			floor, _ := store.ClaimFloor(db)
			t.Fatalf("30 s and the claim floor is still %d, not above event %d", floor, id)
		}
	}
}

// recordAll records batch and returns the highest event id it got.
func recordAll(t *testing.T, db *store.DB, batch []rewards.Inbound) int64 {
	t.Helper()
	res, err := db.Record(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for _, r := range res {
		last = max(last, r.EventID)
	}
	return last
}

// An ingest transaction that took its id before others and commits after them holds the
// claim floor below its event: the event is claimed as any other, not found later by
// the check below the floor. Once it is in, the floor passes every applied event.
func TestClaimFloorWaitsForLateCommits(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	store.SetFloorRounds(db, 0, 0) // a round in every claim, each with the full check

	// The floor moves: past a first applied batch.
	floorAbove(t, db, recordAll(t, db, []rewards.Inbound{in(session("u0", "s-first-1", "0.000012", 60)), in(session("u0", "s-first-2", "0.000012", 60))}))

	inserted, release := make(chan int64), make(chan struct{})
	var once sync.Once
	releaseSlow := func() { once.Do(func() { close(release) }) }
	defer releaseSlow()
	slow := make(chan error, 1)
	go func() {
		slow <- store.RecordSlowly(ctx, db, in(session("late", "s-late", "0.000012", 60)), inserted, release)
	}()
	var lateID int64
	select {
	case lateID = <-inserted:
	case err := <-slow:
		t.Fatalf("the slow transaction: %v", err)
	}

	var last int64
	for b := range 3 {
		var batch []rewards.Inbound
		for i := range 10 {
			batch = append(batch, in(session(fmt.Sprintf("u%d", i), fmt.Sprintf("s-%d-%d", b, i), "0.000012", 60)))
		}
		last = max(last, recordAll(t, db, batch))
		if err := applyAll(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	if last <= lateID {
		t.Fatalf("later events got ids up to %d, not above the slow one's %d", last, lateID)
	}
	// Rounds go on while the slow transaction is open: each of them could prove a floor
	// above its id if it did not wait for it.
	for range 20 {
		if err := applyAll(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	if floor, _ := store.ClaimFloor(db); floor > lateID {
		t.Fatalf("the floor is %d, above event %d whose transaction has not committed", floor, lateID)
	}

	releaseSlow()
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if err := applyAll(ctx, db); err != nil {
		t.Fatal(err)
	}
	k, _, err := db.Event(ctx, lateID)
	if err != nil || k.Status != rewards.StatusApplied {
		t.Fatalf("the late event: %+v, %v; want it applied", k, err)
	}
	wantBalance(t, db, "late", "0.672", "0")
	if _, misses := store.ClaimFloor(db); misses != 0 {
		t.Fatalf("the full check found %d recorded events below the floor", misses)
	}
	floorAbove(t, db, last)
	if _, misses := store.ClaimFloor(db); misses != 0 {
		t.Fatalf("the full check found %d recorded events below the floor", misses)
	}
}

// Writers recording concurrently commit out of id order, some of them held open across
// the appliers' rounds; two appliers with a floor round and a full check in every claim
// apply every event exactly once, and no check finds an event below a floor.
func TestClaimFloorUnderConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.Postgres)
	recorder := storetest.OpenURL(t, u, nil)
	const writers, batches, slowWriters, slowEach = 4, 25, 2, 8

	var passes atomic.Int64     // applier passes so far
	stop := make(chan struct{}) // closed when the appliers have stopped
	var writing sync.WaitGroup
	recorded := make(chan []int64, writers*batches+slowWriters*slowEach)
	errs := make(chan error, writers+slowWriters+2)
	for w := range writers {
		writing.Add(1)
		go func() {
			defer writing.Done()
			for b := range batches {
				var batch []rewards.Inbound
				for i := range 1 + (w*7+b*3)%20 {
					batch = append(batch, in(session(fmt.Sprintf("u%d", (b+i)%9), fmt.Sprintf("w%d-%d-%d", w, b, i), "0.000012", 60)))
				}
				res, err := recorder.Record(ctx, batch)
				if err != nil {
					errs <- err
					return
				}
				ids := make([]int64, len(res))
				for i, r := range res {
					ids[i] = r.EventID
				}
				recorded <- ids
			}
		}()
	}
	for s := range slowWriters {
		writing.Add(1)
		go func() {
			defer writing.Done()
			for i := range slowEach {
				inserted, release := make(chan int64), make(chan struct{})
				done := make(chan error, 1)
				go func() {
					done <- store.RecordSlowly(ctx, recorder, in(session("slow", fmt.Sprintf("slow-%d-%d", s, i), "0.000012", 60)), inserted, release)
				}()
				var id int64
				select {
				case id = <-inserted:
				case err := <-done:
					errs <- fmt.Errorf("slow writer: %v", err)
					return
				}
				// Held open until the appliers have been through a few more passes.
				until := passes.Load() + 20
				tick := time.NewTicker(time.Millisecond)
			hold:
				for passes.Load() < until {
					select {
					case <-tick.C:
					case <-stop:
						break hold // they failed; the error is theirs
					}
				}
				tick.Stop()
				close(release)
				if err := <-done; err != nil {
					errs <- err
					return
				}
				recorded <- []int64{id}
			}
		}()
	}
	allWritten := make(chan struct{})
	go func() { writing.Wait(); close(allWritten) }()

	appliers := make([]*store.DB, 2)
	applied := make([][]rewards.Applied, len(appliers))
	var applying sync.WaitGroup
	for a := range appliers {
		db := storetest.OpenURL(t, u, nil)
		store.SetFloorRounds(db, 0, 0)
		appliers[a] = db
		applying.Add(1)
		go func() {
			defer applying.Done()
			finished := false
			for {
				select {
				case <-allWritten:
					finished = true
				default:
				}
				got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, Limit: 25}, decide)
				passes.Add(1)
				if err != nil {
					errs <- err
					return
				}
				applied[a] = append(applied[a], got...)
				if finished && len(got) == 0 {
					return // everything was written before this empty claim began
				}
			}
		}()
	}
	applying.Wait()
	close(stop)
	<-allWritten
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	close(recorded)
	want := map[int64]bool{}
	for ids := range recorded {
		for _, id := range ids {
			want[id] = true
		}
	}
	seen := map[int64]int{}
	for a := range appliers {
		for _, ap := range applied[a] {
			seen[ap.ID]++
		}
		if _, misses := store.ClaimFloor(appliers[a]); misses != 0 {
			t.Errorf("applier %d: the full check found %d recorded events below its floor", a, misses)
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %d applied %d times", id, seen[id])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("%d events applied, %d recorded", len(seen), len(want))
	}
	b, err := recorder.Backlog(ctx)
	if err != nil || b.Events != 0 {
		t.Errorf("backlog %+v, %v; want none", b, err)
	}
	if err := recorder.CheckInvariants(ctx, ""); err != nil {
		t.Fatal(err)
	}
}

// The applier's claim starts past the entries applied events leave in the recorded
// events' index until a vacuum: an empty claim over thousands of applied events reads a
// few buffers, where a claim from the start reads every one of those entries.
func TestClaimSkipsTheEntriesOfAppliedEvents(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	store.SetFloorRounds(db, 0, time.Hour)
	// As on a busy server between two vacuums of the inbox.
	if err := db.ExecRaw(ctx, `ALTER TABLE inbox SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	const events = 8000
	var last int64
	for b := 0; b < events; b += 1000 {
		var batch []rewards.Inbound
		for i := b; i < b+1000; i++ {
			batch = append(batch, in(session(fmt.Sprintf("u%d", i%50), fmt.Sprintf("s-%d", i), "0.000012", 60)))
		}
		last = max(last, recordAll(t, db, batch))
	}
	floorAbove(t, db, last)
	floor, _ := store.ClaimFloor(db)
	fromFloor, err := store.ClaimBuffers(ctx, db, floor, 1000)
	if err != nil {
		t.Fatal(err)
	}
	fromStart, err := store.ClaimBuffers(ctx, db, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("an empty claim reads %d buffers from the floor, %d from the start", fromFloor, fromStart)
	if fromFloor > 5 {
		t.Errorf("an empty claim from the floor read %d buffers", fromFloor)
	}
	if fromStart < 15 {
		t.Errorf("a claim from the start read %d buffers: the index holds fewer dead entries than this test means to skip", fromStart)
	}
}

// Apply claims from the floor; a recorded event below it (which the rounds never allow)
// is found by the full check, counted, and claimed.
func TestFullCheckFindsAnEventBelowTheFloor(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	store.SetFloorRounds(db, time.Hour, time.Hour) // no round for now
	res, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(session("u2", "s-2", "0.000012", 60))})
	if err != nil {
		t.Fatal(err)
	}
	store.SetClaimFloor(db, res[1].EventID)
	got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide)
	if err != nil || len(got) != 1 || got[0].ID != res[1].EventID {
		t.Fatalf("Apply from the floor at event %d = %+v, %v; want that event alone", res[1].EventID, got, err)
	}
	store.SetFloorRounds(db, 0, 0)
	got, err = db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide)
	if err != nil || len(got) != 1 || got[0].ID != res[0].EventID {
		t.Fatalf("Apply after a full check = %+v, %v; want event %d", got, err, res[0].EventID)
	}
	if floor, misses := store.ClaimFloor(db); misses != 1 || floor != res[0].EventID {
		t.Fatalf("floor %d and %d misses; want the floor back at %d and one miss", floor, misses, res[0].EventID)
	}
	wantBalance(t, db, "u1", "0.672", "0")
	wantBalance(t, db, "u2", "0.672", "0")
}

// Without its premises (the inbox's id default of migration 00013, a sequence that hands
// out one id at a time) the floor stays at 0 and claims start at the first recorded event;
// with them back, it moves again.
func TestClaimFloorNeedsItsPremises(t *testing.T) {
	for _, tc := range []struct{ name, off, on string }{
		{"plain nextval default",
			`ALTER TABLE inbox ALTER COLUMN id SET DEFAULT nextval('inbox_id_seq'::regclass)`,
			`ALTER TABLE inbox ALTER COLUMN id SET DEFAULT CASE WHEN pg_current_xact_id() IS NOT NULL THEN nextval('inbox_id_seq'::regclass) END`},
		{"cached sequence", `ALTER SEQUENCE inbox_id_seq CACHE 20`, `ALTER SEQUENCE inbox_id_seq CACHE 1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.Open(t, store.Postgres, nil)
			if err := db.ExecRaw(ctx, tc.off); err != nil {
				t.Fatal(err)
			}
			store.SetFloorRounds(db, 0, 0)
			var last int64
			record := func(prefix string) {
				var batch []rewards.Inbound
				for i := range 5 {
					batch = append(batch, in(session("u1", fmt.Sprintf("%s-%d", prefix, i), "0.000012", 60)))
				}
				last = max(last, recordAll(t, db, batch))
			}
			record("off")
			for range 20 {
				if err := applyAll(ctx, db); err != nil {
					t.Fatal(err)
				}
			}
			if floor, _ := store.ClaimFloor(db); floor != 0 {
				t.Fatalf("floor %d without its premise", floor)
			}
			wantBalance(t, db, "u1", "3.36", "0") // 5 × 0.672: every event applied

			if err := db.ExecRaw(ctx, tc.on); err != nil {
				t.Fatal(err)
			}
			record("on")
			floorAbove(t, db, last) // once the premise holds
			wantBalance(t, db, "u1", "6.72", "0")
		})
	}
}

// A sequence that went back (another server behind the same URL: a failover, a restore)
// sends the floor back to 0: nothing proven before holds.
func TestClaimFloorStartsOverWhenIDsGoBack(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	store.SetFloorRounds(db, 0, time.Hour)
	floorAbove(t, db, recordAll(t, db, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(session("u1", "s-2", "0.000012", 60))}))
	if err := db.ExecRaw(ctx, `SELECT setval('inbox_id_seq', 1, false)`); err != nil {
		t.Fatal(err)
	}
	if err := applyAll(ctx, db); err != nil {
		t.Fatal(err)
	}
	if floor, _ := store.ClaimFloor(db); floor != 0 {
		t.Fatalf("floor %d after the sequence went back", floor)
	}
}

// A floor proven on another server (the one behind the URL before a failover or a
// restore, whose applied events this one may still hold as recorded) is not used: the
// next round starts the floor over, and the events below it are claimed by the next
// Apply, not found a minute later by the full check.
func TestClaimFloorStartsOverOnAnotherServer(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	store.SetFloorRounds(db, 0, time.Hour)    // a round on every Apply, no full check
	if err := applyAll(ctx, db); err != nil { // the first round learns this server
		t.Fatal(err)
	}
	var started time.Time
	if err := db.QueryRaw(ctx, &started, `SELECT pg_postmaster_start_time()`); err != nil {
		t.Fatal(err)
	}
	if got := store.FloorServer(db); !got.Equal(started.Truncate(time.Microsecond)) {
		t.Fatalf("the round read the server's start as %s; it started at %s", got, started)
	}
	res, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(session("u2", "s-2", "0.000012", 60))})
	if err != nil {
		t.Fatal(err)
	}
	store.SetClaimFloor(db, res[1].EventID)
	store.SetFloorServer(db, started.Add(-time.Hour)) // proven on the server before
	got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide)
	if err != nil || len(got) != 2 {
		t.Fatalf("Apply on another server = %+v, %v; want both events", got, err)
	}
	if floor, misses := store.ClaimFloor(db); floor != 0 || misses != 0 {
		t.Fatalf("floor %d and %d misses; want the floor started over and no miss", floor, misses)
	}
	wantBalance(t, db, "u1", "0.672", "0")
	wantBalance(t, db, "u2", "0.672", "0")
}

// The floor's warning that the server started anew goes to the logger the store was
// opened with (serve's JSON log), not to slog's default text logger on stderr (review
// helper 220: a plain-text line among serve's JSON lines at every Postgres restart).
func TestClaimFloorLogsToTheStoresLogger(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	db := storetest.OpenWith(t, storetest.URL(t, store.Postgres), store.Options{Log: slog.New(slog.NewJSONHandler(&buf, nil))})
	store.SetFloorRounds(db, 0, time.Hour)
	if err := applyAll(ctx, db); err != nil { // the first round learns this server
		t.Fatal(err)
	}
	store.SetFloorServer(db, store.FloorServer(db).Add(-time.Hour)) // proven on the server before
	if err := applyAll(ctx, db); err != nil {
		t.Fatal(err)
	}
	var line struct{ Level, Msg string }
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &line); err != nil || line.Level != "WARN" ||
		!strings.Contains(line.Msg, "the database server started anew") {
		t.Fatalf("the store's logger got %q (%v), want one JSON warning that the server started anew", buf.String(), err)
	}
}

// The premise checked on the server before is checked again on the new one: with the
// sequence's cache raised there, the round after the change stops before it takes a
// transaction id, as a round without the premise does.
func TestClaimFloorChecksItsPremisesOnAnotherServer(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	store.SetFloorRounds(db, 0, time.Hour)    // a round on every call, no minute's check
	if err := applyAll(ctx, db); err != nil { // premises checked, server learnt
		t.Fatal(err)
	}
	if err := db.ExecRaw(ctx, `ALTER SEQUENCE inbox_id_seq CACHE 20`); err != nil {
		t.Fatal(err)
	}
	recordAll(t, db, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60))}) // ids to prove
	store.SetFloorServer(db, store.FloorServer(db).Add(-time.Hour))               // proven on the server before
	if _, err := store.FloorRoundTakesID(ctx, db); err != nil {                   // sees the change
		t.Fatal(err)
	}
	if took, err := store.FloorRoundTakesID(ctx, db); err != nil || took {
		t.Fatalf("the round after the change went on without its premise (took a transaction id: %v, %v)", took, err)
	}
	if floor, _ := store.ClaimFloor(db); floor != 0 {
		t.Fatalf("floor %d without its premise", floor)
	}
}

// A round refuses to run in a transaction that already holds a transaction id: its own id
// must come after the sequence value it reads.
func TestFloorRoundRefusesAnEarlierTransactionID(t *testing.T) {
	db := storetest.Open(t, store.Postgres, nil)
	if err := store.FloorRoundAfterID(context.Background(), db); err == nil || !strings.Contains(err.Error(), "already had a transaction id") {
		t.Fatalf("round after a transaction id: %v", err)
	}
}

// An idle applier's rounds take no transaction id (each would write a commit record);
// a round takes one when there are ids to prove.
func TestIdleFloorRoundsTakeNoTransactionID(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	store.SetFloorRounds(db, 0, time.Hour)
	floorAbove(t, db, recordAll(t, db, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(session("u1", "s-2", "0.000012", 60))}))
	for range 3 {
		if took, err := store.FloorRoundTakesID(ctx, db); err != nil || took {
			t.Fatalf("an idle round took a transaction id: %v, %v", took, err)
		}
	}
	if _, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-3", "0.000012", 60))}); err != nil {
		t.Fatal(err)
	}
	if took, err := store.FloorRoundTakesID(ctx, db); err != nil || !took {
		t.Fatalf("a round with a new id above the floor took no transaction id: %v, %v", took, err)
	}
}
