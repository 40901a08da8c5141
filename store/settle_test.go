package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shopspring/decimal"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// checkInvariants fails the test when the ledger of "arcade" is inconsistent.
func checkInvariants(t *testing.T, db *store.DB) {
	t.Helper()
	if err := db.CheckInvariants(context.Background(), "arcade"); err != nil {
		t.Fatal(err)
	}
}

// ingestAll records the events in batches, failing on any error.
func ingestAll(t *testing.T, db *store.DB, evs []rewards.Event) {
	t.Helper()
	for start := 0; start < len(evs); start += 200 {
		var batch []rewards.Inbound
		for _, ev := range evs[start:min(start+200, len(evs))] {
			batch = append(batch, in(ev))
		}
		if _, err := ingest(db, context.Background(), batch); err != nil {
			t.Fatalf("Ingest: %v", err)
		}
	}
}

// population credits users u000..u<n-1>, user i getting i%4+1 sessions worth 0.672 each
// (hold 24h), and returns each user's pending.
func population(t *testing.T, db *store.DB, n int) map[string]decimal.Decimal {
	t.Helper()
	var evs []rewards.Event
	want := map[string]decimal.Decimal{}
	for i := 0; i < n; i++ {
		u := fmt.Sprintf("u%03d", i)
		for k := 0; k <= i%4; k++ {
			evs = append(evs, session(u, fmt.Sprintf("s-%s-%d", u, k), "0.000012", 60))
			want[u] = want[u].Add(d("0.672"))
		}
	}
	ingestAll(t, db, evs)
	return want
}

func settle(t *testing.T, db *store.DB, scale int32) rewards.SettlementRun {
	t.Helper()
	run, err := db.Settle(context.Background(), "arcade", scale, "")
	if err != nil {
		t.Fatalf("Settle: %v", err)
	}
	if run.Status != rewards.RunCompleted || run.FinishedAt.IsZero() || (run.ID == 0) != (run.Entries == 0) {
		t.Fatalf("run = %+v, want completed, recorded when it settled anything", run)
	}
	return run
}

// wantSettled checks every user moved the whole units of what they were credited.
func wantSettled(t *testing.T, db *store.DB, credited map[string]decimal.Decimal, scale int32) decimal.Decimal {
	t.Helper()
	total := decimal.Zero
	for u, c := range credited {
		moved := rewards.FloorToScale(c, scale)
		wantBalance(t, db, u, c.Sub(moved).String(), moved.String())
		total = total.Add(moved)
	}
	return total
}

// Three sessions of 0.672, each settled by its own run: what is not moved is carried,
// never lost (the store twin of rewards.TestSettleAcrossRuns).
func TestSettleCarriesRemaindersAcrossRuns(t *testing.T) {
	tests := []struct {
		scale     int32
		available []string // after each run
		pending   string   // after the last run
	}{
		{0, []string{"0", "1", "2"}, "0.016"},
		{2, []string{"0.67", "1.34", "2.01"}, "0.006"},
	}
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("scale %d", tt.scale), func(t *testing.T) {
				clock := storetest.NewClock(t0)
				db := storetest.Open(t, dia, clock.Now)
				for i, want := range tt.available {
					ingestOne(t, db, in(session("u1", fmt.Sprintf("s-%d", i), "0.000012", 60)))
					clock.Advance(24 * time.Hour)
					run := settle(t, db, tt.scale)
					if run.Users != 1 || run.Entries != 1 {
						t.Errorf("run %d: %d users, %d entries; want 1, 1", i+1, run.Users, run.Entries)
					}
					b, err := db.Balance(context.Background(), "arcade", "u1")
					if err != nil {
						t.Fatal(err)
					}
					if b.Available.String() != want {
						t.Errorf("run %d: available %s, want %s", i+1, b.Available, want)
					}
					checkInvariants(t, db)
				}
				wantBalance(t, db, "u1", tt.pending, tt.available[len(tt.available)-1])
				// Nothing left to mature: a further run settles nothing and changes nothing.
				run := settle(t, db, tt.scale)
				if run.Users != 0 || run.Entries != 0 || !run.Amount.IsZero() {
					t.Errorf("idle run = %+v", run)
				}
				wantBalance(t, db, "u1", tt.pending, tt.available[len(tt.available)-1])
				checkInvariants(t, db)
			})
		}
	})
}

// A credit held 24h is not settled a microsecond early and is settled exactly at 24h.
func TestSettleHoldBoundary(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60))) // 5.6
		ingestOne(t, db, in(score("u1", "p1", "500")))           // 50, hold 0: matured now
		clock.Set(t0.Add(24*time.Hour - time.Microsecond))
		run := settle(t, db, 0)
		if run.Entries != 1 || !run.Amount.Equal(d("50")) {
			t.Fatalf("early run = %+v, want only the target's lot", run)
		}
		wantBalance(t, db, "u1", "5.6", "50")
		clock.Set(t0.Add(24 * time.Hour))
		run = settle(t, db, 0)
		if run.Entries != 1 || !run.Amount.Equal(d("5")) {
			t.Fatalf("run at maturity = %+v, want the session's lot", run)
		}
		wantBalance(t, db, "u1", "0.6", "55")
		checkInvariants(t, db)
	})
}

// Two and three runs at once, without the lease, so they really race for the same
// wallets: together they settle exactly what one run would.
func TestConcurrentSettleRuns(t *testing.T) {
	for _, runs := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d runs", runs), func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
				clock := storetest.NewClock(t0)
				db := storetest.Open(t, dia, clock.Now)
				credited := population(t, db, 120)
				clock.Advance(25 * time.Hour)
				var wg sync.WaitGroup
				results := make([]rewards.SettlementRun, runs)
				errs := make([]error, runs)
				for i := range runs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						results[i], errs[i] = db.SettleWith(context.Background(), "arcade", 0, store.SettleOptions{Batch: 7, Workers: 2, NoLock: true})
					}()
				}
				wg.Wait()
				total, users, lots := decimal.Zero, int64(0), int64(0)
				for i := range runs {
					if errs[i] != nil {
						t.Fatalf("run %d: %v", i, errs[i])
					}
					total = total.Add(results[i].Amount)
					users += results[i].Users
					lots += results[i].Entries
				}
				want := wantSettled(t, db, credited, 0)
				if !total.Equal(want) || users != 120 || lots != 300 {
					t.Fatalf("runs moved %s for %d users and %d lots; one run moves %s for 120 and 300", total, users, lots, want)
				}
				checkInvariants(t, db)
			})
		})
	}
}

// With the lease, concurrent runs of one property do not queue behind each other: the
// losers report ErrSettlementRunning, and the totals are still those of one run.
func TestConcurrentSettleWithLease(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		credited := population(t, db, 60)
		clock.Advance(25 * time.Hour)
		var wg sync.WaitGroup
		results := make([]rewards.SettlementRun, 3)
		errs := make([]error, 3)
		for i := range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = db.Settle(context.Background(), "arcade", 0, "")
			}()
		}
		wg.Wait()
		total := decimal.Zero
		for i := range 3 {
			if errs[i] != nil && !errors.Is(errs[i], rewards.ErrSettlementRunning) {
				t.Fatalf("run %d: %v", i, errs[i])
			}
			total = total.Add(results[i].Amount)
		}
		if want := wantSettled(t, db, credited, 0); !total.Equal(want) {
			t.Fatalf("runs moved %s, want %s", total, want)
		}
		checkInvariants(t, db)
	})
}

// A run cancelled after its first batch keeps that batch, half-applies nothing, is
// recorded as failed, and the next run completes the job. A run whose process died
// (its row left running, its lease left held) blocks others until the lease expires,
// then is marked abandoned by the run that takes over.
func TestSettleInterrupted(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		credited := population(t, db, 40)
		clock.Advance(25 * time.Hour)

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		first, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Batch: 10, AfterBatch: func(n int) {
			if n == 1 {
				cancel()
			}
		}})
		if err == nil || !errors.Is(err, rewards.ErrUnavailable) {
			t.Fatalf("cancelled run: err = %v, want ErrUnavailable", err)
		}
		if first.Status != rewards.RunFailed || first.Users != 10 || first.Error == "" {
			t.Fatalf("cancelled run = %+v, want failed after 10 users", first)
		}
		checkInvariants(t, db)
		for u, c := range credited {
			b, err := db.Balance(context.Background(), "arcade", u)
			if err != nil {
				t.Fatal(err)
			}
			moved := rewards.FloorToScale(c, 0)
			untouched := b.Available.IsZero() && b.Pending.Equal(c)
			settled := b.Available.Equal(moved) && b.Pending.Equal(c.Sub(moved))
			if !untouched && !settled {
				t.Errorf("%s half-settled: available %s pending %s (credited %s)", u, b.Available, b.Pending, c)
			}
		}
		// What a killed process leaves: its run still running, its lease still held.
		if err := db.ExecRaw(context.Background(), `UPDATE settlements SET status = 'running', finished_at = NULL WHERE id = ?`, first.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecRaw(context.Background(), `INSERT INTO leases (name, holder, expires_at) VALUES ('settle:arcade', 'dead', ?)`,
			clock.Now().Add(store.LeaseTTL)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Settle(context.Background(), "arcade", 0, ""); !errors.Is(err, rewards.ErrSettlementRunning) {
			t.Fatalf("Settle during a live lease: err = %v, want ErrSettlementRunning", err)
		}
		clock.Advance(store.LeaseTTL)
		second := settle(t, db, 0)
		want := wantSettled(t, db, credited, 0)
		if second.Users != 30 || !first.Amount.Add(second.Amount).Equal(want) {
			t.Fatalf("runs moved %s + %s for %d + %d users, want %s for 40", first.Amount, second.Amount, first.Users, second.Users, want)
		}
		runs, err := db.SettlementRuns(context.Background(), "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 2 || runs[0].ID != second.ID || runs[1].ID != first.ID || runs[1].Status != rewards.RunAbandoned ||
			runs[1].Users != 10 || !runs[1].Amount.Equal(first.Amount) || runs[0].Status != rewards.RunCompleted || runs[0].Users != 30 {
			t.Fatalf("runs = %+v", runs)
		}
		checkInvariants(t, db)
	})
}

// A run cancelled while two batches run at once: the batches that committed stand, whole,
// and the run counts exactly them (a batch whose commit got through while its context
// was cancelled included); the next run settles the rest. Postgres only: SQLite settles
// one batch at a time (TestSettleInterrupted).
func TestSettleCancelledTwoBatchesAtOnce(t *testing.T) {
	clock := storetest.NewClock(t0)
	db := storetest.Open(t, store.Postgres, clock.Now)
	credited := population(t, db, 40)
	clock.Advance(25 * time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Batch: 5, Workers: 2, AfterBatch: func(n int) {
		if n == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, rewards.ErrUnavailable) || first.Status != rewards.RunFailed {
		t.Fatalf("cancelled run = %+v, %v; want failed, unavailable", first, err)
	}
	checkInvariants(t, db)
	settled := countSettled(t, db, credited)
	if first.Users != settled || settled < 10 {
		t.Fatalf("cancelled run counts %d users; %d are settled, at least the 10 of two batches", first.Users, settled)
	}
	second := settle(t, db, 0)
	if want := wantSettled(t, db, credited, 0); first.Users+second.Users != 40 || !first.Amount.Add(second.Amount).Equal(want) {
		t.Fatalf("runs moved %s + %s for %d + %d users, want %s for 40", first.Amount, second.Amount, first.Users, second.Users, want)
	}
	checkInvariants(t, db)
}

func TestSettleNothingMatured(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
		run := settle(t, db, 0)
		if run.Users != 0 || run.Entries != 0 || !run.Amount.IsZero() || run.ID != 0 {
			t.Fatalf("run = %+v, want nothing settled", run)
		}
		// A run that settles nothing leaves no record: two replicas ticking one after the
		// other do not double the history.
		settle(t, db, 0)
		if runs, err := db.SettlementRuns(context.Background(), "", 10); err != nil || len(runs) != 0 {
			t.Fatalf("runs recorded: %+v %v", runs, err)
		}
		wantBalance(t, db, "u1", "5.6", "0")
		if _, err := db.Settle(context.Background(), "arcade", -1, ""); err == nil {
			t.Fatal("Settle with scale -1 succeeded")
		}
		checkInvariants(t, db)
	})
}

// A scheduled run of a property with nothing matured answers from one read: it takes no
// lease (so another replica's lease does not make it "skipped") and writes nothing. It
// still marks a run of a dead process abandoned, and a property with matured lots still
// waits for the lease as before.
func TestScheduledSettleOfAnIdlePropertyTakesNoLease(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60))) // matures in 24h
		if err := db.ExecRaw(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ('settle:arcade', 'other', ?)`,
			clock.Now().Add(store.LeaseTTL)); err != nil {
			t.Fatal(err)
		}
		run, err := db.Settle(ctx, "arcade", 0, "")
		if err != nil || run.ID != 0 || run.Status != rewards.RunCompleted || run.Users != 0 {
			t.Fatalf("a scheduled run with nothing matured, another's lease held: %+v %v, want completed with nothing", run, err)
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM leases WHERE name = 'settle:arcade' AND holder = 'other'`); err != nil || n != 1 {
			t.Fatalf("the other's lease: %d %v", n, err)
		}
		clock.Advance(25 * time.Hour)
		if err := db.ExecRaw(ctx, `UPDATE leases SET expires_at = ?`, clock.Now().Add(store.LeaseTTL)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Settle(ctx, "arcade", 0, ""); !errors.Is(err, rewards.ErrSettlementRunning) {
			t.Fatalf("a scheduled run with a matured lot, another's lease held: %v, want ErrSettlementRunning", err)
		}
		if err := db.ExecRaw(ctx, `DELETE FROM leases`); err != nil {
			t.Fatal(err)
		}
		settle(t, db, 0)
		wantBalance(t, db, "u1", "0.6", "5")

		// A process that died mid-run left its run marked running; nothing is matured now.
		if err := db.ExecRaw(ctx, `INSERT INTO settlements (property, status, started_at) VALUES ('arcade', ?, ?)`,
			rewards.RunRunning, clock.Now()); err != nil {
			t.Fatal(err)
		}
		if run := settle(t, db, 0); run.ID != 0 {
			t.Fatalf("run = %+v, want nothing settled", run)
		}
		runs, err := db.SettlementRuns(ctx, "arcade", 10)
		if err != nil || len(runs) != 2 || runs[0].Status != rewards.RunAbandoned {
			t.Fatalf("runs: %+v %v, want the dead process's run abandoned", runs, err)
		}
		checkInvariants(t, db)
	})
}

// A lot inserted without its property, as a replica still running the binary before
// migration 00032 inserts it during a rolling deploy, gets its wallet's property and
// settles.
func TestLotWrittenWithoutItsPropertySettles(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
		for _, q := range []string{
			`INSERT INTO lots (wallet_id, journal_id, amount, matures_at) SELECT wallet_id, journal_id, amount, matures_at FROM lots`,
			`DELETE FROM lots WHERE id = (SELECT min(id) FROM lots)`,
		} {
			if err := db.ExecRaw(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM lots WHERE property = 'arcade'`); err != nil || n != 1 {
			t.Fatalf("arcade's lots: %d %v, want the one written without a property", n, err)
		}
		clock.Advance(25 * time.Hour)
		if run := settle(t, db, 0); run.Users != 1 || !run.Amount.Equal(d("5")) {
			t.Fatalf("run = %+v, want u1's 5", run)
		}
		wantBalance(t, db, "u1", "0.6", "5")
		checkInvariants(t, db)
	})
}

// A run asked for by hand is audited with its start, naming who asked, and is recorded
// even when nothing had matured, so its audit entry names a run; a scheduled run that
// finds nothing leaves neither.
func TestSettleByHandIsAudited(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
		settle(t, db, 0) // the schedule, nothing matured
		if audit, err := db.Audit(ctx, rewards.AuditFilter{Limit: 10}); err != nil || len(audit) != 0 {
			t.Fatalf("a scheduled run was audited: %+v %v", audit, err)
		}
		// While another run holds the lease, a run asked for by hand does nothing, so
		// nothing is audited.
		if err := db.ExecRaw(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ('settle:arcade', 'other', ?)`,
			clock.Now().Add(store.LeaseTTL)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Settle(ctx, "arcade", 0, "carol"); !errors.Is(err, rewards.ErrSettlementRunning) {
			t.Fatalf("settle by hand under another's lease: %v, want ErrSettlementRunning", err)
		}
		if audit, err := db.Audit(ctx, rewards.AuditFilter{Limit: 10}); err != nil || len(audit) != 0 {
			t.Fatalf("a run that did not start was audited: %+v %v", audit, err)
		}
		if err := db.ExecRaw(ctx, `DELETE FROM leases`); err != nil {
			t.Fatal(err)
		}
		empty, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Actor: "alice"})
		if err != nil || empty.ID == 0 || empty.Status != rewards.RunCompleted || empty.Users != 0 {
			t.Fatalf("a run by hand that found nothing: %+v %v", empty, err)
		}
		clock.Advance(25 * time.Hour)
		moved, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Actor: "bob"})
		if err != nil || moved.Users != 1 || !moved.Amount.Equal(d("5")) {
			t.Fatalf("a run by hand: %+v %v", moved, err)
		}
		audit, err := db.Audit(ctx, rewards.AuditFilter{Limit: 10})
		if err != nil || len(audit) != 2 {
			t.Fatalf("audit: %+v %v", audit, err)
		}
		for i, want := range []struct {
			actor string
			run   rewards.SettlementRun
		}{{"bob", moved}, {"alice", empty}} {
			a := audit[i]
			if a.Actor != want.actor || a.Action != rewards.AuditSettlement || a.Property != "arcade" ||
				a.Target != fmt.Sprintf("settlement:%d", want.run.ID) || !a.CreatedAt.Equal(want.run.StartedAt) {
				t.Fatalf("audit entry %d: %+v, want %s's run %+v", i, a, want.actor, want.run)
			}
		}
		runs, err := db.SettlementRuns(ctx, "", 10)
		if err != nil || len(runs) != 2 || runs[1].ID != empty.ID || runs[1].Users != 0 {
			t.Fatalf("runs: %+v %v", runs, err)
		}
		checkInvariants(t, db)
	})
}

// A run settles its own property's wallets only, in full batches, when another
// property's wallets sit between them in id order (two of them after each of its own)
// with lots matured as well.
func TestSettleOnlyItsProperty(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		const n = 25
		credited := map[string]decimal.Decimal{}
		var others []string
		for i := range n {
			u := fmt.Sprintf("u%03d", i)
			ingestOne(t, db, in(session(u, "s-"+u, "0.0001", 60)))
			for _, ou := range []string{u, u + "-b"} { // two of its wallets after each of arcade's
				other := in(session(ou, "o-"+ou, "0.0001", 60))
				other.Property = "other"
				ingestOne(t, db, other)
				others = append(others, ou)
			}
			credited[u] = d("5.6")
		}
		otherBefore := map[string]rewards.Balance{}
		for _, u := range others {
			b, err := db.Balance(context.Background(), "other", u)
			if err != nil || b.Pending.IsZero() {
				t.Fatalf("other's %s: %+v %v, want a pending credit", u, b, err)
			}
			otherBefore[u] = b
		}
		clock.Advance(25 * time.Hour)

		batches := 0
		run, err := db.SettleWith(context.Background(), "arcade", 0, store.SettleOptions{Batch: 3, AfterBatch: func(int) { batches++ }})
		if err != nil {
			t.Fatal(err)
		}
		want := wantSettled(t, db, credited, 0)
		if run.Users != n || run.Entries != n || !run.Amount.Equal(want) {
			t.Fatalf("run = %+v, want %d users, %d lots, %s", run, n, n, want)
		}
		if want := (n + 2) / 3; batches != want {
			t.Fatalf("%d batches of 3 for %d wallets, want %d", batches, n, want)
		}
		for u, before := range otherBefore {
			b, err := db.Balance(context.Background(), "other", u)
			if err != nil {
				t.Fatal(err)
			}
			if !b.Pending.Equal(before.Pending) || !b.Available.Equal(before.Available) {
				t.Fatalf("other's %s moved with arcade's run: %+v, was %+v", u, b, before)
			}
		}
		checkInvariants(t, db)
		if run, err := db.Settle(context.Background(), "other", 2, ""); err != nil || run.Users != 2*n {
			t.Fatalf("other's run = %+v, %v, want its %d users", run, err, 2*n)
		}
	})
}

// tally verify reads the ledger while the service runs, so it must not hold the writers
// up: on SQLite its transaction took the write lock (BEGIN IMMEDIATE) for the whole
// check, and every receiver, redemption and the applier waited behind it (503s once a
// check outlasted their deadlines). A write now commits while a check is under way.
func TestCheckInvariantsDoesNotHoldWritersUp(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		recordAndApply(t, db, in(session("u1", "s1", "0.000012", 100)))
		store.BeforeQuery(db, "SELECT journal_id, amount FROM entries", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := db.Record(ctx, []rewards.Inbound{in(session("u2", "s2", "0.000012", 100))}); err != nil {
				t.Errorf("a write while the invariants are checked: %v", err)
			}
		})
		checkInvariants(t, db)
	})
}

// The checker catches what it promises to catch: a test of the test.
func TestCheckInvariantsDetectsCorruption(t *testing.T) {
	corruptions := []struct {
		name, sql string
		want      string // in the report, when the case pins one check
	}{
		{"wallet balance without entry", `UPDATE wallets SET available = '1' WHERE user_id = 'u1'`, ""},
		{"carry without lots", `UPDATE wallets SET carry = '0.5', pending = '5.8' WHERE user_id = 'u1'`, ""},
		{"settled lot back in the queue", `INSERT INTO lots (wallet_id, journal_id, amount, matures_at)
			SELECT w.id, j.id, '5', j.created_at FROM journal j JOIN wallets w ON w.property = j.property AND w.user_id = j.user_id
			WHERE j.kind = 'revenue'`, ""},
		{"lot of another property than its wallet", `INSERT INTO lots (wallet_id, property, journal_id, amount, matures_at)
			SELECT w.id, 'other', j.id, '5', j.created_at FROM journal j JOIN wallets w ON w.property = j.property AND w.user_id = j.user_id
			WHERE j.kind = 'revenue'`, "its property is not its wallet's"},
		{"run amount off", `UPDATE settlements SET amount = '4'`, "moved; its legs credit"},
		{"run counts fewer users than it credited", `UPDATE settlements SET users = 0`, "counts 0 users"},
		{"run counts fewer lots than users", `UPDATE settlements SET entries = 0`, "0 lots"},
		{"user settled twice in one run", `INSERT INTO journal (id, property, user_id, kind, rule, ref, created_at)
			SELECT 9998, property, user_id, kind, rule, ref, created_at FROM journal WHERE kind = 'settlement';
			INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
			SELECT 9998, property, user_id, account, bucket, kind, amount, created_at FROM entries e
			WHERE journal_id = (SELECT id FROM journal WHERE kind = 'settlement' AND id <> 9998)`, "u1 settled twice in one run"},
		{"unbalanced journal", `INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
			SELECT id, property, user_id, '@revenue', '', kind, '1', created_at FROM journal WHERE kind = 'revenue'`, ""},
		// Balanced, and u1's legs add up to nothing: only the journal row names u2.
		{"wallet legs of another user than their journal row", `INSERT INTO journal (id, property, user_id, kind, rule, created_at)
			VALUES (9999, 'arcade', 'u2', 'adjustment', 'admin', '2026-11-02 10:00:00');
			INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
			VALUES (9999, 'arcade', 'u1', '', 'pending', 'adjustment', '1', '2026-11-02 10:00:00'),
				(9999, 'arcade', 'u1', '', 'pending', 'adjustment', '-1', '2026-11-02 10:00:00')`, ""},
	}
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		for _, c := range corruptions {
			t.Run(c.name, func(t *testing.T) {
				clock := storetest.NewClock(t0)
				db := storetest.Open(t, dia, clock.Now)
				ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
				ingestOne(t, db, in(score("u1", "p1", "500")))
				settle(t, db, 0)
				checkInvariants(t, db)
				for _, q := range strings.Split(c.sql, ";") {
					if err := db.ExecRaw(context.Background(), q); err != nil {
						t.Fatal(err)
					}
				}
				err := db.CheckInvariants(context.Background(), "arcade")
				if err == nil {
					t.Fatal("CheckInvariants found nothing wrong")
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Fatalf("CheckInvariants did not report %q:\n%v", c.want, err)
				}
			})
		}
	})
}

// Settlement runs racing ingest, pending credits and redemptions on the same wallets:
// wallet locks are taken in one order everywhere, so nothing deadlocks past the retries,
// and every unit stays accounted for.
func TestSettleUnderLoad(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		ctx := context.Background()
		users := make([]string, 40)
		for i := range users {
			users[i] = fmt.Sprintf("u%02d", i)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for w := range 3 {
			wg.Add(1)
			go func() { // ingest: sessions for many users per transaction
				defer wg.Done()
				for i := range 10 {
					var batch []rewards.Inbound
					for k := range 8 {
						u := users[(w*13+i*7+k*5)%len(users)]
						batch = append(batch, in(session(u, fmt.Sprintf("s-%d-%d-%d", w, i, k), "0.000012", 60)))
					}
					if err := retryUnavailable(func() error { _, err := ingest(db, ctx, batch); return err }); err != nil {
						errs <- err
						return
					}
				}
			}()
			wg.Add(1)
			go func() { // pending credits that mature at once, and redemptions
				defer wg.Done()
				for i := range 15 {
					u := users[(w*11+i*3)%len(users)]
					err := retryUnavailable(func() error {
						_, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "test", Property: "arcade", User: u, Amount: d("1.25"), Bucket: rewards.Pending,
							Reason: "load", IdempotencyKey: fmt.Sprintf("a-%d-%d", w, i), RequestHash: "h"})
						return err
					})
					if err != nil {
						errs <- err
						return
					}
					err = retryUnavailable(func() error { _, _, err := db.Redeem(ctx, redeemReq(u, "1", fmt.Sprintf("r-%d-%d", w, i))); return err })
					if err != nil && !errors.Is(err, rewards.ErrInsufficientFunds) {
						errs <- err
						return
					}
				}
			}()
			wg.Add(1)
			go func() { // settlement runs, without the lease so they overlap
				defer wg.Done()
				for range 4 {
					if err := retryUnavailable(func() error {
						_, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Batch: 5, NoLock: true})
						return err
					}); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if _, err := db.Settle(ctx, "arcade", 0, ""); err != nil {
			t.Fatal(err)
		}
		checkInvariants(t, db)
	})
}

// A batch that dies half-way — after it claimed its lots and wrote their journal rows,
// while it writes the wallets — leaves nothing behind: its users keep their lots and
// balances, no settlement entry of theirs survives, and the batches committed before it
// stand. The next run settles exactly the rest, each lot once. The batch is stopped by a
// trigger on one wallet's update: an error, and on Postgres also the connection killed
// under it, as when the process or the network goes.
func TestSettleBatchKilledHalfWay(t *testing.T) {
	pgTrigger := `CREATE TRIGGER kill_settlement BEFORE UPDATE ON wallets FOR EACH ROW
		WHEN (NEW.user_id = 'u025') EXECUTE FUNCTION kill_settlement()`
	pgDrop := []string{`DROP TRIGGER kill_settlement ON wallets`, `DROP FUNCTION kill_settlement()`}
	kills := map[store.Dialect][]struct {
		name            string
		setup, teardown []string
	}{
		store.SQLite: {{"error", []string{`CREATE TRIGGER kill_settlement BEFORE UPDATE ON wallets WHEN NEW.user_id = 'u025'
			BEGIN SELECT RAISE(ABORT, 'settlement killed half-way'); END`}, []string{`DROP TRIGGER kill_settlement`}}},
		store.Postgres: {
			{"error", []string{`CREATE FUNCTION kill_settlement() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN RAISE EXCEPTION 'settlement killed half-way'; END $$`, pgTrigger}, pgDrop},
			{"connection killed", []string{`CREATE FUNCTION kill_settlement() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$`, pgTrigger}, pgDrop},
		},
	}
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		for _, k := range kills[dia] {
			for _, workers := range []int{1, 2} {
				if workers > 1 && dia == store.SQLite {
					continue // SQLite settles one batch at a time
				}
				t.Run(fmt.Sprintf("%s, %d at once", k.name, workers), func(t *testing.T) {
					ctx := context.Background()
					clock := storetest.NewClock(t0)
					db := storetest.Open(t, dia, clock.Now)
					credited := population(t, db, 40)
					clock.Advance(25 * time.Hour)
					for _, q := range k.setup {
						if err := db.ExecRaw(ctx, q); err != nil {
							t.Fatal(err)
						}
					}

					// Wallets are visited in id order, which here is user order: batches of 10
					// are u000–u009, u010–u019, then u020–u029, which dies at u025. One batch
					// at a time, the first two commit and the last is never started; two at
					// a time, the batch beside the one that dies (u030–u039, or u010–u019 if
					// it was slow) may commit or be stopped, whole either way.
					first, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Batch: 10, Workers: workers})
					if err == nil {
						t.Fatal("run with a batch killed half-way succeeded")
					}
					if first.Status != rewards.RunFailed || first.Error == "" || (workers == 1 && first.Users != 20) {
						t.Fatalf("killed run = %+v, want failed after 20 users", first)
					}
					checkInvariants(t, db)
					settledFirst := int64(0)
					for u, settled := range wantWholeOrUntouched(t, db, credited) {
						if settled {
							settledFirst++
						}
						if u >= "u020" && u < "u030" && settled {
							t.Errorf("%s of the killed batch settled", u)
						}
						if want := u < "u020"; workers == 1 && settled != want {
							t.Errorf("%s settled = %v after the killed run, want %v", u, settled, want)
						}
					}
					if settledFirst != first.Users {
						t.Errorf("killed run counts %d users, %d were settled", first.Users, settledFirst)
					}

					for _, q := range k.teardown {
						if err := db.ExecRaw(ctx, q); err != nil {
							t.Fatal(err)
						}
					}
					second := settle(t, db, 0)
					want := wantSettled(t, db, credited, 0)
					if first.Users+second.Users != 40 || !first.Amount.Add(second.Amount).Equal(want) {
						t.Fatalf("runs moved %s + %s for %d + %d users, want %s for 40", first.Amount, second.Amount, first.Users, second.Users, want)
					}
					for u, ok := range wantWholeOrUntouched(t, db, credited) {
						if !ok {
							t.Errorf("%s not settled by the second run", u)
						}
					}
					if n, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM lots WHERE settlement_id IS NULL`); err != nil || n != 0 {
						t.Fatalf("%d lots left unsettled (%v)", n, err)
					}
					checkInvariants(t, db)
				})
			}
		}
	})
}

// countSettled is how many users wantWholeOrUntouched finds settled whole.
func countSettled(t *testing.T, db *store.DB, credited map[string]decimal.Decimal) int64 {
	t.Helper()
	n := int64(0)
	for _, ok := range wantWholeOrUntouched(t, db, credited) {
		if ok {
			n++
		}
	}
	return n
}

// wantWholeOrUntouched checks that every user is either settled whole — every lot taken,
// the whole units moved by one settlement entry — or untouched, and reports which.
func wantWholeOrUntouched(t *testing.T, db *store.DB, credited map[string]decimal.Decimal) map[string]bool {
	t.Helper()
	ctx := context.Background()
	settled := map[string]bool{}
	for u, c := range credited {
		b, err := db.Balance(ctx, "arcade", u)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM journal WHERE user_id = ? AND kind = 'settlement'`, u)
		if err != nil {
			t.Fatal(err)
		}
		open, err := store.QueryInt(ctx, db, `SELECT COUNT(*) FROM lots l JOIN wallets w ON w.id = l.wallet_id
			WHERE w.user_id = ? AND l.settlement_id IS NULL`, u)
		if err != nil {
			t.Fatal(err)
		}
		moved := rewards.FloorToScale(c, 0)
		wantEntries := int64(0) // less than a coin: the lots settle, the carry keeps it
		if moved.IsPositive() {
			wantEntries = 1
		}
		switch {
		case b.Available.IsZero() && b.Pending.Equal(c) && entries == 0 && open > 0:
			settled[u] = false
		case b.Available.Equal(moved) && b.Pending.Equal(c.Sub(moved)) && entries == wantEntries && open == 0:
			settled[u] = true
		default:
			t.Errorf("%s half-settled: available %s, pending %s (credited %s), %d settlement entries, %d lots open",
				u, b.Available, b.Pending, c, entries, open)
		}
	}
	return settled
}

// The ledger's writes bind typed arrays, which pgx can write in its simple protocol too
// (a pooler in transaction mode may ask for it): credits, claims, lots, wallets and a
// settlement all go through on such a connection.
func TestWritePathOverTheSimpleProtocol(t *testing.T) {
	clock := storetest.NewClock(t0)
	db := storetest.OpenURL(t, storetest.URL(t, store.Postgres)+"&default_query_exec_mode=simple_protocol", clock.Now)
	credited := population(t, db, 12)
	ingestOne(t, db, in(score("u900", "p1", "500"))) // a score target: a claim
	ingestOne(t, db, in(score("u900", "p1", "500")))
	wantBalance(t, db, "u900", "50", "0")
	clock.Advance(25 * time.Hour)
	run := settle(t, db, 0)
	if want := wantSettled(t, db, credited, 0).Add(d("50")); run.Users != 13 || !run.Amount.Equal(want) {
		t.Fatalf("run = %+v, want %s moved for 13 users", run, want)
	}
	wantBalance(t, db, "u900", "0", "50")
	for u, ok := range wantWholeOrUntouched(t, db, credited) {
		if !ok {
			t.Errorf("%s not settled", u)
		}
	}
	checkInvariants(t, db)
}

// A panic in a batch (a bug) fails the run, not the process: the batch's transaction
// rolls back, its lots stay for the next run, and the batches committed stand.
func TestSettleBatchPanic(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		credited := population(t, db, 30)
		clock.Advance(25 * time.Hour)
		var batches atomic.Int32
		store.SetInSettleBatch(db, func() {
			if batches.Add(1) == 2 {
				panic("a bug in a batch")
			}
		})
		first, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Batch: 10, Workers: 2})
		if err == nil || !strings.Contains(err.Error(), "a bug in a batch") || first.Status != rewards.RunFailed {
			t.Fatalf("run with a panicking batch = %+v, %v; want failed with the panic", first, err)
		}
		checkInvariants(t, db)
		settled := countSettled(t, db, credited)
		if first.Users != settled || settled > 20 {
			t.Fatalf("the failed run counts %d users; %d are settled, at most the 20 of two batches", first.Users, settled)
		}
		store.SetInSettleBatch(db, nil)
		second := settle(t, db, 0)
		if want := wantSettled(t, db, credited, 0); first.Users+second.Users != 30 || !first.Amount.Add(second.Amount).Equal(want) {
			t.Fatalf("runs moved %s + %s for %d + %d users, want %s for 30", first.Amount, second.Amount, first.Users, second.Users, want)
		}
		checkInvariants(t, db)
	})
}

// A settlement batch stuck behind a lock it cannot get (a session idle in a transaction
// holding a wallet) is cut short: the run fails, nothing of the batch is written, and the
// next run, once the lock is gone, settles the wallet. It waited for good, holding the
// replica's scheduled runs with it.
func TestSettlementBatchStuckBehindALockFails(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(t0)
	db := storetest.Open(t, store.Postgres, clock.Now)
	ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
	clock.Advance(25 * time.Hour)
	store.SetSettleBatchTimeout(db, 300*time.Millisecond)
	var run rewards.SettlementRun
	var runErr error
	if err := db.HoldWallet(ctx, "arcade", "u1", func() { run, runErr = db.Settle(ctx, "arcade", 0, "") }); err != nil {
		t.Fatal(err)
	}
	if runErr == nil || run.Status == rewards.RunCompleted {
		t.Fatalf("a batch behind a held wallet: %+v %v", run, runErr)
	}
	wantBalance(t, db, "u1", "5.6", "0")
	settle(t, db, 0)
	wantBalance(t, db, "u1", "0.6", "5")
	if err := db.CheckInvariants(ctx, "arcade"); err != nil {
		t.Fatal(err)
	}
}

// A run's steps outside its batches are bounded like a batch: a lease row another
// session inserted and never committed held the run's lease statement, and with it the
// scheduled settlement of every property, for good, with no failed run to alert on.
func TestSettlementStepStuckBehindALockFails(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(t0)
	db := storetest.Open(t, store.Postgres, clock.Now)
	ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
	clock.Advance(25 * time.Hour)
	store.SetSettleBatchTimeout(db, 300*time.Millisecond)
	done := make(chan error, 1)
	if err := db.HoldLeaseRow(ctx, "settle:arcade", func() {
		go func() {
			_, err := db.Settle(ctx, "arcade", 0, "")
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || errors.Is(err, rewards.ErrSettlementRunning) {
				t.Errorf("a run behind a held lease row: %v, want it to fail", err)
			}
		case <-time.After(time.Minute):
			t.Error("a run behind a held lease row still waits after a minute")
		}
	}); err != nil {
		t.Fatal(err)
	}
	// The lease statement given up on by the client may still take the lease on the
	// server once the row is free; nobody renews it, and it lapses.
	clock.Advance(store.LeaseTTL)
	settle(t, db, 0)
	wantBalance(t, db, "u1", "0.6", "5")
}

// twoMaturedWallets opens a Postgres ledger where u1 and u2 each hold a session's credit
// (5.6 pending) past its hold: a settlement at scale 0 moves 5 of each.
func twoMaturedWallets(t *testing.T) *store.DB {
	t.Helper()
	clock := storetest.NewClock(t0)
	db := storetest.Open(t, store.Postgres, clock.Now)
	ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
	ingestOne(t, db, in(session("u2", "s-2", "0.0001", 60)))
	clock.Advance(25 * time.Hour)
	return db
}

// holdWallet locks user's wallet in another transaction, as an applier crediting it
// does, until release is called; holding waits for that transaction's end and returns
// its error.
func holdWallet(t *testing.T, db *store.DB, user string) (release func(), holding func() error) {
	t.Helper()
	held, free := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- db.HoldWallet(context.Background(), "arcade", user, func() {
			close(held)
			<-free
		})
	}()
	<-held
	return sync.OnceFunc(func() { close(free) }), func() error { return <-done }
}

// A wallet held for good delays only itself: the other users of the property, in its
// batch or in batches after it, settle in the run that fails on it, tick after tick.
func TestSettlementHeldWalletDelaysOnlyItself(t *testing.T) {
	for _, batch := range []int{0, 1} { // one batch for both users; a batch each
		t.Run(fmt.Sprintf("batch=%d", batch), func(t *testing.T) {
			ctx := context.Background()
			db := twoMaturedWallets(t)
			store.SetSettleBatchTimeout(db, 300*time.Millisecond)
			var runs []rewards.SettlementRun
			if err := db.HoldWallet(ctx, "arcade", "u1", func() {
				for range 2 { // two ticks while the lock is held
					run, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Batch: batch, Workers: 1})
					if err == nil || run.Status != rewards.RunFailed {
						t.Errorf("a run behind a held wallet: %+v %v", run, err)
					}
					runs = append(runs, run)
				}
			}); err != nil {
				t.Fatal(err)
			}
			if runs[0].Users != 1 || runs[1].Users != 0 {
				t.Fatalf("runs settled %d and %d users, want 1 (u2) and 0", runs[0].Users, runs[1].Users)
			}
			wantBalance(t, db, "u2", "0.6", "5")
			wantBalance(t, db, "u1", "5.6", "0")
			settle(t, db, 0)
			wantBalance(t, db, "u1", "0.6", "5")
			if err := db.CheckInvariants(ctx, "arcade"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A wallet locked for a moment (an applier crediting it) when its batch comes is
// skipped, and settled in the same run once its lock is free.
func TestSettlementWalletLockedForAMomentSettlesInTheRun(t *testing.T) {
	ctx := context.Background()
	db := twoMaturedWallets(t)
	release, holding := holdWallet(t, db, "u1")
	run, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Batch: 1, Workers: 1, AfterBatch: func(n int) {
		if n == 2 { // u1's batch skipped it, u2's settled: let u1 go
			release()
		}
	}})
	if err != nil || run.Status != rewards.RunCompleted || run.Users != 2 {
		t.Fatalf("run: %+v %v", run, err)
	}
	if err := holding(); err != nil {
		t.Fatal(err)
	}
	wantBalance(t, db, "u1", "0.6", "5")
	wantBalance(t, db, "u2", "0.6", "5")
	if err := db.CheckInvariants(ctx, "arcade"); err != nil {
		t.Fatal(err)
	}
}

// Totals are sums of amounts below 10^20 and may pass it: a settlement run whose wallets
// add up to 1.2 × 10^20, a tournament window whose prizes do. On Postgres their columns
// were NUMERIC(38,18), and the run (or the close) failed on every retry; SQLite went on.
func TestTotalsPastTwentyDigits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		for i, u := range []string{"big1", "big2"} {
			if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "ops", Property: "arcade", User: u,
				Amount: d("60000000000000000000"), Bucket: rewards.Pending, Reason: "r", IdempotencyKey: fmt.Sprintf("k%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(1)
		r, err := db.Settle(ctx, "arcade", 0, "")
		if err != nil || r.Status != rewards.RunCompleted || !r.Amount.Equal(d("120000000000000000000")) {
			t.Fatalf("run: %+v, %v", r, err)
		}
		wantBalance(t, db, "big1", "0", "60000000000000000000")
		wantBalance(t, db, "big2", "0", "60000000000000000000")
		if err := db.CheckInvariants(ctx, "arcade"); err != nil {
			t.Fatal(err)
		}
	})
}

// A batch that skipped a locked wallet and is retried by the store (a deadlock at its
// commit) still hands the wallet to the run's end: the retry cut the batch to the
// wallets its first attempt had locked, and the skipped one waited for the next run.
func TestSettlementSkippedWalletSurvivesABatchRetry(t *testing.T) {
	ctx := context.Background()
	db := twoMaturedWallets(t)
	calls := 0
	store.SetInSettleBatch(db, func() {
		calls++
		switch calls {
		case 1: // the first attempt of the first batch fails at its commit, as a deadlock would
			store.FailCommits(db, &pgconn.PgError{Severity: "ERROR", Code: "40P01", Message: "deadlock detected"})
		case 2:
			store.FailCommits(db, nil)
		}
	})
	defer store.SetInSettleBatch(db, nil)
	release, holding := holdWallet(t, db, "u1")
	run, err := db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Workers: 1, AfterBatch: func(n int) {
		if n == 1 { // the main batch is done: u1's lock goes
			release()
		}
	}})
	if err := holding(); err != nil {
		t.Fatal(err)
	}
	if err != nil || run.Status != rewards.RunCompleted || run.Users != 2 {
		t.Fatalf("run: %+v %v; want completed with both users", run, err)
	}
	wantBalance(t, db, "u1", "0.6", "5")
	wantBalance(t, db, "u2", "0.6", "5")
}

// A wallet locked for a moment when its batch came (u2) settles in the run although a
// wallet held for good (u1) was skipped with it: they were retried in one waiting batch,
// which failed on u1 and took u2 down with it.
func TestSettlementMomentaryLockDoesNotShareAHeldWalletsFate(t *testing.T) {
	ctx := context.Background()
	db := twoMaturedWallets(t)
	store.SetSettleBatchTimeout(db, 500*time.Millisecond)
	var run rewards.SettlementRun
	var runErr error
	if err := db.HoldWallet(ctx, "arcade", "u1", func() { // held for good
		release, holding := holdWallet(t, db, "u2") // an applier's, for a moment
		run, runErr = db.SettleWith(ctx, "arcade", 0, store.SettleOptions{Workers: 1, AfterBatch: func(n int) {
			if n == 1 {
				release()
			}
		}})
		if err := holding(); err != nil {
			t.Error(err)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if runErr == nil || run.Status != rewards.RunFailed || run.Users != 1 {
		t.Fatalf("run: %+v %v; want failed on u1, with u2 settled", run, runErr)
	}
	wantBalance(t, db, "u2", "0.6", "5")
	wantBalance(t, db, "u1", "5.6", "0")
}

// Rows that point at nothing, which Postgres no longer refuses since the hot path's
// foreign keys were dropped (migration 00004, on the ground that this check covers
// them), are found: either the database refuses the corruption itself (SQLite keeps its
// foreign keys) or CheckInvariants reports it.
func TestCheckInvariantsFindsRowsThatPointAtNothing(t *testing.T) {
	cases := []struct{ name, sql string }{
		{"entry without a journal row", `
			INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
			VALUES (987654, 'arcade', 'u1', '', 'available', 'adjustment', '100', '2026-11-22 10:00:00'),
			       (987654, 'arcade', 'u1', '@adjustments', '', 'adjustment', '-100', '2026-11-22 10:00:00');
			UPDATE wallets SET available = available + 100, lifetime_earned = lifetime_earned + 100 WHERE user_id = 'u1'`},
		{"claim without a journal row", `
			INSERT INTO claims (property, user_id, claim, journal_id, created_at)
			VALUES ('arcade', 'u1', 'target:never-paid', 987654, '2026-11-22 10:00:00')`},
		{"settlement legs without their run", `DELETE FROM settlements`},
		{"lot without its credit", `UPDATE lots SET journal_id = 987654`},
	}
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				ctx := context.Background()
				clock := storetest.NewClock(t0)
				db := storetest.Open(t, dia, clock.Now)
				ingestOne(t, db, in(session("u1", "s-1", "0.0001", 60)))
				ingestOne(t, db, in(score("u1", "p1", "500")))
				settle(t, db, 0)
				ingestOne(t, db, in(session("u1", "s-2", "0.0001", 60))) // a lot left unsettled
				checkInvariants(t, db)
				for _, q := range strings.Split(c.sql, ";") {
					if err := db.ExecRaw(ctx, q); err != nil {
						return // the database refuses the corruption itself
					}
				}
				if err := db.CheckInvariants(ctx, "arcade"); err == nil {
					t.Fatal("CheckInvariants found nothing wrong")
				}
			})
		}
	})
}

// A wallet held for good is waited for briefly, not for the batch timeout: its run (and
// with it the scheduled settlement of every property) waited 90 s for each such wallet,
// outlasted the next tick, and that tick was skipped for every property.
func TestSettlementWaitsBrieflyForAWalletHeldForGood(t *testing.T) {
	ctx := context.Background()
	db := twoMaturedWallets(t) // the batch timeout is the default 90 s
	type result struct {
		run rewards.SettlementRun
		err error
	}
	settled := make(chan result, 1)
	if err := db.HoldWallet(ctx, "arcade", "u1", func() {
		go func() {
			run, err := db.Settle(ctx, "arcade", 0, "")
			settled <- result{run, err}
		}()
		select {
		case r := <-settled:
			settled <- r
		case <-time.After(45 * time.Second): // well under the batch timeout
			t.Error("the run still waits for the held wallet")
		}
	}); err != nil {
		t.Fatal(err)
	}
	r := <-settled
	if r.err == nil || r.run.Status != rewards.RunFailed || r.run.Users != 1 {
		t.Fatalf("run: %+v %v; want failed on u1, with u2 settled", r.run, r.err)
	}
	wantBalance(t, db, "u2", "0.6", "5")
}
