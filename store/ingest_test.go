package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func testRules() rewards.Rules {
	return rewards.Rules{
		Property: "arcade", Currency: "COIN", Scale: 0,
		Revenue: &rewards.RevenueRule{
			Version: "r1", UnitsPerUSD: d("100000"), Share: d("0.7"), Buffer: d("0.2"),
			Hold: 24 * time.Hour, MinSessionSeconds: 10,
			Countries:     map[string]decimal.Decimal{"*": d("1")},
			PerSessionCap: d("500"), PerUserPerDayCap: d("10000"),
		},
		Targets: []rewards.ScoreTarget{{ID: "snake-500", Version: "t1", Game: "NyM_JGWcx", MinScore: d("500"),
			Direction: rewards.Higher, Reward: d("50"), Per: rewards.PerOnce, States: []string{"over"}}},
		Achievements: []rewards.AchievementRule{{Source: rewards.SourceGamePush, ID: "685", Version: "a1", Reward: d("100")}},
	}
}

func session(user, id, revenue string, secs int64) rewards.Event {
	return rewards.Event{Source: rewards.SourceGamezopSPP, Kind: rewards.KindSession, Type: "spp", DedupeKey: id, User: user,
		Session: &rewards.Session{SessionID: id, Country: "IN", RevenueUSD: d(revenue), DurationSeconds: secs}}
}

func score(user, play, value string) rewards.Event {
	return rewards.Event{Source: rewards.SourceGamezopScores, Kind: rewards.KindScore, Type: "over",
		DedupeKey: fmt.Sprintf("%s|%s|%s", user, play, value), User: user,
		Score: &rewards.Score{Game: "NyM_JGWcx", Value: d(value), State: "over", PlayID: play}}
}

func in(ev rewards.Event) rewards.Inbound {
	return rewards.Inbound{Property: "arcade", Event: ev, Raw: []byte(`{}`)}
}

// decide is the app's decision as these tests need it: every property applies
// testRules, except "unconfigured", which has none.
func decide(k rewards.Kept) rewards.Decision {
	if k.Property == "unconfigured" {
		return rewards.Decision{Event: k.Event}
	}
	r := testRules()
	if k.Property == "other" { // the second property of the report tests: PTS, 2 decimal places
		r.Property, r.Currency, r.Scale = "other", "PTS", 2
	}
	return rewards.Decision{Event: k.Event, Rules: &r}
}

// ingest records a batch as a receiver does, then applies the backlog as the applier
// does, and answers the receipts with each event's status once applied.
// retryUnavailable runs f again, up to five times, while it fails with "unavailable", as
// a client retries a 503 with the same idempotency key or event. Load tests use it: on
// SQLite their writers queue for one write lock, and on a loaded machine (CI, -race) one
// may wait past the busy timeout.
func retryUnavailable(f func() error) error {
	err := f()
	for try := 0; try < 5 && errors.Is(err, rewards.ErrUnavailable); try++ {
		err = f()
	}
	return err
}

func ingest(db *store.DB, ctx context.Context, batch []rewards.Inbound) ([]rewards.Receipt, error) {
	res, err := db.Record(ctx, batch)
	if err != nil {
		return nil, err
	}
	if err := applyAll(ctx, db); err != nil {
		return nil, err
	}
	for i := range res {
		k, _, err := db.Event(ctx, res[i].EventID)
		if err != nil {
			return nil, err
		}
		res[i].Status = k.Status
	}
	return res, nil
}

// applyAll runs the applier until no recorded event is left.
func applyAll(ctx context.Context, db *store.DB) error {
	for {
		got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide)
		if err != nil || len(got) == 0 {
			return err
		}
	}
}

func ingestOne(t *testing.T, db *store.DB, inc rewards.Inbound) rewards.Receipt {
	t.Helper()
	res, err := ingest(db, context.Background(), []rewards.Inbound{inc})
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	return res[0]
}

func wantBalance(t *testing.T, db *store.DB, user, pending, available string) {
	t.Helper()
	b, err := db.Balance(context.Background(), "arcade", user)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Pending.Equal(d(pending)) || !b.Available.Equal(d(available)) {
		t.Fatalf("balance of %s = pending %s available %s, want %s / %s", user, b.Pending, b.Available, pending, available)
	}
}

func TestIngestCreditsOnceAndDedupes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		// 0.000012 USD × 0.7 × 100000 = 0.84 gross; 0.168 withheld; 0.672 to the user.
		r := ingestOne(t, db, in(session("u1", "s-1", "0.000012", 163)))
		if r.Duplicate || r.Status != rewards.StatusApplied || r.EventID == 0 {
			t.Fatalf("first delivery: %+v", r)
		}
		again := ingestOne(t, db, in(session("u1", "s-1", "0.000012", 163)))
		if !again.Duplicate || again.EventID != r.EventID {
			t.Fatalf("redelivery: %+v, want duplicate of %d", again, r.EventID)
		}
		wantBalance(t, db, "u1", "0.672", "0")
		wantBalance(t, db, "nobody", "0", "0")

		txns, err := db.Transactions(context.Background(), "arcade", "u1", 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(txns) != 1 || txns[0].Kind != "revenue" || !txns[0].Amount.Equal(d("0.672")) || txns[0].Bucket != "pending" ||
			txns[0].Ref != fmt.Sprintf("event:%d", r.EventID) || txns[0].RuleVersion != "r1" {
			t.Fatalf("transactions = %+v", txns)
		}
	})
}

func TestScoreTargetPaysOnceAcrossEvents(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		ingestOne(t, db, in(score("u1", "p1", "499")))
		wantBalance(t, db, "u1", "0", "0")
		ingestOne(t, db, in(score("u1", "p2", "500")))
		ingestOne(t, db, in(score("u1", "p3", "900")))
		wantBalance(t, db, "u1", "50", "0")
	})
}

func TestQuarantineWithoutRules(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		inc := in(session("u1", "s-q", "1", 100))
		inc.Property = "unconfigured"
		r := ingestOne(t, db, inc)
		k, _, err := db.Event(context.Background(), r.EventID)
		if err != nil || r.Status != rewards.StatusQuarantined || k.Reason == "" || k.AppliedAt == nil {
			t.Fatalf("result = %+v, event %+v, %v; want quarantined with a reason", r, k, err)
		}
		if b, _ := db.Balance(context.Background(), "unconfigured", "u1"); !b.Pending.IsZero() {
			t.Fatalf("balance %+v", b)
		}
	})
}

// Many deliveries of one event at once: one row, one "accepted", one credit.
func TestConcurrentRedeliveries(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		const n = 24
		var wg sync.WaitGroup
		results := make([]rewards.Receipt, n)
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				res, err := ingest(db, context.Background(), []rewards.Inbound{in(session("u1", "s-c", "0.001", 60))})
				if err == nil {
					results[i] = res[0]
				}
				errs[i] = err
			}(i)
		}
		wg.Wait()
		accepted := 0
		for i := range results {
			if errs[i] != nil {
				t.Fatalf("delivery %d: %v", i, errs[i])
			}
			if !results[i].Duplicate {
				accepted++
			}
		}
		if accepted != 1 {
			t.Fatalf("%d deliveries accepted, want exactly 1", accepted)
		}
		// 0.001 × 0.7 × 100000 = 70 gross, 14 withheld, 56 credited.
		wantBalance(t, db, "u1", "56", "0")
	})
}

func TestUnavailableAfterClose(t *testing.T) {
	db := storetest.Open(t, store.SQLite, nil)
	_ = db.Close()
	_, err := ingest(db, context.Background(), []rewards.Inbound{in(session("u1", "s-x", "1", 100))})
	if err == nil {
		t.Fatal("Ingest on a closed database succeeded")
	}
	_ = errors.Is(err, rewards.ErrUnavailable)
}
