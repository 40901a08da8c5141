package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// Review probe: a session kept quarantined on a day, counted in that day's true-up as
// "estimate only", then replayed after the true-up.
func TestZZReviewReplayAfterTrueUp(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(day1.Add(10 * time.Hour))
	db := storetest.Open(t, store.SQLite, clock.Now)
	ingestOne(t, db, in(session("u1", "s1", "0.001", 60)))
	clock.Set(day1.Add(11 * time.Hour))
	kept := session("u9", "s-kept", "0.001", 60)
	if _, err := db.Record(ctx, []rewards.Inbound{{Property: "unconfigured", Event: kept, Raw: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := applyAll(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := db.ExecRaw(ctx, `UPDATE inbox SET property = 'arcade' WHERE property = 'unconfigured'`); err != nil {
		t.Fatal(err)
	}
	clock.Set(day1.AddDate(0, 0, 3))
	if _, err := importBooked(t, db, false, rewards.BookedDay{Day: "2026-11-01", RevenueUSD: d("0.002")}); err != nil {
		t.Fatal(err)
	}
	run, _, err := db.TrueUp(ctx, trueUpReq("t1", "2026-11-01", "2026-11-01"))
	t.Logf("true-up: ratio=%s released=%s sessions=%d err=%v", run.Ratio, run.Released, run.Sessions, err)
	got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, Actor: "finance"}, decide)
	t.Logf("replay: %+v err=%v", got, err)
	b1, _ := db.Balance(ctx, "arcade", "u1")
	b9, _ := db.Balance(ctx, "arcade", "u9")
	t.Logf("u1 pending=%s  u9 pending=%s", b1.Pending, b9.Pending)
	_, _, err = db.TrueUp(ctx, trueUpReq("t2", "2026-11-01", "2026-11-01"))
	t.Logf("second true-up of the day: truedUp=%v err=%v", errors.Is(err, rewards.ErrTruedUp), err)
	t.Logf("invariants after: %v", db.CheckInvariants(ctx, "arcade"))
	view, err := db.TrueUpView(ctx, trueUpReq("", "2026-11-01", "2026-11-01"))
	t.Logf("view: %+v %v", view, err)
}
