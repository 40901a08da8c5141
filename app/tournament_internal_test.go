package app

import (
	"context"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// The closer on its schedule, fired by hand: a tick after end + grace closes the window
// and pays; stop waits, and a tick after stop runs nothing.
func TestTournamentCloserSchedule(t *testing.T) {
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	tour := rewards.Tournament{ID: "cup", Version: "c1", Game: "g", Direction: rewards.Lower, Start: start, End: start.Add(2 * time.Hour),
		Grace: time.Minute, Ties: rewards.TiesFirst, MinPlays: 1, Prizes: []rewards.Prize{{From: 1, To: 1, Amount: decimal.NewFromInt(5)}}}
	clock := storetest.NewClock(start.Add(time.Hour))
	db := storetest.Open(t, store.SQLite, clock.Now)
	a := New(db, Options{Properties: []Property{{ID: "arcade", Currency: "COIN", Rules: rewards.Rules{Property: "arcade", Currency: "COIN",
		Tournaments: []rewards.Tournament{tour}}}}})
	t.Cleanup(a.Close)
	ctx := context.Background()
	ev := rewards.Event{Source: rewards.SourceTrackScore, Kind: rewards.KindScore, Type: "score.updated", DedupeKey: "1", User: "ann",
		Score: &rewards.Score{Game: "g", Value: decimal.NewFromInt(42)}}
	if _, err := db.Record(ctx, []rewards.Inbound{{Property: "arcade", Event: ev, Raw: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	m := newManual()
	stop := a.startTournamentCloser(ctx, m.trigger)
	m.fire() // before end + grace: nothing
	if rec, err := db.TournamentWindow(ctx, "arcade", "cup", start); err != nil || !rec.ClosedAt.IsZero() {
		t.Fatalf("closed early: %+v, %v", rec, err)
	}
	clock.Set(start.Add(2*time.Hour + time.Minute + closeMargin))
	m.fire()
	rec, err := db.TournamentWindow(ctx, "arcade", "cup", start)
	if err != nil || rec.ClosedAt.IsZero() || !rec.Paid.Equal(decimal.NewFromInt(5)) {
		t.Fatalf("after the tick at end + grace: %+v, %v", rec, err)
	}
	stop()
	<-m.stopped
	m.fire() // after stop: runs nothing (and must not panic)
	b, err := db.Balance(ctx, "arcade", "ann")
	if err != nil || !b.Pending.Equal(decimal.NewFromInt(5)) {
		t.Fatalf("ann's balance %+v, %v", b, err)
	}
}
