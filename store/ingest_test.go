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

// quarantining is a decider that keeps every event quarantined with reason.
func quarantining(reason string) rewards.Decider {
	return func(k rewards.Kept) rewards.Decision { return rewards.Decision{Event: k.Event, Quarantine: reason} }
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

// Record keeps every column of each event as it came, whatever the batch's size (past
// Postgres's 65,535 bind parameters, as one statement of arrays; on SQLite in chunks
// of one transaction): a raw body of every byte value (and an empty one), a user id
// beyond ASCII, the reason an event cannot be mapped; a key repeated within the batch,
// or recorded before it, is a duplicate of the first. On Postgres also over the simple
// protocol (a pooler's), where the arrays travel as text.
func TestRecordKeepsEveryColumn(t *testing.T) {
	urls := map[string]string{"sqlite": storetest.URL(t, store.SQLite), "postgres": storetest.URL(t, store.Postgres)}
	urls["postgres simple protocol"] = storetest.URL(t, store.Postgres) + "&default_query_exec_mode=simple_protocol"
	for name, url := range urls {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			db := storetest.OpenURL(t, url, storetest.NewClock(t0).Now)
			every := make([]byte, 256)
			for i := range every {
				every[i] = byte(i)
			}
			if _, err := db.Record(ctx, []rewards.Inbound{in(session("u0", "s-old", "0.000012", 60))}); err != nil {
				t.Fatal(err)
			}
			odd := in(session("ünï-€-𝄞", "s-odd", "0.000012", 60))
			odd.Raw, odd.Unmapped = every, "no such game"
			empty := in(session("u2", "s-empty", "0.000012", 60))
			empty.Raw = nil
			batch := []rewards.Inbound{odd, empty, in(session("u0", "s-old", "0.000012", 60)), in(session("u3", "s-odd", "0.000012", 60))}
			// Enough rows that a VALUES list would pass Postgres's 65,535 bind parameters.
			for i := range 6000 {
				batch = append(batch, in(session(fmt.Sprintf("u%d", i), fmt.Sprintf("s-%04d", i), "0.000012", 60)))
			}
			got, err := db.Record(ctx, batch)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(batch) {
				t.Fatalf("%d receipts for %d events", len(got), len(batch))
			}
			if got[0].Duplicate || got[1].Duplicate || !got[2].Duplicate || !got[3].Duplicate || got[3].EventID != got[0].EventID {
				t.Fatalf("receipts = %+v, want the odd and empty new, a redelivery and a repeat of the odd duplicates", got[:4])
			}
			k, _, err := db.Event(ctx, got[0].EventID)
			if err != nil {
				t.Fatal(err)
			}
			if string(k.Raw) != string(every) || k.User != "ünï-€-𝄞" || k.DedupeKey != "s-odd" || k.Reason != "no such game" ||
				k.Source != rewards.SourceGamezopSPP || k.Status != rewards.StatusRecorded || !k.ReceivedAt.Equal(t0) ||
				k.Event.Session == nil || !k.Event.Session.RevenueUSD.Equal(d("0.000012")) {
				t.Errorf("recorded = %+v (raw %x), want every column as sent", k, k.Raw)
			}
			if k, _, err := db.Event(ctx, got[1].EventID); err != nil || len(k.Raw) != 0 || k.User != "u2" {
				t.Errorf("recorded with no body = %+v, %v", k, err)
			}
			seen := map[int64]bool{}
			for i, r := range got[4:] {
				if r.Duplicate || r.EventID == 0 || seen[r.EventID] {
					t.Fatalf("receipt %d = %+v, want a new event of its own", i+4, r)
				}
				seen[r.EventID] = true
			}
			if k, _, err := db.Event(ctx, got[len(got)-1].EventID); err != nil || k.DedupeKey != "s-5999" || k.User != "u5999" {
				t.Errorf("last of the batch = %+v, %v; want s-5999 of u5999", k, err)
			}
		})
	}
}

// The per-user daily cap holds across applier batches: the revenue a wallet was credited
// earlier in the day is read back for each (wallet, day) of a batch, two users' totals
// never mix, and a new UTC day starts from zero. Every session here is worth more than
// the per-session cap of 500, so each credits 500 until the day's 10,000 are reached.
func TestDayCapAcrossBatches(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		pending := func(user string) decimal.Decimal {
			t.Helper()
			b, err := db.Balance(ctx, "arcade", user)
			if err != nil {
				t.Fatal(err)
			}
			return b.Pending
		}
		for i := range 21 { // one batch each: the 20th reaches the cap, the 21st adds nothing
			ingestOne(t, db, in(session("u1", fmt.Sprintf("s1-%d", i), "0.01", 60)))
		}
		ingestOne(t, db, in(session("u2", "s2-0", "0.01", 60)))
		if got, got2 := pending("u1"), pending("u2"); !got.Equal(d("10000")) || !got2.Equal(d("500")) {
			t.Fatalf("after a day of sessions: u1 pending %s, u2 %s; want 10000 and 500", got, got2)
		}
		// One batch: u1 capped for today, u3 new today, u2 below the cap, and u1 again
		// after midnight UTC.
		batch := []rewards.Inbound{in(session("u1", "s1-late", "0.01", 60)), in(session("u3", "s3-0", "0.01", 60)),
			in(session("u2", "s2-1", "0.01", 60))}
		if _, err := db.Record(ctx, batch); err != nil {
			t.Fatal(err)
		}
		clock.Set(time.Date(2026, 11, 23, 0, 0, 1, 0, time.UTC))
		if _, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s1-next-day", "0.01", 60))}); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide); err != nil || len(got) != 4 {
			t.Fatalf("apply = %d events, %v; want the 4 in one batch", len(got), err)
		}
		for user, want := range map[string]string{"u1": "10500", "u2": "1000", "u3": "500"} {
			if got := pending(user); !got.Equal(d(want)) {
				t.Errorf("%s pending = %s, want %s", user, got, want)
			}
		}
		checkInvariants(t, db)
	})
}

// A batch that holds a redelivery answers for it from its own transaction. The rows of
// the keys that conflicted were looked up after the commit, on the batch's deadline: a
// database slow at that moment failed the lookup, and Record answered "unavailable,
// nothing saved" for a batch whose new events were committed.
func TestRecordAnswersFromItsTransaction(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, storetest.NewClock(t0).Now)
	if _, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-old", "0.001", 60))}); err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	store.BeforeCommit(db, func() {
		store.BeforeCommit(db, nil)
		// A lock queued behind the batch holds the inbox from its commit until well past
		// the batch's deadline.
		go func() {
			locked <- db.ExecRaw(context.Background(), `DO $$ BEGIN LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE; PERFORM pg_sleep(1.5); END $$`)
		}()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) { // polls the condition
			n, err := store.QueryInt(ctx, db, `SELECT count(*) FROM pg_locks WHERE relation = 'inbox'::regclass AND mode = 'AccessExclusiveLock' AND NOT granted`)
			if err != nil || n > 0 {
				return
			}
		}
		t.Error("the lock never queued behind the batch")
	})
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	got, err := db.Record(rctx, []rewards.Inbound{in(session("u2", "s-new", "0.001", 60)), in(session("u1", "s-old", "0.001", 60))})
	if err != nil {
		t.Fatalf("Record = %v for a batch it committed", err)
	}
	if got[0].Duplicate || !got[1].Duplicate || got[0].EventID == 0 || got[1].EventID == 0 {
		t.Fatalf("receipts %+v, want the new event recorded and the redelivery a duplicate", got)
	}
	if err := <-locked; err != nil {
		t.Fatal(err)
	}
}
