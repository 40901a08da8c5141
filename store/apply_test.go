package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// One event's view is read in one snapshot: a replay committing between the read of the
// inbox row and the read of its entries showed the event still quarantined beside the
// entries the replay had just produced.
func TestEventViewIsOneSnapshot(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		res, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s1", "0.000012", 100))})
		if err != nil {
			t.Fatal(err)
		}
		keep := quarantining("kept")
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, keep); err != nil {
			t.Fatal(err)
		}
		id := res[0].EventID
		store.BeforeQuery(db, "FROM journal j JOIN entries", func() {
			if _, err := db.Apply(context.Background(), rewards.Claim{Status: rewards.StatusQuarantined, IDs: []int64{id}, Limit: 1, Actor: "ops"}, decide); err != nil {
				t.Error(err)
			}
		})
		k, posted, err := db.Event(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if (k.Status == rewards.StatusQuarantined) != (len(posted) == 0) {
			t.Fatalf("event %s (reason %q) with %d ledger entries", k.Status, k.Reason, len(posted))
		}
		if k, posted, err := db.Event(ctx, id); err != nil || k.Status != rewards.StatusApplied || len(posted) != 1 {
			t.Fatalf("after the replay: %s, %d entries, %v", k.Status, len(posted), err)
		}
	})
}

// A list of events reads only as much of each raw body as asked (a page of a thousand
// 64 KiB bodies was 64 MB read for nothing), and each body's whole size.
func TestEventListReadsRawBodiesOnlyAsAsked(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		ev := in(session("u1", "s1", "0.000012", 100))
		ev.Raw = []byte(`{"pad":"` + strings.Repeat("é", 100) + `"}`) // 210 bytes, 110 characters
		if _, err := db.Record(ctx, []rewards.Inbound{ev}); err != nil {
			t.Fatal(err)
		}
		for upTo, want := range map[int]string{0: "", 5: `{"pad`, 1000: string(ev.Raw)} {
			list, err := db.Events(ctx, rewards.EventFilter{RawUpTo: upTo})
			if err != nil || len(list) != 1 || string(list[0].Raw) != want || list[0].RawSize != len(ev.Raw) {
				t.Fatalf("RawUpTo %d: %+v, %v; want raw %q and size %d", upTo, list, err, want, len(ev.Raw))
			}
		}
	})
}

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
				if _, err := ingest(db, context.Background(), batch); err != nil {
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

// A failure late in an apply batch — after every effect and mark is written, before
// commit — leaves nothing of it: the events stay recorded, with no entries, wallet
// changes or claims, and the next Apply applies them once.
func TestFailureMidBatchLeavesNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		batch := []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(score("u1", "p1", "600"))}
		rec, err := db.Record(ctx, batch)
		if err != nil || rec[0].Status != rewards.StatusRecorded {
			t.Fatalf("Record = %+v, %v", rec, err)
		}
		store.FailAfterApply(db, errors.New("disk on fire"))
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide); !errors.Is(err, rewards.ErrUnavailable) {
			t.Fatalf("Apply = %v, want ErrUnavailable (nothing saved, retry)", err)
		}
		wantBalance(t, db, "u1", "0", "0")
		if txns, _ := db.Transactions(ctx, "arcade", "u1", 10, 0); len(txns) != 0 {
			t.Fatalf("entries left behind: %+v", txns)
		}
		if b, _ := db.Backlog(ctx); b.Events != 2 {
			t.Fatalf("backlog %+v, want both events still recorded", b)
		}
		store.FailAfterApply(db, nil)
		if err := applyAll(ctx, db); err != nil {
			t.Fatal(err)
		}
		// The target pays: no claim was left behind either.
		wantBalance(t, db, "u1", "50.672", "0")
		if err := db.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}

// An applier whose connection dies between its claim and its commit leaves its batch
// recorded; the next claim, by another applier, applies it exactly once.
func TestApplierKilledBetweenClaimAndCommit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		u := storetest.URL(t, dia)
		victim, survivor := storetest.OpenURL(t, u, nil), storetest.OpenURL(t, u, nil)
		var batch []rewards.Inbound
		for i := range 30 {
			batch = append(batch, in(session(fmt.Sprintf("u%d", i%4), fmt.Sprintf("s-%d", i), "0.000012", 60)))
		}
		if _, err := victim.Record(ctx, batch); err != nil {
			t.Fatal(err)
		}
		killed := false
		store.KillAfterApply(victim, func() { killed = true })
		if _, err := victim.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, Limit: 10}, decide); err == nil || !killed {
			t.Fatalf("killed apply: err %v, killed %v", err, killed)
		}
		if b, _ := survivor.Backlog(ctx); b.Events != 30 {
			t.Fatalf("backlog after the kill %+v, want all 30 recorded", b)
		}
		if err := applyAll(ctx, survivor); err != nil {
			t.Fatal(err)
		}
		// The victim's pool reconnects; it finds nothing left to do.
		if got, err := victim.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide); err != nil || len(got) != 0 {
			t.Fatalf("victim after restart: %+v, %v", got, err)
		}
		for i := range 4 {
			// 30 sessions over 4 users: u0 and u1 have 8, u2 and u3 have 7, 0.672 each.
			want := map[bool]string{true: "5.376", false: "4.704"}[i < 2]
			wantBalance(t, survivor, fmt.Sprintf("u%d", i), want, "0")
		}
		if err := survivor.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}

// Two and three appliers, each with its own pool, drain one backlog on Postgres: every
// event is applied exactly once, none is lost, and no applier fails (no deadlock
// surfaces: lock order and SKIP LOCKED keep them apart).
func TestAppliersOnOneDatabaseApplyEachEventOnce(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d appliers", n), func(t *testing.T) {
			ctx := context.Background()
			u := storetest.URL(t, store.Postgres)
			recorder := storetest.OpenURL(t, u, nil)
			const events, users = 1200, 7
			var batch []rewards.Inbound
			for i := range events {
				user := fmt.Sprintf("u%d", i%users)
				if i%5 == 0 {
					batch = append(batch, in(score(user, fmt.Sprintf("p%d", i), "600"))) // the target pays once per user
				} else {
					batch = append(batch, in(session(user, fmt.Sprintf("s-%d", i), "0.000012", 60)))
				}
			}
			if _, err := recorder.Record(ctx, batch); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			applied := make([][]rewards.Applied, n)
			errs := make([]error, n)
			for a := range n {
				db := storetest.OpenURL(t, u, nil)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, Limit: 50}, decide)
						if err != nil {
							errs[a] = err
							return
						}
						if len(got) == 0 {
							return
						}
						applied[a] = append(applied[a], got...)
					}
				}()
			}
			wg.Wait()
			seen := map[int64]int{}
			for a := range n {
				if errs[a] != nil {
					t.Fatalf("applier %d: %v", a, errs[a])
				}
				for _, ap := range applied[a] {
					seen[ap.ID]++
					if ap.Status != rewards.StatusApplied {
						t.Errorf("event %d: %s %s", ap.ID, ap.Status, ap.Reason)
					}
				}
			}
			if len(seen) != events {
				t.Fatalf("%d events applied, want %d", len(seen), events)
			}
			for id, c := range seen {
				if c != 1 {
					t.Errorf("event %d applied %d times", id, c)
				}
			}
			// Each user: sessions × 0.672, plus the target's 50 once.
			for i := range users {
				sessions := 0
				for j := i; j < events; j += users {
					if j%5 != 0 {
						sessions++
					}
				}
				want := d("0.672").Mul(d(fmt.Sprint(sessions))).Add(d("50"))
				b, err := recorder.Balance(ctx, "arcade", fmt.Sprintf("u%d", i))
				if err != nil || !b.Pending.Equal(want) {
					t.Errorf("u%d pending %s, want %s (%v)", i, b.Pending, want, err)
				}
			}
			if err := recorder.CheckInvariants(ctx, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// An event whose rules fail to evaluate is quarantined with the reason; the rest of its
// batch applies.
func TestRuleFailureQuarantinesOnlyThatEvent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		bad := in(score("u1", "p1", "600"))
		rec, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), bad, in(session("u2", "s-2", "0.000012", 60))})
		if err != nil {
			t.Fatal(err)
		}
		broken := func(k rewards.Kept) rewards.Decision {
			d := decide(k)
			if k.ID == rec[1].EventID {
				r := *d.Rules
				r.Targets = append([]rewards.ScoreTarget(nil), r.Targets...)
				r.Targets[0].Direction = "sideways" // a rule the config would never let through
				d.Rules = &r
			}
			return d
		}
		got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, broken)
		if err != nil || len(got) != 3 {
			t.Fatalf("Apply = %+v, %v", got, err)
		}
		for _, ap := range got {
			// Record writes a batch in key order, so ids do not follow the batch's order.
			if quarantined := ap.ID == rec[1].EventID; quarantined != (ap.Status == rewards.StatusQuarantined) ||
				quarantined != strings.Contains(ap.Reason, "sideways") {
				t.Fatalf("outcomes %+v (the bad one is %d)", got, rec[1].EventID)
			}
		}
		k, _, _ := db.Event(ctx, rec[1].EventID)
		if k.Status != rewards.StatusQuarantined || !strings.Contains(k.Reason, "sideways") {
			t.Fatalf("stored %+v", k)
		}
		wantBalance(t, db, "u1", "0.672", "0")
		wantBalance(t, db, "u2", "0.672", "0")
	})
}

// An event whose stored form this version cannot decode (written by another version, or
// damaged) is quarantined with the reason, and the rest of its batch applies: failing
// the claim would stop the applier at that event for good. The event is still listed.
func TestUndecodableEventIsQuarantinedNotStalling(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		rec, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(session("u2", "s-2", "0.000012", 60))})
		if err != nil {
			t.Fatal(err)
		}
		bad := rec[0].EventID
		if err := db.ExecRaw(ctx, `UPDATE inbox SET event = '{"session": "not a session"}' WHERE id = ?`, bad); err != nil {
			t.Fatal(err)
		}
		got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide)
		if err != nil || len(got) != 2 {
			t.Fatalf("Apply = %+v, %v", got, err)
		}
		for _, ap := range got {
			if quarantined := ap.ID == bad; quarantined != (ap.Status == rewards.StatusQuarantined) ||
				quarantined != strings.Contains(ap.Reason, "could not be decoded") {
				t.Fatalf("outcomes %+v (the undecodable one is %d)", got, bad)
			}
		}
		k, _, err := db.Event(ctx, bad)
		if err != nil || k.Status != rewards.StatusQuarantined || k.Undecodable == "" {
			t.Fatalf("stored %+v, %v", k, err)
		}
		if list, err := db.Events(ctx, rewards.EventFilter{}); err != nil || len(list) != 2 {
			t.Fatalf("listing with an undecodable event: %d, %v", len(list), err)
		}
		wantBalance(t, db, "u2", "0.672", "0")

		// A replay whose decision does not recover it (the raw body does not decode
		// either) leaves it quarantined, its stored form untouched.
		if got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined}, decide); err != nil ||
			len(got) != 1 || got[0].Status != rewards.StatusQuarantined {
			t.Fatalf("replay not recovering it: %+v, %v", got, err)
		}
		if k, _, err := db.Event(ctx, bad); err != nil || k.Undecodable == "" {
			t.Fatalf("the stored form was overwritten: %+v, %v", k, err)
		}
		// A replay that decodes the raw body again (the app's decide does) applies it.
		reread := func(k rewards.Kept) rewards.Decision {
			k.Event = session("u1", "s-1", "0.000012", 60)
			return decide(k)
		}
		if got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined}, reread); err != nil ||
			len(got) != 1 || got[0].Status != rewards.StatusApplied {
			t.Fatalf("replay recovering it: %+v, %v", got, err)
		}
		wantBalance(t, db, "u1", "0.672", "0")
		if k, _, err := db.Event(ctx, bad); err != nil || k.Undecodable != "" || k.Event.Session == nil {
			t.Fatalf("after the replay: %+v, %v", k, err)
		}
	})
}

// A replay of the quarantine waits for an event another transaction holds (another
// replay of it), then takes it if it is still quarantined: skipping it, the replay walked
// past it and never reported it when that transaction rolled back.
func TestReplayWaitsForAHeldEvent(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, store.Postgres)
	db := storetest.OpenURL(t, url, storetest.NewClock(t0).Now)
	q := in(session("u1", "s-q", "0.000012", 60))
	q.Property = "unconfigured"
	r := ingestOne(t, db, q)
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	holder, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.Exec(`SELECT id FROM inbox WHERE id = $1 FOR UPDATE`, r.EventID); err != nil {
		t.Fatal(err)
	}
	fixed := func(k rewards.Kept) rewards.Decision {
		r := testRules()
		return rewards.Decision{Event: k.Event, Rules: &r}
	}
	type outcome struct {
		got []rewards.Applied
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined}, fixed)
		done <- outcome{got, err}
	}()
	var res outcome
	poll := time.NewTicker(5 * time.Millisecond)
	defer poll.Stop()
	deadline := time.After(20 * time.Second)
wait:
	for {
		select {
		case res = <-done:
			break wait // it did not wait: the check below fails
		case <-deadline:
			t.Fatal("the replay neither waited for the held event nor finished")
		case <-poll.C:
		}
		var waiting int
		if err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM inbox%'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			if err := holder.Rollback(); err != nil { // the other replay gave up
				t.Fatal(err)
			}
			res = <-done
			break
		}
	}
	if res.err != nil || len(res.got) != 1 || res.got[0].ID != r.EventID || res.got[0].Status != rewards.StatusApplied {
		t.Fatalf("replay while another held the event: %+v, %v; want it waited and applied it", res.got, res.err)
	}
}

// A duplicate inside one batch is recorded once.
func TestDuplicateWithinOneBatch(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		ev := in(session("u1", "s-twice", "0.000012", 60))
		res, err := ingest(db, context.Background(), []rewards.Inbound{ev, ev})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Duplicate || !res[1].Duplicate || res[0].EventID != res[1].EventID {
			t.Fatalf("receipts %+v", res)
		}
		wantBalance(t, db, "u1", "0.672", "0")
	})
}

// Quarantined events are re-applied exactly once, with the receipt day of the original,
// however many replays of the one event run at once.
func TestReplayAppliesOnce(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		q := in(session("u1", "s-q", "0.000012", 60))
		q.Property = "unconfigured"
		r := ingestOne(t, db, q)
		if r.Status != rewards.StatusQuarantined {
			t.Fatalf("%+v", r)
		}
		kept, err := db.Events(ctx, rewards.EventFilter{Status: rewards.StatusQuarantined, Property: "unconfigured"})
		if err != nil || len(kept) != 1 || kept[0].ID != r.EventID || kept[0].Event.Session == nil {
			t.Fatalf("kept = %+v, %v", kept, err)
		}
		clock.Advance(48 * 3600e9) // two days later, the property is configured
		fixed := func(k rewards.Kept) rewards.Decision {
			r := testRules()
			return rewards.Decision{Event: k.Event, Rules: &r}
		}
		var wg sync.WaitGroup
		results := make([][]rewards.Applied, 4)
		for i := range results {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, IDs: []int64{r.EventID}}, fixed)
				if err != nil {
					t.Error(err)
				}
				results[i] = got
			}(i)
		}
		wg.Wait()
		applied := 0
		for _, got := range results {
			applied += len(got)
		}
		if applied != 1 {
			t.Fatalf("%d replays applied the event, want 1: %+v", applied, results)
		}
		b, _ := db.Balance(ctx, "unconfigured", "u1")
		if !b.Pending.Equal(d("0.672")) {
			t.Fatalf("balance %+v", b)
		}
		txns, _ := db.Transactions(ctx, "unconfigured", "u1", 5, 0)
		if len(txns) != 1 || !txns[0].CreatedAt.Equal(t0.Add(48*3600e9)) {
			t.Fatalf("transactions %+v", txns)
		}
		k, posted, err := db.Event(ctx, r.EventID)
		if err != nil || k.Status != rewards.StatusApplied || len(posted) != 1 || len(posted[0].Legs) != 3 {
			t.Fatalf("event after replay %+v %+v %v", k, posted, err)
		}
		if err := db.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}

// wantRefused wants every statement of stmts refused by db (an append-only table's
// triggers).
func wantRefused(t *testing.T, db *store.DB, stmts []string) {
	t.Helper()
	for _, q := range stmts {
		if err := db.ExecRaw(context.Background(), q); err == nil {
			t.Errorf("%s succeeded on an append-only table", q)
		}
	}
}

// wantTamperCaught checks that db holds its invariants, changes table with tamper past
// its append-only triggers (Tamper), and wants CheckInvariants, of the property arcade
// and of every property, to name what changed (want).
func wantTamperCaught(t *testing.T, db *store.DB, table, tamper, want string) {
	t.Helper()
	ctx := context.Background()
	if err := db.CheckInvariants(ctx, "arcade"); err != nil {
		t.Fatalf("before tampering: %v", err)
	}
	if err := db.Tamper(ctx, table, tamper); err != nil {
		t.Fatal(err)
	}
	for _, property := range []string{"arcade", ""} {
		if err := db.CheckInvariants(ctx, property); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckInvariants(%q) after %s: %v, want %q", property, tamper, err, want)
		}
	}
}

// Finance's records of redemptions, adjustments and reversals are append-only in the
// database too (migration 00018): UPDATE, DELETE and (Postgres) TRUNCATE are refused.
func TestPayoutRecordsAreAppendOnly(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		fund(t, db, "u1", "100")
		r, _, err := db.Redeem(ctx, redeemReq("u1", "30", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Reverse(ctx, rewards.ReverseRequest{RedemptionID: r.ID, Reason: "refused", Actor: "ops",
			IdempotencyKey: "rev-1", RequestHash: "h"}); err != nil {
			t.Fatal(err)
		}
		var stmts []string
		for _, table := range []string{"redemptions", "adjustments", "reversals"} {
			stmts = append(stmts, `UPDATE `+table+` SET idempotency_key = 'x'`, `DELETE FROM `+table)
			if dia == store.Postgres {
				stmts = append(stmts, `TRUNCATE `+table)
			}
		}
		wantRefused(t, db, stmts)
		for table, want := range map[string]int64{"redemptions": 1, "adjustments": 1, "reversals": 1} {
			if n, err := store.QueryInt(ctx, db, `SELECT count(*) FROM `+table); err != nil || n != want {
				t.Errorf("%s holds %d rows (%v), want %d", table, n, err, want)
			}
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
		wantRefused(t, db, stmts)
		wantBalance(t, db, "u1", "50", "0")
		// The claim survived, so the target still cannot pay twice.
		ingestOne(t, db, in(score("u1", "p2", "700")))
		wantBalance(t, db, "u1", "50", "0")
	})
}

// A `per: day` target's play turned away because another play of the same batch paid its
// day takes its play claim against that payment, written after the batch's payments: its
// redelivery on the next day pays nothing, in the same batch or in a later one (review
// helper 232: it paid the next day's reward).
func TestPerDayPlayTurnedAwayInOneBatch(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(time.Date(2026, 11, 22, 23, 59, 50, 0, time.UTC))
		db := storetest.Open(t, dia, clock.Now)
		daily := func(k rewards.Kept) rewards.Decision {
			d := decide(k)
			r := *d.Rules
			r.Targets = []rewards.ScoreTarget{r.Targets[0]}
			r.Targets[0].Per = rewards.PerDay
			d.Rules = &r
			return d
		}
		redelivered := func(play, n string) rewards.Inbound {
			ev := score("u1", play, "600")
			ev.DedupeKey += "|" + n // a new timestamp: a new event
			return in(ev)
		}
		for _, b := range [][]rewards.Inbound{{in(score("u1", "p0", "600"))}, {in(score("u1", "p2", "600"))}} {
			if _, err := db.Record(ctx, b); err != nil { // one at a time: p0 is applied first
				t.Fatal(err)
			}
		}
		clock.Set(time.Date(2026, 11, 23, 0, 0, 10, 0, time.UTC))
		if _, err := db.Record(ctx, []rewards.Inbound{redelivered("p2", "1")}); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, daily); err != nil || len(got) != 3 {
			t.Fatalf("Apply = %+v, %v, want the three in one batch", got, err)
		}
		wantBalance(t, db, "u1", "50", "0")
		if _, err := db.Record(ctx, []rewards.Inbound{redelivered("p2", "2")}); err != nil {
			t.Fatal(err)
		}
		if got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, daily); err != nil || len(got) != 1 {
			t.Fatalf("Apply = %+v, %v", got, err)
		}
		wantBalance(t, db, "u1", "50", "0")
		if err := db.CheckInvariants(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
}
