package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// The console's figures, on an inbox with yesterday's and today's events in every
// status: today's counts leave yesterday out, the open counts and the oldest backlog
// event are per property, and wallet totals are exact sums.
func TestConsoleFigures(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		unconfigured := func(ev rewards.Event) rewards.Inbound {
			inc := in(ev)
			inc.Property = "unconfigured" // decide quarantines it: no rules
			return inc
		}
		// Yesterday: one applied, one quarantined.
		if _, err := ingest(db, ctx, []rewards.Inbound{in(session("u1", "y-1", "0.000012", 60)), unconfigured(session("u9", "y-2", "1", 60))}); err != nil {
			t.Fatal(err)
		}
		today := t0.Truncate(24 * time.Hour).Add(24 * time.Hour)
		clock.Set(today.Add(time.Hour))
		// Today: two sessions applied, one more quarantined.
		if _, err := ingest(db, ctx, []rewards.Inbound{in(session("u1", "t-1", "0.000012", 60)), in(session("u2", "t-2", "0.000012", 60)),
			unconfigured(session("u9", "t-3", "1", 60))}); err != nil {
			t.Fatal(err)
		}
		// And two recorded, not applied yet, the older first.
		clock.Set(today.Add(2 * time.Hour))
		if _, err := db.Record(ctx, []rewards.Inbound{in(score("u1", "p1", "600"))}); err != nil {
			t.Fatal(err)
		}
		clock.Set(today.Add(3 * time.Hour))
		if _, err := db.Record(ctx, []rewards.Inbound{in(score("u2", "p2", "700"))}); err != nil {
			t.Fatal(err)
		}

		got := map[string]int64{}
		if err := db.EventCountsSince(ctx, today, func(p string, s rewards.Source, status string, n int64) {
			got[fmt.Sprintf("%s/%s/%s", p, s, status)] = n
		}); err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{
			"arcade/gamezop_spp/applied":           2,
			"arcade/gamezop_scores/recorded":       2,
			"unconfigured/gamezop_spp/quarantined": 1,
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("today's counts = %v, want %v", got, want)
		}
		// A cut before everything counts everything; one after counts nothing.
		all := int64(0)
		if err := db.EventCountsSince(ctx, t0.Add(-time.Hour), func(_ string, _ rewards.Source, _ string, n int64) { all += n }); err != nil || all != 7 {
			t.Fatalf("counted %d since before the first event (%v), want 7", all, err)
		}
		none := int64(0)
		if err := db.EventCountsSince(ctx, today.Add(4*time.Hour), func(_ string, _ rewards.Source, _ string, n int64) { none += n }); err != nil || none != 0 {
			t.Fatalf("counted %d since after the last event (%v), want 0", none, err)
		}

		type open struct {
			recorded, quarantined int64
			oldest                time.Time
		}
		opens := map[string]open{}
		if err := db.OpenEventCounts(ctx, func(p string, b rewards.Backlog, q int64) {
			opens[p] = open{b.Events, q, b.OldestRecord}
		}); err != nil {
			t.Fatal(err)
		}
		if o := opens["arcade"]; o.recorded != 2 || o.quarantined != 0 || !o.oldest.Equal(today.Add(2*time.Hour)) {
			t.Fatalf("arcade open events = %+v, want 2 recorded, the oldest at %s", o, today.Add(2*time.Hour))
		}
		if o := opens["unconfigured"]; o.recorded != 0 || o.quarantined != 2 || !o.oldest.IsZero() {
			t.Fatalf("unconfigured open events = %+v, want 2 quarantined", o)
		}

		fund(t, db, "u3", "7.25")
		totals, err := db.WalletTotals(ctx)
		if err != nil || len(totals) != 1 || totals[0].Property != "arcade" {
			t.Fatalf("totals = %+v, %v; want arcade's only", totals, err)
		}
		if tot := totals[0]; !tot.Pending.Equal(d("2.016")) || !tot.Available.Equal(d("7.25")) || !tot.Redeemed.IsZero() {
			t.Fatalf("arcade totals = %+v, want pending 2.016 (3 × 0.672), available 7.25", tot)
		}

		reasons := map[string]int64{}
		if err := db.QuarantineReasons(ctx, "", func(p, reason string, n int64) { reasons[p+": "+reason] = n }); err != nil {
			t.Fatal(err)
		}
		if len(reasons) != 1 {
			t.Fatalf("reasons = %v, want one reason for both unconfigured events", reasons)
		}
		for key, n := range reasons {
			reason := key[len("unconfigured: "):]
			ids, err := db.QuarantinedIDs(ctx, "unconfigured", reason, 0, 10)
			if err != nil || n != 2 || len(ids) != 2 || ids[0] >= ids[1] {
				t.Fatalf("reason %q: %d events, ids %v (%v); want 2, oldest first", reason, n, ids, err)
			}
			if ids, _ := db.QuarantinedIDs(ctx, "unconfigured", reason, 0, 1); len(ids) != 1 {
				t.Fatalf("limit 1 gave %v", ids)
			}
			if ids, _ := db.QuarantinedIDs(ctx, "arcade", reason, 0, 10); len(ids) != 0 {
				t.Fatalf("another property's ids: %v", ids)
			}
		}
	})
}

// A signed-out console session stays ended until its expiry, whatever the replica asks;
// signing out twice is once, and a record past its expiry is removed by a later
// sign-out.
func TestConsoleSignOuts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		if ended, err := db.ConsoleSessionEnded(ctx, "n1"); err != nil || ended {
			t.Fatalf("before signing out: %v %v", ended, err)
		}
		for range 2 {
			if err := db.EndConsoleSession(ctx, "n1", t0.Add(8*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.EndConsoleSession(ctx, "n2", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{"n1", "n2"} {
			if ended, err := db.ConsoleSessionEnded(ctx, n); err != nil || !ended {
				t.Fatalf("%s after signing out: %v %v", n, ended, err)
			}
		}
		clock.Set(t0.Add(2 * time.Hour)) // n2 has expired, n1 has not
		if err := db.EndConsoleSession(ctx, "n3", t0.Add(10*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if n, err := store.QueryInt(ctx, db, `SELECT count(*) FROM console_signouts`); err != nil || n != 2 {
			t.Fatalf("records after n2 expired: %d %v, want n1 and n3", n, err)
		}
		if ended, err := db.ConsoleSessionEnded(ctx, "n1"); err != nil || !ended {
			t.Fatalf("n1 before its expiry: %v %v", ended, err)
		}
	})
}
