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

var (
	day1 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day2 = day1.AddDate(0, 0, 1)
)

func trueUpReq(key, from, to string) rewards.TrueUpRequest {
	return rewards.TrueUpRequest{Property: "arcade", From: from, To: to, IdempotencyKey: key, RequestHash: "h:" + from + to,
		Actor: "finance", DefaultBuffer: d("0.2"), DefaultSessionCap: d("500")}
}

func importBooked(t *testing.T, db *store.DB, correction bool, days ...rewards.BookedDay) (rewards.BookedImported, error) {
	t.Helper()
	return db.ImportBooked(context.Background(), rewards.BookedImport{Property: "arcade", Days: days, Correction: correction, Actor: "finance"})
}

// trueUpFixture: on day 1, u1 and u2 each earn one session of $0.001 (gross 70, 14
// withheld, 56 credited); on day 2, u1 earns one more. E = 0.003 USD.
func trueUpFixture(t *testing.T, dia store.Dialect) (*store.DB, *storetest.Clock) {
	t.Helper()
	clock := storetest.NewClock(day1.Add(10 * time.Hour))
	db := storetest.Open(t, dia, clock.Now)
	ingestOne(t, db, in(session("u1", "s1", "0.001", 60)))
	ingestOne(t, db, in(session("u2", "s2", "0.001", 60)))
	clock.Set(day2.Add(23*time.Hour + 59*time.Minute))
	ingestOne(t, db, in(session("u1", "s3", "0.001", 60)))
	clock.Set(day2.AddDate(0, 0, 3))
	return db, clock
}

func TestTrueUpReleasesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db, _ := trueUpFixture(t, dia)
		ctx := context.Background()
		// B = 0.0027: r = 0.9, f = (0.9 − 0.8) / 0.2 = 0.5, each session releases 7.
		if _, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-02")); !errors.Is(err, rewards.ErrNotBooked) {
			t.Fatalf("without booked revenue: %v", err)
		}
		got, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0018")},
			rewards.BookedDay{Day: "2026-11-02", RevenueUSD: d("0.0009")})
		if err != nil || got.Inserted != 2 {
			t.Fatalf("import: %+v %v", got, err)
		}
		// The same again changes nothing; a change before the true-up replaces.
		if got, err = importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.00180")}); err != nil || got.Unchanged != 1 {
			t.Fatalf("re-import: %+v %v", got, err)
		}
		run, replayed, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-02"))
		if err != nil || replayed {
			t.Fatalf("true-up: %+v %v %v", run, replayed, err)
		}
		if !run.Ratio.Equal(d("0.9")) || !run.Released.Equal(d("21")) || run.Users != 2 || run.Sessions != 3 || !run.Shortfall.IsZero() ||
			!run.Estimated.Equal(d("0.003")) || !run.Booked.Equal(d("0.0027")) {
			t.Fatalf("run %+v", run)
		}
		wantBalance(t, db, "u1", "126", "0") // 56 + 56 + 7 + 7
		wantBalance(t, db, "u2", "63", "0")
		// The payout report shows the releases in credited_release, and its summary the
		// booked revenue and what the true-ups of the period's days released.
		q := rewards.ReportQuery{From: day1, To: day2.AddDate(0, 0, 4), Property: "arcade"}
		released := map[string]string{}
		summary, err := db.PayoutReport(ctx, q, func(r rewards.PayoutRow) error {
			released[r.User] = r.CreditedRelease.String()
			return nil
		})
		if err != nil || released["u1"] != "14" || released["u2"] != "7" || len(summary) != 1 {
			t.Fatalf("report: %v %+v %v", released, summary, err)
		}
		if s := summary[0]; !s.BookedUSD.Equal(d("0.0027")) || !s.Released.Equal(d("21")) || !s.Shortfall.IsZero() ||
			!s.Ledger.CreditedRelease.Equal(d("21")) {
			t.Fatalf("summary %+v", s)
		}
		// The summary counts the days that start in the period: to the second day's start,
		// the first day only; to the last time a report takes (the day after it is in the
		// year 10000, which sorts before 2026 as text), both.
		for to, want := range map[time.Time][2]string{
			day2: {"0.0018", "14"},
			time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC): {"0.0027", "21"},
		} {
			summary, err := db.PayoutReport(ctx, rewards.ReportQuery{From: day1, To: to, Property: "arcade"},
				func(rewards.PayoutRow) error { return nil })
			if err != nil || len(summary) != 1 || summary[0].BookedUSD.String() != want[0] || summary[0].Released.String() != want[1] {
				t.Fatalf("to %s: %+v %v, want booked %s released %s", to, summary, err, want[0], want[1])
			}
		}
		// Releases mature at once: the next settlement makes them available.
		settle(t, db, 0)
		wantBalance(t, db, "u1", "0", "126")

		again, replayed, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-02"))
		if err != nil || !replayed || again.ID != run.ID {
			t.Fatalf("retry: %+v %v %v", again, replayed, err)
		}
		if _, _, err := db.TrueUp(ctx, trueUpReq("t2", "2026-11-02", "2026-11-02")); !errors.Is(err, rewards.ErrTruedUp) {
			t.Fatalf("a day twice: %v", err)
		}
		other := trueUpReq("t1", "2026-11-02", "2026-11-02")
		if _, _, err := db.TrueUp(ctx, other); !errors.Is(err, rewards.ErrIdempotencyMismatch) {
			t.Fatalf("key reused: %v", err)
		}
		view, err := db.TrueUpView(ctx, trueUpReq("", "2026-11-01", "2026-11-02"))
		if err != nil || len(view) != 2 || view[0].Sessions != 2 || !view[0].Released.Equal(d("14")) || !view[1].Released.Equal(d("7")) ||
			!view[0].Withheld.Equal(d("28")) || !view[0].Booked.Equal(d("0.0018")) {
			t.Fatalf("view %+v %v", view, err)
		}
		checkInvariants(t, db)
		// The invariant checker holds the true-up's records against the ledger.
		if err := db.ExecRaw(ctx, `UPDATE trueup_days SET released = '0'`); err != nil {
			t.Fatal(err)
		}
		if err := db.CheckInvariants(ctx, "arcade"); err == nil || !strings.Contains(err.Error(), "released 21 with a shortfall of 0, its days 0 and 0") {
			t.Fatalf("a true-up whose days disagree with the ledger: %v", err)
		}
	})
}

// tally verify holds a true-up per run and per day, not only in total: a release moved
// from one day to another, or a release leg moved to another run, kept every total.
func TestVerifyHoldsTrueUpsPerRunAndDay(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		run := func(t *testing.T) *store.DB {
			db, _ := trueUpFixture(t, dia)
			if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0018")},
				rewards.BookedDay{Day: "2026-11-02", RevenueUSD: d("0.0009")}); err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.TrueUp(context.Background(), trueUpReq("t1", "2026-11-01", "2026-11-02")); err != nil {
				t.Fatal(err)
			}
			return db
		}
		// Day 1 released 14 of the 28 its sessions withheld, day 2 7 of 14.
		wantTamperCaught(t, run(t), "trueup_days", `UPDATE trueup_days SET released = released + CASE WHEN day = '2026-11-02' THEN 10 ELSE -10 END`,
			"true-up day 2026-11-02 of arcade released 17, more than its sessions withheld (14)")
		wantTamperCaught(t, run(t), "journal", `UPDATE journal SET ref = 'trueup:99' WHERE id = (SELECT MIN(id) FROM journal WHERE kind = 'buffer_release')`,
			"true-up run 99 is missing")
	})
}

// A booked amount changed after the true-up is refused unless it is a correction; a
// correction is counted in the next true-up's booked revenue.
func TestBookedCorrections(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db, clock := trueUpFixture(t, dia)
		ctx := context.Background()
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0016")}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01")); err != nil {
			t.Fatal(err)
		}
		// r = 0.8 = 1 − buffer: nothing released, yet the day is trued up. The booked
		// figure is then corrected up.
		wantBalance(t, db, "u1", "112", "0")
		if view, err := db.TrueUpView(ctx, trueUpReq("", "2026-11-01", "2026-11-02")); err != nil || !view[0].TruedUp || view[1].TruedUp ||
			!view[0].Released.IsZero() {
			t.Fatalf("view: %+v %v", view, err)
		}
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0020")}); !errors.Is(err, rewards.ErrTruedUp) {
			t.Fatalf("a changed amount of a trued-up day: %v", err)
		}
		got, err := importBooked(t, db, true, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0020")},
			rewards.BookedDay{Day: "2026-11-02", RevenueUSD: d("0.0006")})
		if err != nil || got.Corrected != 1 || got.Inserted != 1 {
			t.Fatalf("correction: %+v %v", got, err)
		}
		// Day 2: B = 0.0006 + the correction 0.0004 = 0.001 = E, so r = 1: u1's day-2
		// session releases its whole buffer (14); day 1 stays as it was.
		clock.Advance(time.Hour)
		run, _, err := db.TrueUp(ctx, trueUpReq("t2", "2026-11-02", "2026-11-02"))
		if err != nil || !run.Ratio.Equal(d("1")) || !run.Released.Equal(d("14")) || !run.Booked.Equal(d("0.001")) {
			t.Fatalf("second true-up: %+v %v", run, err)
		}
		wantBalance(t, db, "u1", "126", "0")
		wantBalance(t, db, "u2", "56", "0")
		checkInvariants(t, db)
	})
}

// A correction down larger than the next period's booked revenue is not lost: that
// period counts B = 0 and carries the rest to the true-up after it, which releases that
// much less. Before, the rest was dropped and the later period released its users'
// whole buffer on revenue already paid out.
func TestCorrectionDownCarriedForward(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db, clock := trueUpFixture(t, dia)
		ctx := context.Background()
		// Day 1: E = 0.002 (u1, u2), booked 0.002, r = 1: 14 released to each.
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.002")}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01")); err != nil {
			t.Fatal(err)
		}
		// Gamezop books day 1 at nothing after all: a correction of −0.002.
		if _, err := importBooked(t, db, true, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0")}); err != nil {
			t.Fatal(err)
		}
		// Day 2: E = 0.001 (u1), booked 0.0005: B = 0.0005 − 0.002 < 0, counted as 0,
		// −0.0015 carried.
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-02", RevenueUSD: d("0.0005")}); err != nil {
			t.Fatal(err)
		}
		run, _, err := db.TrueUp(ctx, trueUpReq("t2", "2026-11-02", "2026-11-02"))
		if err != nil || !run.Booked.IsZero() || !run.Ratio.IsZero() || !run.Released.IsZero() {
			t.Fatalf("day 2: %+v %v", run, err)
		}
		// Day 5: a session of u2 (E = 0.001) booked at 0.002: B = 0.002 − 0.0015 = 0.0005,
		// r = 0.5, nothing released. Without the carry, r = 2 released u2's whole 14.
		clock.Set(day1.AddDate(0, 0, 4).Add(time.Hour))
		ingestOne(t, db, in(session("u2", "s5", "0.001", 60)))
		clock.Set(day1.AddDate(0, 0, 8))
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-05", RevenueUSD: d("0.002")}); err != nil {
			t.Fatal(err)
		}
		run, _, err = db.TrueUp(ctx, trueUpReq("t5", "2026-11-05", "2026-11-05"))
		if err != nil || !run.Booked.Equal(d("0.0005")) || !run.Ratio.Equal(d("0.5")) || !run.Released.IsZero() {
			t.Fatalf("day 5: %+v %v", run, err)
		}
		checkInvariants(t, db)
	})
}

// Booked below 1 − buffer: nothing released, the shortfall recorded in @shortfall.
func TestTrueUpShortfall(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db, _ := trueUpFixture(t, dia)
		ctx := context.Background()
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0014")}); err != nil {
			t.Fatal(err)
		}
		// r = 0.7: shortfall (1 − 0.2 − 0.7) × 70 = 7 per session.
		run, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01"))
		if err != nil || !run.Released.IsZero() || !run.Shortfall.Equal(d("14")) || run.Users != 0 {
			t.Fatalf("run %+v %v", run, err)
		}
		wantBalance(t, db, "u1", "112", "0")
		checkInvariants(t, db)
	})
}

// Three concurrent true-ups of one period on Postgres, then a run killed before its
// commit: the period is released exactly once.
func TestTrueUpOnceUnderConcurrencyAndKill(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db, _ := trueUpFixture(t, dia)
		ctx := context.Background()
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.002")},
			rewards.BookedDay{Day: "2026-11-02", RevenueUSD: d("0.001")}); err != nil {
			t.Fatal(err)
		}
		// A run killed before commit leaves nothing: no release, no trued-up day.
		db.KillTrueUpBeforeCommit(true)
		if _, _, err := db.TrueUp(ctx, trueUpReq("k", "2026-11-01", "2026-11-01")); err == nil {
			t.Fatal("the killed run committed")
		}
		db.KillTrueUpBeforeCommit(false)
		wantBalance(t, db, "u1", "112", "0")

		n := 1
		if dia == store.Postgres {
			n = 3
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := db.TrueUp(ctx, trueUpReq(fmt.Sprint("c", i), "2026-11-01", "2026-11-02"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, rewards.ErrTruedUp):
					refused++
				default:
					t.Errorf("run %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if ok != 1 || refused != n-1 {
			t.Fatalf("%d runs released, %d refused", ok, refused)
		}
		// r = 1: every buffer released, exactly once: 56 + 14 per session.
		wantBalance(t, db, "u1", "140", "0")
		wantBalance(t, db, "u2", "70", "0")
		checkInvariants(t, db)
	})
}

// An import that changes a day while its true-up runs waits for it (Postgres) and is
// then refused as a change to a trued-up day, instead of replacing the amount the run
// used.
func TestImportWaitsForATrueUpInProgress(t *testing.T) {
	db, _ := trueUpFixture(t, store.Postgres)
	ctx := context.Background()
	if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0016")}); err != nil {
		t.Fatal(err)
	}
	importErr := make(chan error, 1)
	db.BeforeTrueUpCommit(func() {
		go func() {
			_, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0020")})
			importErr <- err
		}()
		// Wait until the import queues on the true-up lock.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if time.Now().After(deadline) {
				t.Error("the import did not wait for the true-up in progress")
				return
			}
			var waiting int
			if err := db.QueryRaw(ctx, &waiting, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`); err != nil {
				t.Error(err)
				return
			}
			if waiting > 0 {
				return
			}
		}
	})
	if _, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01")); err != nil {
		t.Fatal(err)
	}
	db.BeforeTrueUpCommit(nil)
	if err := <-importErr; !errors.Is(err, rewards.ErrTruedUp) {
		t.Fatalf("the import during the true-up: %v, want ErrTruedUp", err)
	}
}

// Corrections wait for a true-up that has an estimate to compare with; quarantined SPP
// sessions count in the estimate; sessions recorded before sessions kept their buffer are
// released only if the current rule reproduces what they withheld.
func TestTrueUpEdges(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db, clock := trueUpFixture(t, dia)
		ctx := context.Background()
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0016")},
			rewards.BookedDay{Day: "2026-11-03", RevenueUSD: d("0")}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01")); err != nil {
			t.Fatal(err)
		}
		if _, err := importBooked(t, db, true, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0020")}); err != nil {
			t.Fatal(err)
		}
		// 2026-11-03 has no session: its true-up leaves the correction for the next.
		run, _, err := db.TrueUp(ctx, trueUpReq("t3", "2026-11-03", "2026-11-03"))
		if err != nil || !run.Booked.IsZero() || !run.Released.IsZero() {
			t.Fatalf("empty day: %+v %v", run, err)
		}

		// Day 2: u1's session (0.001 USD, applied) and one quarantined SPP of 0.001 USD.
		// B = 0.0016 + the correction 0.0004 = 0.002 = E with the quarantined one: r = 1.
		clock.Set(day2.Add(12 * time.Hour))
		kept := session("nobody", "s-kept", "0.001", 60)
		if _, err := db.Record(ctx, []rewards.Inbound{{Property: "unconfigured", Event: kept, Raw: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
		if err := applyAll(ctx, db); err != nil { // kept quarantined: the property has no rules
			t.Fatal(err)
		}
		if err := db.ExecRaw(ctx, `UPDATE inbox SET property = 'arcade' WHERE property = 'unconfigured'`); err != nil {
			t.Fatal(err)
		}
		clock.Set(day2.AddDate(0, 0, 3))
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-02", RevenueUSD: d("0.0016")}); err != nil {
			t.Fatal(err)
		}
		view, err := db.TrueUpView(ctx, trueUpReq("", "2026-11-02", "2026-11-02"))
		if err != nil || view[0].Sessions != 2 || !view[0].Estimated.Equal(d("0.002")) {
			t.Fatalf("view with a quarantined session: %+v %v", view, err)
		}
		// An old session (no buffer kept) withheld under 0.2: a current buffer of 0.3
		// cannot say what to release; 0.2 can.
		if err := db.Tamper(ctx, "sessions", `UPDATE sessions SET buffer = NULL, session_cap = NULL WHERE session_id = 's3'`); err != nil {
			t.Fatal(err)
		}
		other := trueUpReq("t2", "2026-11-02", "2026-11-02")
		other.DefaultBuffer = d("0.3")
		if _, _, err := db.TrueUp(ctx, other); !errors.Is(err, rewards.ErrRuleUnknown) {
			t.Fatalf("an old session under another buffer: %v", err)
		}
		run, _, err = db.TrueUp(ctx, trueUpReq("t2", "2026-11-02", "2026-11-02"))
		if err != nil || !run.Ratio.Equal(d("1")) || !run.Released.Equal(d("14")) || !run.Booked.Equal(d("0.002")) {
			t.Fatalf("day 2: %+v %v", run, err)
		}
		checkInvariants(t, db)
	})
}

// The estimate leaves out SPPs kept quarantined because their property-id names another
// Gamezop property (its revenue is not in this property's booked figure); one without a
// property-id still counts. The view's shortfall for a day not trued up is what its
// true-up books, capped sessions included.
func TestTrueUpEstimateAndProjection(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db, clock := trueUpFixture(t, dia)
		ctx := context.Background()
		clock.Set(day2.Add(12 * time.Hour))
		for id, pid := range map[string]string{"s-other": "777", "s-none": ""} {
			kept := session("nobody", id, "0.001", 60)
			kept.Session.PropertyID = pid
			if _, err := db.Record(ctx, []rewards.Inbound{{Property: "unconfigured", Event: kept, Raw: []byte(`{}`)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := applyAll(ctx, db); err != nil {
			t.Fatal(err)
		}
		if err := db.ExecRaw(ctx, `UPDATE inbox SET property = 'arcade' WHERE property = 'unconfigured'`); err != nil {
			t.Fatal(err)
		}
		// A day not over yet is a bad request; one that ended less than the margin ago is
		// refused for now (503, retry in a moment).
		if _, _, err := db.TrueUp(ctx, trueUpReq("t0", "2026-11-02", "2026-11-02")); !errors.Is(err, rewards.ErrInvalidRequest) {
			t.Fatalf("a true-up of today: %v", err)
		}
		clock.Set(day2.AddDate(0, 0, 1).Add(time.Second))
		if _, _, err := db.TrueUp(ctx, trueUpReq("t0", "2026-11-02", "2026-11-02")); !errors.Is(err, rewards.ErrUnavailable) {
			t.Fatalf("a true-up of a day that ended a second ago: %v", err)
		}
		clock.Set(day2.AddDate(0, 0, 3))
		req := trueUpReq("", "2026-11-02", "2026-11-02")
		req.GamezopPropertyID = "1234"
		view, err := db.TrueUpView(ctx, req)
		if err != nil || view[0].Sessions != 2 || !view[0].Estimated.Equal(d("0.002")) {
			t.Fatalf("day 2 with another property's SPP: %+v %v", view, err)
		}
		req.GamezopPropertyID = "" // unknown: every kept SPP counts
		if view, err = db.TrueUpView(ctx, req); err != nil || view[0].Sessions != 3 || !view[0].Estimated.Equal(d("0.003")) {
			t.Fatalf("day 2 without a Gamezop property id: %+v %v", view, err)
		}

		// Day 1: u2's session capped at 30 of its net 56. B = 0.0012 of E = 0.002: r = 0.6.
		// u1 was credited 56, 14 beyond the booked 0.6 × 70 = 42; u2 got 30, less than 42.
		if err := db.Tamper(ctx, "sessions", `UPDATE sessions SET credited = 30, capped_excess = 26 WHERE session_id = 's2'`); err != nil {
			t.Fatal(err)
		}
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.0012")}); err != nil {
			t.Fatal(err)
		}
		req = trueUpReq("t1", "2026-11-01", "2026-11-01")
		req.GamezopPropertyID = "1234"
		if view, err = db.TrueUpView(ctx, req); err != nil || !view[0].Shortfall.Equal(d("14")) || view[0].TruedUp {
			t.Fatalf("projected shortfall: %+v %v", view, err)
		}
		run, _, err := db.TrueUp(ctx, req)
		if err != nil || !run.Shortfall.Equal(d("14")) || !run.Ratio.Equal(d("0.6")) {
			t.Fatalf("true-up: %+v %v", run, err)
		}
		if view, err = db.TrueUpView(ctx, req); err != nil || !view[0].Shortfall.Equal(d("14")) || !view[0].TruedUp {
			t.Fatalf("recorded shortfall: %+v %v", view, err)
		}
	})
}

// A session kept quarantined while its day was trued up (in the estimate, credited
// nothing) and replayed afterwards gets what the true-up would have given it in time: its
// buffer released at the run's ratio, or its shortfall booked, under the run's ref and in
// the run's and the day's figures. Before, its buffer stayed in @buffer for good (a day is
// trued up once) and nothing showed it.
func TestSessionReplayedAfterItsDayWasTruedUp(t *testing.T) {
	for _, tc := range []struct {
		name, booked         string // day 1's booked revenue; E = 0.002 (two sessions)
		released, shortfall  string // the day's figures after the replay
		u9pending, u1pending string
	}{
		// r = 1: each session releases its whole 14.
		{"ratio 1", "0.002", "28", "0", "70", "70"},
		// r = 0.7, below 1 − buffer: nothing released, each session's shortfall is
		// (1 − 0.2 − 0.7) × 70 = 7.
		{"ratio 0.7", "0.0014", "0", "14", "56", "56"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
				ctx := context.Background()
				clock := storetest.NewClock(day1.Add(10 * time.Hour))
				db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
				rec, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s1", "0.001", 60)), in(session("u9", "s9", "0.001", 60))})
				if err != nil {
					t.Fatal(err)
				}
				hold := func(k rewards.Kept) rewards.Decision {
					if k.User == "u9" {
						return rewards.Decision{Event: k.Event, Quarantine: "held for the test"}
					}
					return decide(k)
				}
				if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, hold); err != nil {
					t.Fatal(err)
				}
				clock.Set(day2.AddDate(0, 0, 3))
				if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d(tc.booked)}); err != nil {
					t.Fatal(err)
				}
				run, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01"))
				if err != nil || run.Sessions != 2 {
					t.Fatalf("true-up: %+v %v", run, err)
				}
				replay := func() []rewards.Applied {
					got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, Actor: "ops"}, decide)
					if err != nil {
						t.Fatal(err)
					}
					return got
				}
				if got := replay(); len(got) != 1 || got[0].ID != rec[1].EventID || got[0].Status != rewards.StatusApplied {
					t.Fatalf("replay: %+v", got)
				}
				if got := replay(); len(got) != 0 {
					t.Fatalf("a second replay: %+v", got)
				}
				wantBalance(t, db, "u1", tc.u1pending, "0")
				wantBalance(t, db, "u9", tc.u9pending, "0")
				// The publisher hears of u9's change once, credit and release together.
				// Before, the release saved the wallet a second time in the replay's
				// transaction: two balance.updated, the first with the credit alone.
				var changes []string
				for _, dl := range deliveries(t, db) {
					if b := decodeBody(t, dl); dl.Type == "balance.updated" && str(b.Data, "user") == "u9" {
						changes = append(changes, str(b.Data, "change", "pending")+" -> "+str(b.Data, "balance", "pending"))
					}
				}
				if want := tc.u9pending + " -> " + tc.u9pending; len(changes) != 1 || changes[0] != want {
					t.Fatalf("u9's balance.updated: %q, want one %q", changes, want)
				}
				days, err := db.TrueUpView(ctx, trueUpReq("", "2026-11-01", "2026-11-01"))
				if err != nil || len(days) != 1 || !days[0].TruedUp || !days[0].Released.Equal(d(tc.released)) || !days[0].Shortfall.Equal(d(tc.shortfall)) {
					t.Fatalf("day after the replay: %+v %v", days, err)
				}
				if err := db.CheckInvariants(ctx, "arcade"); err != nil {
					t.Fatal(err)
				}
				// A retry of the run answers what the run answered, not its figures with
				// the late session's added (it answered 28 for a run that released 14).
				again, replayed, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01"))
				if err != nil || !replayed || !again.Released.Equal(run.Released) || !again.Shortfall.Equal(run.Shortfall) || again.ID != run.ID {
					t.Fatalf("retry of the run: %+v, replayed %v, %v; the run answered %+v", again, replayed, err, run)
				}
				// The event's view lists every entry its replay wrote: the credit, and the
				// release or the shortfall (it listed the credit alone).
				_, posted, err := db.Event(ctx, rec[1].EventID)
				credited := d("0")
				for _, p := range posted {
					for _, l := range p.Legs {
						if l.System == "" {
							credited = credited.Add(l.Amount)
						}
					}
				}
				if err != nil || len(posted) != 2 || !credited.Equal(d(tc.u9pending)) {
					t.Fatalf("u9's event: %d entries crediting %s, want 2 crediting %s (%v)", len(posted), credited, tc.u9pending, err)
				}
				// The replay's audit entry says what it released or booked, under which run.
				audit, err := db.Audit(ctx, rewards.AuditFilter{Limit: 5})
				if err != nil || len(audit) != 3 || audit[0].Action != rewards.AuditReplay || !strings.Contains(audit[0].Detail, "its day 2026-11-01 was trued up by trueup:"+fmt.Sprint(run.ID)) {
					t.Fatalf("audit: %+v %v", audit, err)
				}
			})
		})
	}
}

// A period whose estimate is tiny and whose booked revenue is not has a ratio of 10^20
// or more: on Postgres it overflowed NUMERIC(38,18) on every retry, so those days could
// never be trued up.
func TestTrueUpOfAHugeRatio(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(day1.Add(10 * time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		ingestOne(t, db, in(session("u2", "s2", "0.000000000000000001", 60)))
		clock.Set(day2.AddDate(0, 0, 3))
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("100")}); err != nil {
			t.Fatal(err)
		}
		run, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01"))
		if err != nil || !run.Ratio.Equal(d("100000000000000000000")) {
			t.Fatalf("true-up: %+v, %v", run, err)
		}
		again, replayed, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01"))
		if err != nil || !replayed || !again.Ratio.Equal(run.Ratio) {
			t.Fatalf("retry: %+v, %v, %v", again, replayed, err)
		}
		if err := db.CheckInvariants(ctx, "arcade"); err != nil {
			t.Fatal(err)
		}
	})
}

// A true-up of days with no estimate (their sessions kept quarantined, say, under a
// wrong gamezop_property_id) compares nothing and leaves the days open. A session
// replayed into them later is released by the run that takes them then; before, the
// days were marked trued up, its buffer stayed in @buffer for good, and no run could
// take them again. A new figure for such a day's booked revenue just replaces it: it was
// a correction, carried into the next period's B, unrelated to its sessions.
func TestTrueUpWithNoEstimateLeavesItsDaysOpen(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(day1.Add(10 * time.Hour))
		db := storetest.Open(t, dia, clock.Now)
		foreign := session("u9", "s9", "0.001", 60)
		foreign.Session.PropertyID = "777" // kept, and not counted by a true-up of Gamezop property 1234
		if _, err := db.Record(ctx, []rewards.Inbound{in(foreign)}); err != nil {
			t.Fatal(err)
		}
		hold := quarantining(`property-id "777" does not match gamezop_property_id 1234`)
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, hold); err != nil {
			t.Fatal(err)
		}
		clock.Set(day2.Add(10 * time.Hour))
		ingestOne(t, db, in(session("u1", "s1", "0.001", 60))) // day 2: E = 0.001
		clock.Set(day2.AddDate(0, 0, 3))

		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.001")}); err != nil {
			t.Fatal(err)
		}
		req := trueUpReq("empty", "2026-11-01", "2026-11-01")
		req.GamezopPropertyID = "1234"
		empty, _, err := db.TrueUp(ctx, req)
		if err != nil || !empty.Estimated.IsZero() || !empty.Released.IsZero() {
			t.Fatalf("the run with no estimate: %+v %v", empty, err)
		}
		// Not a correction: the day is not trued up.
		if got, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.003")}); err != nil || got.Replaced != 1 {
			t.Fatalf("a new figure for the day: %+v %v", got, err)
		}
		if got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, Actor: "ops"}, decide); err != nil || len(got) != 1 {
			t.Fatalf("replay: %+v %v", got, err)
		}
		wantBalance(t, db, "u9", "56", "0")
		run, _, err := db.TrueUp(ctx, trueUpReq("again", "2026-11-01", "2026-11-01"))
		if err != nil || !run.Released.Equal(d("14")) {
			t.Fatalf("the day again, with u9's session: %+v %v", run, err)
		}
		wantBalance(t, db, "u9", "70", "0")
		// Day 2's B is its own: r = 0.8 = 1 − buffer releases nothing.
		if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-02", RevenueUSD: d("0.0008")}); err != nil {
			t.Fatal(err)
		}
		next, _, err := db.TrueUp(ctx, trueUpReq("day2", "2026-11-02", "2026-11-02"))
		if err != nil || !next.Booked.Equal(d("0.0008")) || !next.Released.IsZero() {
			t.Fatalf("day 2: %+v %v", next, err)
		}
		if err := db.CheckInvariants(ctx, "arcade"); err != nil {
			t.Fatal(err)
		}
	})
}

// tally verify holds each session record, which true-ups release against, to its
// revenue legs, and the day totals the per-day cap reads to the sessions. A raised
// withheld passed it, and the next true-up released 458 where the sessions withheld 21;
// a lowered day total lifted that day's cap.
func TestCheckInvariantsHoldsSessionsToTheirLegs(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		// Session records are append-only (migration 00029): tampering takes the triggers
		// out of the way, as the database's owner could.
		for _, c := range []struct{ name, table, tamper, want string }{
			{"withheld raised", "sessions", `UPDATE sessions SET withheld = '1400' WHERE session_id = 's1'`, "gross 70, credited + withheld + capped excess = 1456"},
			{"credited and gross raised", "sessions", `UPDATE sessions SET credited = '5600', gross = '5614' WHERE session_id = 's1'`, "credited 5600, withheld 14; its revenue legs credit 56 and withhold 14"},
			{"session removed", "sessions", `DELETE FROM sessions WHERE session_id = 's1'`, "has revenue legs (credited 56, withheld 14) but no session record"},
			// The per-day cap reads the day's total: lowered, it lifted the cap that day.
			{"day total lowered", "user_days", `UPDATE user_days SET revenue_credited = '0'`, "the day's revenue total (for per_user_per_day) is 0, its sessions credited 56"},
		} {
			t.Run(c.name, func(t *testing.T) {
				db, _ := trueUpFixture(t, dia)
				wantTamperCaught(t, db, c.table, c.tamper, c.want)
			})
		}
	})
}

// Session records are append-only (migration 00029): UPDATE, DELETE and (Postgres)
// TRUNCATE are refused, so the figures true-ups release against cannot be changed after
// the fact.
func TestSessionsAreAppendOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db, _ := trueUpFixture(t, dia)
		stmts := []string{`UPDATE sessions SET withheld = '1400'`, `DELETE FROM sessions`}
		if dia == store.Postgres {
			stmts = append(stmts, `TRUNCATE sessions`)
		}
		wantRefused(t, db, stmts)
		if err := db.CheckInvariants(ctx, "arcade"); err != nil {
			t.Errorf("after the refused changes: %v", err)
		}
	})
}
