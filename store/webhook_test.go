package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

const hookURL = "https://publisher.example/hooks"

// arcadeSubscribes subscribes one endpoint of arcade to every event type; no other
// property subscribes to anything.
func arcadeSubscribes(property, eventType string) []string {
	if property == "arcade" {
		return []string{hookURL}
	}
	return nil
}

// twoHooked opens one Postgres database through two store handles (two replicas, or
// two transactions at once with a test seam on one), both at t0.
func twoHooked(t *testing.T) (*store.DB, *store.DB) {
	t.Helper()
	u := storetest.URL(t, store.Postgres)
	clock := storetest.NewClock(t0)
	return openHooked(t, u, clock.Now, arcadeSubscribes), openHooked(t, u, clock.Now, arcadeSubscribes)
}

// openHooked opens a migrated database at u whose outbox uses subs.
func openHooked(t *testing.T, u string, now func() time.Time, subs func(string, string) []string) *store.DB {
	t.Helper()
	return storetest.OpenWith(t, u, store.Options{Now: now, Webhooks: subs})
}

// payload is a delivery's body decoded, with numbers kept as their literals.
type payload struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

func decodeBody(t *testing.T, d rewards.Delivery) payload {
	t.Helper()
	var p payload
	if err := json.Unmarshal(d.Body, &p); err != nil {
		t.Fatalf("delivery %d body %s: %v", d.ID, d.Body, err)
	}
	return p
}

// deliveries lists every delivery, oldest first.
func deliveries(t *testing.T, db *store.DB) []rewards.Delivery {
	t.Helper()
	ds, err := db.Deliveries(context.Background(), rewards.DeliveryFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(ds)-1; i < j; i, j = i+1, j-1 {
		ds[i], ds[j] = ds[j], ds[i]
	}
	return ds
}

// stepOf is delivery id's step now: what a worker that claimed it now would hold.
func stepOf(t *testing.T, db *store.DB, id int64) int {
	t.Helper()
	for _, d := range deliveries(t, db) {
		if d.ID == id {
			return d.Step
		}
	}
	t.Fatalf("no delivery %d", id)
	return 0
}

func str(m map[string]any, path ...string) string {
	var v any = m
	for _, k := range path {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

// Every change a publisher can subscribe to writes its delivery with the change, with
// ids, decimal-string amounts and the balance after; a change that did not happen writes
// nothing, and a property without webhooks writes nothing.
func TestWebhookOutboxWrittenWithEachChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)

		// A session (0.672 pending, held 24h) and a target (50, no hold) for u1, and an
		// event the app quarantines.
		rec, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(score("u1", "p1", "600")),
			in(session("forged", "s-2", "0.000012", 60))})
		if err != nil {
			t.Fatal(err)
		}
		quarantineForged := func(k rewards.Kept) rewards.Decision {
			if k.User == "forged" {
				return rewards.Decision{Event: k.Event, Quarantine: "sub token signature does not verify"}
			}
			return decide(k)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, quarantineForged); err != nil {
			t.Fatal(err)
		}
		run, err := db.Settle(ctx, "arcade", 0, "")
		if err != nil || !run.Amount.Equal(d("50")) {
			t.Fatalf("Settle = %+v, %v", run, err)
		}
		red, _, err := db.Redeem(ctx, redeemReq("u1", "20", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		// Refused for funds: nothing happened, nothing is announced.
		if _, _, err := db.Redeem(ctx, redeemReq("u1", "1000", "k2")); !errors.Is(err, rewards.ErrInsufficientFunds) {
			t.Fatalf("Redeem 1000 = %v", err)
		}
		rev, _, err := db.Reverse(ctx, rewards.ReverseRequest{RedemptionID: red.ID, Reason: "fraud check passed", Actor: "alice",
			IdempotencyKey: "r1", RequestHash: "h"})
		if err != nil {
			t.Fatal(err)
		}
		// Another property without webhooks: its changes write no delivery.
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "t", Property: "other", User: "u9", Amount: d("5"), Reason: "r",
			IdempotencyKey: "a1", RequestHash: "h"}); err != nil {
			t.Fatal(err)
		}

		ds := deliveries(t, db)
		var types []string
		for _, dl := range ds {
			types = append(types, dl.Type)
			if dl.Property != "arcade" || dl.Endpoint != hookURL || dl.Status != rewards.DeliveryPending || dl.Attempts != 0 {
				t.Errorf("delivery %+v", dl)
			}
		}
		want := []string{"balance.updated", "event.quarantined", "credit.settled", "balance.updated", "redemption.created",
			"balance.updated", "redemption.reversed", "balance.updated"}
		if fmt.Sprint(types) != fmt.Sprint(want) {
			t.Fatalf("deliveries %v, want %v", types, want)
		}
		bodies := make([]payload, len(ds))
		for i, dl := range ds {
			bodies[i] = decodeBody(t, dl)
			if bodies[i].Type != dl.Type || bodies[i].Timestamp.IsZero() {
				t.Errorf("body %s", dl.Body)
			}
		}
		// The apply batch: one balance.updated for u1 with both credits.
		if b := bodies[0].Data; str(b, "user") != "u1" || str(b, "balance", "pending") != "50.672" || str(b, "change", "pending") != "50.672" ||
			str(b, "balance", "available") != "0" || str(b, "change", "available") != "0" {
			t.Errorf("balance.updated after apply: %v", b)
		}
		if q := bodies[1].Data; str(q, "user") != "forged" || str(q, "event_id") != fmt.Sprint(rec[2].EventID) ||
			str(q, "reason") != "sub token signature does not verify" || str(q, "source") != "gamezop_spp" || q["replayed"] != false {
			t.Errorf("event.quarantined: %v", q)
		}
		if s := bodies[2].Data; str(s, "settlement_id") != fmt.Sprint(run.ID) || str(s, "amount") != "50" ||
			str(s, "balance", "available") != "50" || str(s, "balance", "pending") != "0.672" {
			t.Errorf("credit.settled: %v", s)
		}
		if b := bodies[3].Data; str(b, "change", "available") != "50" || str(b, "change", "pending") != "-50" {
			t.Errorf("balance.updated after settlement: %v", b)
		}
		if r := bodies[4].Data; str(r, "redemption_id") != fmt.Sprint(red.ID) || str(r, "amount") != "20" || str(r, "reference") != "ref-k1" ||
			str(r, "balance", "available") != "30" || str(r, "balance", "redeemed") != "20" {
			t.Errorf("redemption.created: %v", r)
		}
		if r := bodies[6].Data; str(r, "reversal_id") != fmt.Sprint(rev.ID) || str(r, "redemption_id") != fmt.Sprint(red.ID) ||
			str(r, "amount") != "20" || str(r, "balance", "available") != "50" || str(r, "reason") != "fraud check passed" {
			t.Errorf("redemption.reversed: %v", r)
		}
	})
}

// A user's balance.updated messages are ordered by their delivery id (the number in
// webhook-id), as the README tells receivers: a change made on a replica whose clock is
// behind carries the same updated_at as the one before it, with another balance, so
// updated_at alone could keep the stale one.
func TestBalanceUpdatedOrderedByDeliveryID(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "t", Property: "arcade", User: "u1", Amount: d("100"),
			Bucket: rewards.Available, Reason: "r", IdempotencyKey: "a1", RequestHash: "h"}); err != nil {
			t.Fatal(err)
		}
		clock.Set(t0.Add(-3 * time.Millisecond)) // the other replica's clock
		if _, _, err := db.Redeem(ctx, redeemReq("u1", "40", "k1")); err != nil {
			t.Fatal(err)
		}
		var ups []rewards.Delivery
		for _, dl := range deliveries(t, db) {
			if dl.Type == "balance.updated" {
				ups = append(ups, dl)
			}
		}
		if len(ups) != 2 || ups[0].ID >= ups[1].ID || str(decodeBody(t, ups[1]).Data, "balance", "available") != "60" {
			t.Fatalf("balance.updated in delivery id order: %+v", ups)
		}
	})
}

// An apply batch that fails before commit leaves no delivery behind: nothing is
// announced that did not happen. Its retry announces it once.
func TestWebhookOutboxRollsBackWithItsChange(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := openHooked(t, storetest.URL(t, dia), storetest.NewClock(t0).Now, arcadeSubscribes)
		if _, err := db.Record(ctx, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60))}); err != nil {
			t.Fatal(err)
		}
		store.FailAfterApply(db, errors.New("disk on fire"))
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded}, decide); err == nil {
			t.Fatal("Apply succeeded")
		}
		if ds := deliveries(t, db); len(ds) != 0 {
			t.Fatalf("a rolled-back apply left deliveries: %+v", ds)
		}
		store.FailAfterApply(db, nil)
		if err := applyAll(ctx, db); err != nil {
			t.Fatal(err)
		}
		if ds := deliveries(t, db); len(ds) != 1 || ds[0].Type != rewards.WebhookBalanceUpdated {
			t.Fatalf("deliveries after the retry: %+v", ds)
		}
	})
}

// Appliers racing on one Postgres announce each change exactly once: every quarantined
// event has one event.quarantined, and the balance.updated changes of each user add up
// to exactly the user's balance (none lost, none twice).
func TestWebhookOutboxExactlyOncePerChangeUnderConcurrentAppliers(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.Postgres)
	recorder := openHooked(t, u, nil, arcadeSubscribes)
	const events, users = 900, 7
	var batch []rewards.Inbound
	for i := range events {
		user := fmt.Sprintf("u%d", i%users)
		if i%9 == 0 {
			user = "forged"
		}
		batch = append(batch, in(session(user, fmt.Sprintf("s-%d", i), "0.000012", 60)))
	}
	if _, err := recorder.Record(ctx, batch); err != nil {
		t.Fatal(err)
	}
	decideQ := func(k rewards.Kept) rewards.Decision {
		if k.User == "forged" {
			return rewards.Decision{Event: k.Event, Quarantine: "forged"}
		}
		return decide(k)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for a := range 3 {
		db := openHooked(t, u, nil, arcadeSubscribes)
		wg.Go(func() {
			for {
				got, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusRecorded, Limit: 40}, decideQ)
				if err != nil || len(got) == 0 {
					errs[a] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	quarantined := map[string]int{}
	changes := map[string]decimal.Decimal{}
	for _, dl := range deliveries(t, recorder) {
		p := decodeBody(t, dl)
		switch dl.Type {
		case rewards.WebhookEventQuarantined:
			quarantined[str(p.Data, "event_id")]++
		case rewards.WebhookBalanceUpdated:
			changes[dl.User] = changes[dl.User].Add(d(str(p.Data, "change", "pending")))
		}
	}
	if len(quarantined) != events/9 {
		t.Fatalf("%d events announced quarantined, want %d", len(quarantined), events/9)
	}
	for id, n := range quarantined {
		if n != 1 {
			t.Errorf("event %s announced %d times", id, n)
		}
	}
	for i := range users {
		user := fmt.Sprintf("u%d", i)
		b, err := recorder.Balance(ctx, "arcade", user)
		if err != nil {
			t.Fatal(err)
		}
		if !changes[user].Equal(b.Pending) || b.Pending.IsZero() {
			t.Errorf("%s: announced changes add up to %s, balance is %s", user, changes[user], b.Pending)
		}
	}
}

// seedDeliveries writes one balance.updated delivery per user in users, in that order,
// through adjustments.
func seedDeliveries(t *testing.T, db *store.DB, users ...string) []rewards.Delivery {
	t.Helper()
	for i, u := range users {
		if _, _, err := db.Adjust(context.Background(), rewards.AdjustRequest{Actor: "t", Property: "arcade", User: u, Amount: d("1"),
			Reason: "r", IdempotencyKey: fmt.Sprintf("seed-%d-%s", i, u), RequestHash: "h"}); err != nil {
			t.Fatal(err)
		}
	}
	return deliveries(t, db)
}

func ids(ds []rewards.Delivery) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// Claims follow the order per user and endpoint: a user's next delivery waits until the
// one before it is delivered or failed, however its retries are spaced; other users'
// deliveries do not wait.
func TestWebhookClaimsKeepOrderPerUser(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		all := seedDeliveries(t, db, "u1", "u1", "u2")
		u1a, u1b, u2 := all[0], all[1], all[2]

		got, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if err != nil || fmt.Sprint(ids(got)) != fmt.Sprint([]int64{u1a.ID, u2.ID}) {
			t.Fatalf("first claim = %v, %v; want the first of u1 and u2's", ids(got), err)
		}
		if again, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute); len(again) != 0 {
			t.Fatalf("leased deliveries claimed again: %v", ids(again))
		}
		// u1's first fails: retried in 5 s; u1's second still waits behind it.
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: u1a.ID, Holder: "A", Status: 500, Error: "answered 500",
			RetryIn: 5 * time.Second}); !ok || err != nil {
			t.Fatalf("RecordAttempt = %v, %v", ok, err)
		}
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: u2.ID, Holder: "A", OK: true, Status: 204}); !ok || err != nil {
			t.Fatalf("RecordAttempt = %v, %v", ok, err)
		}
		clock.Advance(4 * time.Second)
		if got, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed before the retry is due: %v", ids(got))
		}
		clock.Advance(time.Second)
		got, _ = db.ClaimDeliveries(ctx, "B", 10, time.Minute)
		if len(got) != 1 || got[0].ID != u1a.ID || got[0].Step != 1 || got[0].Attempts != 1 {
			t.Fatalf("claim after 5 s = %+v, want u1's first, second attempt", got)
		}
		if ok, _, _ := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: u1a.ID, Holder: "B", Step: got[0].Step, OK: true, Status: 200}); !ok {
			t.Fatal("not recorded")
		}
		got, _ = db.ClaimDeliveries(ctx, "B", 10, time.Minute)
		if len(got) != 1 || got[0].ID != u1b.ID {
			t.Fatalf("claim after u1's first was delivered = %v, want u1's second", ids(got))
		}
		// The list shows what happened.
		ds := deliveries(t, db)
		if ds[0].Status != rewards.DeliveryDelivered || ds[0].Attempts != 2 || ds[0].LastStatus != 200 || ds[0].DeliveredAt.IsZero() ||
			ds[2].Status != rewards.DeliveryDelivered || ds[2].LastStatus != 204 {
			t.Fatalf("deliveries %+v", ds)
		}
	})
}

// A claim finds each user's first pending delivery through the pending index, whatever
// the planner knows of the table: on an outbox autovacuum had not analyzed yet, the
// order check (no earlier pending delivery of the user) re-read every pending row of the
// endpoint for each one, 4.5M rows for 3,000 pending here (9,000 took a claim 15 s, and
// delivery stalled on every replica while the backlog grew).
func TestWebhookClaimReadsEachPendingDeliveryOnce(t *testing.T) {
	ctx := context.Background()
	db := openHooked(t, storetest.URL(t, store.Postgres), nil, arcadeSubscribes)
	const pending = 3000
	if err := db.ExecRaw(ctx, fmt.Sprintf(`INSERT INTO webhook_deliveries (property, user_id, endpoint, type, body, next_attempt_at, created_at)
		SELECT 'arcade', 'u' || (g %% 60), ?, 'balance.updated', '{}', now(), now() FROM generate_series(1, %d) g`, pending), hookURL); err != nil {
		t.Fatal(err)
	}
	read, plan, err := store.DueDeliveriesRun(ctx, db, time.Now().Add(time.Hour), 100, [][2]string{{"arcade", hookURL}})
	if err != nil {
		t.Fatal(err)
	}
	if read > 4*pending {
		t.Fatalf("a claim over %d pending deliveries read %d rows of the outbox:\n%s", pending, read, plan)
	}
	ds, err := db.ClaimDeliveriesFor(ctx, "w1", 100, time.Minute, [][2]string{{"arcade", hookURL}})
	if err != nil || len(ds) != 60 {
		t.Fatalf("claimed %d deliveries, %v; want each of the 60 users' first", len(ds), err)
	}
	for _, d := range ds {
		if n, _ := strconv.Atoi(strings.TrimPrefix(d.User, "u")); d.ID > 60 || int(d.ID)%60 != n {
			t.Fatalf("claimed delivery %d of %s, not that user's first", d.ID, d.User)
		}
	}
}

// A worker that claimed a delivery and died (between commit and send) only delays it:
// once the lease lapses another worker claims it, and the dead one's late answer is
// dropped.
func TestWebhookLeaseLapses(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		seedDeliveries(t, db, "u1")
		got, _ := db.ClaimDeliveries(ctx, "dead", 10, time.Minute)
		if len(got) != 1 {
			t.Fatalf("claimed %d", len(got))
		}
		clock.Advance(59 * time.Second)
		if again, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute); len(again) != 0 {
			t.Fatal("claimed while the lease holds")
		}
		clock.Advance(time.Second)
		again, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute)
		if len(again) != 1 || again[0].ID != got[0].ID {
			t.Fatalf("after the lease: %v", ids(again))
		}
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: got[0].ID, Holder: "dead", Step: got[0].Step, OK: true}); ok || err != nil {
			t.Fatalf("the dead holder's answer was recorded: %v, %v", ok, err)
		}
		if ok, _, _ := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: got[0].ID, Holder: "B", Step: again[0].Step, OK: true, Status: 200}); !ok {
			t.Fatal("the live holder's answer was dropped")
		}
		if more, _ := db.ClaimDeliveries(ctx, "C", 10, time.Minute); len(more) != 0 {
			t.Fatalf("delivered, yet claimed again: %v", ids(more))
		}
	})
}

// Retries exhausted fail the delivery; an endpoint failing for 5 days is disabled, its
// pending deliveries failed unsent, and a retry by hand enables it again.
func TestWebhookEndpointDisabledAfterFailingLong(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		const fiveDays = 5 * 24 * time.Hour
		all := seedDeliveries(t, db, "u1", "u2")
		record := func(holder string, id int64, retry time.Duration) bool {
			t.Helper()
			ok, disabled, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: id, Holder: holder, Step: stepOf(t, db, id), Status: 503, Error: "answered 503",
				RetryIn: retry, DisableAfter: fiveDays})
			if err != nil || !ok {
				t.Fatalf("RecordAttempt = %v, %v", ok, err)
			}
			return disabled
		}
		if got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute); len(got) != 2 {
			t.Fatalf("claimed %v", ids(got))
		}
		// u1's delivery: no retry left, failed at once.
		if record("A", all[0].ID, 0) {
			t.Fatal("disabled after one failure")
		}
		if ds := deliveries(t, db); ds[0].Status != rewards.DeliveryFailed || ds[0].LastError != "answered 503" {
			t.Fatalf("delivery %+v", ds[0])
		}
		// u2's fails now, and keeps failing at each retry, at most 10 hours apart, until 5
		// days less an hour have passed: not disabled yet.
		target := t0.Add(fiveDays - time.Hour)
		next := func() time.Duration { return min(10*time.Hour, target.Sub(clock.Now())) }
		if record("A", all[1].ID, next()) {
			t.Fatal("disabled too early")
		}
		for clock.Now().Add(10 * time.Hour).Before(target) {
			clock.Advance(10 * time.Hour)
			if got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute); len(got) != 1 || got[0].ID != all[1].ID {
				t.Fatalf("claimed %v", ids(got))
			}
			if record("A", all[1].ID, next()) {
				t.Fatalf("disabled after %s of failures", clock.Now().Sub(t0))
			}
		}
		clock.Set(target)
		if got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute); len(got) != 1 || got[0].ID != all[1].ID {
			t.Fatalf("claimed %v", ids(got))
		}
		if record("A", all[1].ID, time.Hour) {
			t.Fatal("disabled before 5 days")
		}
		seedDeliveries(t, db, "u3") // pending when the endpoint is disabled
		clock.Advance(time.Hour)
		// u3's delivery is due as well; the claim returns u2's first, then disables.
		got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if len(got) != 2 {
			t.Fatalf("claimed %v", ids(got))
		}
		_, disabled, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: all[1].ID, Holder: "A", Step: stepOf(t, db, all[1].ID), Status: 503, Error: "answered 503",
			RetryIn: time.Hour, DisableAfter: fiveDays})
		if err != nil || !disabled {
			t.Fatalf("after 5 days of failure: disabled=%v, %v", disabled, err)
		}
		// u3's attempt, in flight, records its own outcome (a failure here), and the next
		// claim fails it unsent from then on.
		if u3 := got[1].ID; u3 == all[1].ID || record("A", u3, time.Hour) {
			t.Fatalf("u3's attempt: %v", ids(got))
		}
		if got, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute); len(got) != 0 {
			t.Fatalf("a disabled endpoint's deliveries were claimed: %v", ids(got))
		}
		for _, dl := range deliveries(t, db) {
			if dl.Status == rewards.DeliveryPending {
				t.Fatalf("pending after the endpoint was disabled: %+v", dl)
			}
		}
		// A delivery written after the disable is failed unsent by the next claim.
		late := seedDeliveries(t, db, "u4")
		if got, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute); len(got) != 0 {
			t.Fatalf("a disabled endpoint's deliveries were claimed: %v", ids(got))
		}
		ds := deliveries(t, db)
		last := ds[len(ds)-1]
		if last.ID != late[len(late)-1].ID || last.Status != rewards.DeliveryFailed || last.EndpointDisabledAt.IsZero() {
			t.Fatalf("a delivery after the disable: %+v", last)
		}
		// A retry by hand enables the endpoint and makes the delivery due now.
		r, err := db.RetryDelivery(ctx, last.ID, "ops")
		if err != nil || r.Status != rewards.DeliveryPending || !r.EndpointDisabledAt.IsZero() || r.Step != 0 {
			t.Fatalf("RetryDelivery = %+v, %v", r, err)
		}
		got, _ = db.ClaimDeliveries(ctx, "B", 10, time.Minute)
		if len(got) != 1 || got[0].ID != last.ID {
			t.Fatalf("after the retry: %v", ids(got))
		}
		if _, err := db.RetryDelivery(ctx, 999999, "ops"); !errors.Is(err, rewards.ErrNotFound) {
			t.Fatalf("RetryDelivery(unknown) = %v", err)
		}
		// Who retried is in the audit log.
		audit, err := db.Audit(ctx, rewards.AuditFilter{Limit: 1})
		if err != nil || len(audit) != 1 || audit[0].Action != rewards.AuditWebhook || audit[0].Actor != "ops" ||
			audit[0].Target != fmt.Sprintf("delivery:%d", last.ID) {
			t.Fatalf("audit after the retry: %+v %v", audit, err)
		}
	})
}

// Workers claiming at once on Postgres never hold one delivery together.
func TestWebhookConcurrentClaimsAreDisjoint(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.Postgres)
	db := openHooked(t, u, nil, arcadeSubscribes)
	var users []string
	for i := range 200 {
		users = append(users, fmt.Sprintf("u%d", i))
	}
	seedDeliveries(t, db, users...)
	workers := make([]*store.DB, 4)
	for w := range workers {
		workers[w] = openHooked(t, u, nil, arcadeSubscribes)
	}
	seen := claimAtOnce(t, len(workers), func(w int, holder string) ([]rewards.Delivery, error) {
		return workers[w].ClaimDeliveries(ctx, holder, 7, time.Minute)
	})
	if len(seen) != len(users) {
		t.Fatalf("claimed %d deliveries, want %d", len(seen), len(users))
	}
}

// claimAtOnce runs workers claimers at once, each claiming with claim (given its number
// and holder name) until it finds nothing, and returns which holder leased each
// delivery; a delivery leased twice fails t.
func claimAtOnce(t *testing.T, workers int, claim func(w int, holder string) ([]rewards.Delivery, error)) map[int64]string {
	t.Helper()
	var mu sync.Mutex
	seen := map[int64]string{}
	var wg sync.WaitGroup
	for w := range workers {
		holder := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for {
				got, err := claim(w, holder)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, g := range got {
					if prev, dup := seen[g.ID]; dup {
						t.Errorf("delivery %d leased to %s and to %s", g.ID, prev, holder)
					}
					seen[g.ID] = holder
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return seen
}

// Only subscribed (property, event type) pairs are written: a property subscribed to
// redemptions alone gets no balance.updated for the applier's credits, and the lookup is
// all it costs.
func TestWebhookOutboxOnlySubscribedTypes(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		var lookups int
		var mu sync.Mutex
		redemptionsOnly := func(property, eventType string) []string {
			mu.Lock()
			lookups++
			mu.Unlock()
			if property == "arcade" && eventType == rewards.WebhookRedemptionCreated {
				return []string{hookURL}
			}
			return nil
		}
		db := openHooked(t, storetest.URL(t, dia), storetest.NewClock(t0).Now, redemptionsOnly)
		if _, err := ingest(db, ctx, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60)), in(score("u1", "p1", "600"))}); err != nil {
			t.Fatal(err)
		}
		if ds := deliveries(t, db); len(ds) != 0 {
			t.Fatalf("unsubscribed changes written: %+v", ds)
		}
		if lookups == 0 {
			t.Fatal("the outbox never asked whether anyone subscribes")
		}
		fund(t, db, "u1", "10")
		if _, _, err := db.Redeem(ctx, redeemReq("u1", "4", "k1")); err != nil {
			t.Fatal(err)
		}
		if ds := deliveries(t, db); len(ds) != 1 || ds[0].Type != rewards.WebhookRedemptionCreated {
			t.Fatalf("deliveries %+v, want the redemption only", ds)
		}
	})
}

// The applier's last resort, Quarantine (an event that fails even alone), announces the
// event once; a second call, the event no longer recorded, announces nothing.
func TestWebhookQuarantineAnnounces(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		db := openHooked(t, storetest.URL(t, dia), storetest.NewClock(t0).Now, arcadeSubscribes)
		rec, err := db.Record(ctx, []rewards.Inbound{in(session("u7", "s-1", "0.000012", 60))})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, _, err := db.Quarantine(ctx, rec[0].EventID, "apply failed: value too long"); err != nil {
				t.Fatal(err)
			}
		}
		ds := deliveries(t, db)
		if len(ds) != 1 || ds[0].Type != rewards.WebhookEventQuarantined || ds[0].User != "u7" {
			t.Fatalf("deliveries %+v", ds)
		}
		if q := decodeBody(t, ds[0]).Data; str(q, "event_id") != fmt.Sprint(rec[0].EventID) || str(q, "reason") != "apply failed: value too long" ||
			str(q, "source") != "gamezop_spp" {
			t.Fatalf("payload %v", q)
		}
		// A replay that leaves it quarantined announces it again, marked replayed, with
		// the reason as it is now; one that applies it announces the balance instead.
		stillBad := quarantining("still bad")
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, Actor: "alice"}, stillBad); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, rewards.Claim{Status: rewards.StatusQuarantined, Actor: "alice"}, decide); err != nil {
			t.Fatal(err)
		}
		ds = deliveries(t, db)
		if len(ds) != 3 || ds[1].Type != rewards.WebhookEventQuarantined || ds[2].Type != rewards.WebhookBalanceUpdated {
			t.Fatalf("after replays: %+v", ds)
		}
		if q := decodeBody(t, ds[1]).Data; q["replayed"] != true || str(q, "reason") != "still bad" {
			t.Fatalf("replayed payload %v", q)
		}
	})
}

// A settlement that moves less than a unit (the remainder carried) changes nothing a
// publisher sees, and announces nothing.
func TestWebhookNothingAnnouncedForACarry(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		if _, err := ingest(db, ctx, []rewards.Inbound{in(session("u1", "s-1", "0.000012", 60))}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(25 * time.Hour)
		if _, err := db.Settle(ctx, "arcade", 0, ""); err != nil { // 0.672 matured: nothing reaches available at scale 0
			t.Fatal(err)
		}
		if ds := deliveries(t, db); len(ds) != 1 || ds[0].Type != rewards.WebhookBalanceUpdated {
			t.Fatalf("deliveries %+v, want only the credit's balance.updated", ds)
		}
	})
}

// One failure after a quiet spell starts a new run of failures: an endpoint that failed
// once a week ago and had no traffic since is not disabled by its next failure.
func TestWebhookQuietSpellDoesNotDisable(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		fail := func() bool {
			t.Helper()
			got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
			if len(got) != 1 {
				t.Fatalf("claimed %v", ids(got))
			}
			_, disabled, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: got[0].ID, Holder: "A", Step: got[0].Step, Status: 503, Error: "answered 503",
				DisableAfter: 5 * 24 * time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			return disabled
		}
		seedDeliveries(t, db, "u1")
		if fail() {
			t.Fatal("disabled by one failure")
		}
		clock.Advance(6 * 24 * time.Hour)
		seedDeliveries(t, db, "u2")
		if fail() {
			t.Fatal("one failure after a quiet week disabled the endpoint")
		}
	})
}

// An operator's retry while an attempt is in flight is not lost: the attempt's failure is
// counted, and the delivery stays pending, due now, its schedule started over (the
// attempt's own retry delay, worked out from the step it claimed, does not apply).
func TestWebhookRetryDuringAnAttempt(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		all := seedDeliveries(t, db, "u1")
		got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		// Its first attempt fails: retried in an hour.
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: all[0].ID, Holder: "A", Step: got[0].Step, Status: 500,
			Error: "answered 500", RetryIn: time.Hour}); !ok || err != nil {
			t.Fatalf("RecordAttempt = %v, %v", ok, err)
		}
		clock.Advance(time.Hour)
		got, _ = db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if len(got) != 1 || got[0].Step != 1 {
			t.Fatalf("second claim %+v", got)
		}
		// While it is sent, the operator retries it; then the attempt fails, and would
		// have been the last one (no retry left).
		if _, err := db.RetryDelivery(ctx, all[0].ID, "ops"); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: all[0].ID, Holder: "A", Step: got[0].Step, Status: 500,
			Error: "answered 500"}); !ok || err != nil {
			t.Fatalf("RecordAttempt = %v, %v", ok, err)
		}
		d := deliveries(t, db)[0]
		if d.Status != rewards.DeliveryPending || d.Step != 0 || d.Attempts != 2 || d.LastStatus != 500 {
			t.Fatalf("after a retry during an attempt: %+v", d)
		}
		if again, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute); len(again) != 1 || again[0].ID != all[0].ID {
			t.Fatalf("due now after the retry: %v", ids(again))
		}
	})
}

// The same during the delivery's first attempt, where the retry's step (0) is the
// attempt's own: the failure was counted as the first attempt's (step 1, due in 5 s), and
// the retry's attempt now was lost.
func TestWebhookRetryDuringTheFirstAttempt(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		all := seedDeliveries(t, db, "u1")
		got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if len(got) != 1 || got[0].Step != 0 {
			t.Fatalf("claim %+v", got)
		}
		clock.Advance(time.Second)
		if _, err := db.RetryDelivery(ctx, all[0].ID, "ops"); err != nil {
			t.Fatal(err)
		}
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: all[0].ID, Holder: "A", Step: got[0].Step, Due: got[0].NextAttemptAt,
			Status: 500, Error: "answered 500", RetryIn: 5 * time.Second}); !ok || err != nil {
			t.Fatalf("RecordAttempt = %v, %v", ok, err)
		}
		d := deliveries(t, db)[0]
		if d.Status != rewards.DeliveryPending || d.Step != 0 || d.Attempts != 1 {
			t.Fatalf("after a retry during the first attempt: %+v", d)
		}
		if again, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute); len(again) != 1 || again[0].ID != all[0].ID {
			t.Fatalf("due now after the retry: %v", ids(again))
		}
		// Without a retry, the first attempt's failure moves it on as before.
		seedDeliveries(t, db, "u2")
		fresh, _ := db.ClaimDeliveries(ctx, "C", 10, time.Minute)
		var u2 rewards.Delivery
		for _, f := range fresh {
			if f.User == "u2" {
				u2 = f
			}
		}
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: u2.ID, Holder: "C", Step: u2.Step, Due: u2.NextAttemptAt,
			Status: 500, Error: "answered 500", RetryIn: 5 * time.Second}); !ok || err != nil {
			t.Fatalf("RecordAttempt of u2 = %v, %v", ok, err)
		}
		for _, d := range deliveries(t, db) {
			if d.User == "u2" && (d.Step != 1 || !d.NextAttemptAt.Equal(clock.Now().Add(5*time.Second))) {
				t.Fatalf("u2 after its first failure: %+v", d)
			}
		}
	})
}

// A pass sends several deliveries to an endpoint at once. When one's failure disables
// the endpoint, another's success arriving a moment later is recorded (delivered) and
// enables the endpoint again; the user's next change is sent. The success was dropped:
// the delivery the publisher had was shown failed, and the endpoint stayed disabled.
func TestSuccessInFlightWhenTheEndpointIsDisabled(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		const fiveDays = 5 * 24 * time.Hour
		for i := 0; clock.Now().Before(t0.Add(fiveDays - time.Hour)); i++ { // a failure every 10 h for 5 days
			seedDeliveries(t, db, fmt.Sprintf("old%d", i))
			got, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range got {
				if _, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: g.ID, Holder: "A", Step: g.Step, Status: 503,
					Error: "answered 503", DisableAfter: fiveDays}); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(10 * time.Hour)
		}
		clock.Set(t0.Add(fiveDays + time.Minute))
		all := seedDeliveries(t, db, "ua", "ub")
		ua, ub := all[len(all)-2], all[len(all)-1]
		if got, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute); err != nil || len(got) != 2 {
			t.Fatalf("claimed %v %v", ids(got), err)
		}
		if _, disabled, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: ua.ID, Holder: "A", Step: 0, Status: 503,
			Error: "answered 503", RetryIn: 5 * time.Second, DisableAfter: fiveDays}); err != nil || !disabled {
			t.Fatalf("the failure that disables: %v %v", disabled, err)
		}
		recorded, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: ub.ID, Holder: "A", Step: 0, OK: true, Status: 204,
			DisableAfter: fiveDays})
		if err != nil || !recorded {
			t.Fatalf("the success in flight: recorded %v, %v", recorded, err)
		}
		seedDeliveries(t, db, "uc")
		next, err := db.ClaimDeliveries(ctx, "B", 10, time.Minute)
		if err != nil || len(next) != 1 || next[0].User != "uc" {
			t.Fatalf("after the success, the next change: %+v %v", next, err)
		}
		for _, d := range deliveries(t, db) {
			if d.ID == ub.ID && (d.Status != rewards.DeliveryDelivered || !d.EndpointDisabledAt.IsZero()) {
				t.Fatalf("the delivery that succeeded: %+v", d)
			}
		}
	})
}

// A healthy endpoint's success waits for no lock on the endpoint's row, and a failing
// one's still clears its run of failures. Every success wrote that row, so every
// recording of every sender on every replica queued for its lock through its commit: a
// soak of two replicas and one endpoint sent 130–160 messages a second against 480
// written, and the outbox grew without end.
func TestWebhookSuccessWaitsForNoEndpointLock(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(t0)
	db := openHooked(t, storetest.URL(t, store.Postgres), clock.Now, arcadeSubscribes)
	attempt := func(u string, ok bool) {
		t.Helper()
		seedDeliveries(t, db, u)
		got, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if err != nil || len(got) != 1 {
			t.Fatalf("claim: %v %v", ids(got), err)
		}
		a := rewards.DeliveryAttempt{ID: got[0].ID, Holder: "A", Step: got[0].Step, OK: ok, Status: 204}
		if !ok {
			a.Status, a.Error, a.RetryIn = 503, "answered 503", 5*time.Second
		}
		if recorded, _, err := db.RecordAttempt(ctx, a); err != nil || !recorded {
			t.Fatalf("record: %v %v", recorded, err)
		}
	}
	failing := func() bool {
		t.Helper()
		n, err := store.QueryInt(ctx, db, `SELECT count(*) FROM webhook_endpoints WHERE failing_since IS NOT NULL`)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	}
	attempt("u1", false) // the endpoint's row is there, failing
	attempt("u2", true)
	if failing() {
		t.Fatal("a success left the endpoint failing")
	}
	seedDeliveries(t, db, "u3")
	got, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", ids(got), err)
	}
	err = db.HoldEndpointRow(ctx, "arcade", hookURL, func() {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		recorded, _, err := db.RecordAttempt(rctx, rewards.DeliveryAttempt{ID: got[0].ID, Holder: "A", Step: got[0].Step, OK: true, Status: 204})
		if err != nil || !recorded {
			t.Errorf("a success while another transaction holds the healthy endpoint's row: recorded %v, %v", recorded, err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A change is due for delivery when it commits, even when its wallet's stamp lies ahead
// of the clock (a replica whose clock ran ahead wrote the wallet before, or the clock was
// stepped back: a wallet's stamp never goes back). It was due at the stamp, so the
// message, and the user's later ones behind it, waited for the clock to catch up.
func TestWebhookDueAtCommitWhenTheWalletStampIsAhead(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0.Add(time.Hour)) // a replica an hour ahead
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		adjust := func(key string) {
			t.Helper()
			if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "t", Property: "arcade", User: "u1", Amount: d("1"),
				Reason: "r", IdempotencyKey: key, RequestHash: "h"}); err != nil {
				t.Fatal(err)
			}
		}
		adjust("ahead")
		got, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if err != nil || len(got) != 1 {
			t.Fatalf("claim: %+v, %v", got, err)
		}
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: got[0].ID, Holder: "A", Step: got[0].Step, OK: true, Status: 204}); !ok || err != nil {
			t.Fatalf("record: %v, %v", ok, err)
		}
		clock.Set(t0) // the clock is right again
		adjust("now")
		got, err = db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if err != nil || len(got) != 1 {
			t.Fatalf("the change made with the clock right: claimed %+v (%v), want it due now", got, err)
		}
		// The message keeps the wallet's stamp: the ledger's order.
		if want := `"updated_at":"` + t0.Add(time.Hour).UTC().Format(time.RFC3339); !bytes.Contains(got[0].Body, []byte(want)) {
			t.Errorf("body %s, want the wallet's stamp as updated_at", got[0].Body)
		}
	})
}

// DueEndpoints names an endpoint exactly when a claim would find work there: a due
// delivery no one holds, or a pending one of a disabled endpoint (which the claim fails).
func TestWebhookDueEndpoints(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		want := func(what string, n int) {
			t.Helper()
			due, err := db.DueEndpoints(ctx, [][2]string{{"arcade", hookURL}, {"other", hookURL}})
			if err != nil || len(due) != n || (n == 1 && due[0] != [2]string{"arcade", hookURL}) {
				t.Fatalf("%s: due %v %v, want %d", what, due, err, n)
			}
		}
		want("an empty outbox", 0)
		seedDeliveries(t, db, "u1")
		want("a new delivery", 1)
		got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if len(got) != 1 {
			t.Fatalf("claimed %d", len(got))
		}
		want("a delivery being sent", 0)
		if ok, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: got[0].ID, Holder: "A", Step: got[0].Step,
			Status: 500, Error: "answered 500", RetryIn: time.Minute}); !ok || err != nil {
			t.Fatalf("record: %v %v", ok, err)
		}
		want("a delivery waiting for its retry", 0)
		// The user's next message waits behind it (order per user): no claim takes it.
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "alice", Property: "arcade", User: "u1", Amount: decimal.NewFromInt(1),
			Reason: "goodwill", IdempotencyKey: "next", RequestHash: "next"}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed %v behind a retry", ids(got))
		}
		want("a message waiting behind its user's retry", 0)
		if err := db.ExecRaw(ctx, `UPDATE webhook_endpoints SET disabled_at = ?`, clock.Now()); err != nil {
			t.Fatal(err)
		}
		want("a pending delivery of a disabled endpoint", 1)
		if err := db.ExecRaw(ctx, `UPDATE webhook_endpoints SET disabled_at = NULL`); err != nil {
			t.Fatal(err)
		}
		clock.Advance(2 * time.Minute)
		want("a retry come due", 1)
	})
}

// A user's messages behind a delivery waiting for its retry are due no earlier than that
// retry, whether written before the attempt failed or after; after a retry by hand, or
// with the clock stepped back, they follow it as soon as it is delivered.
func TestWebhookMessagesBehindARetryWaitForIt(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		adjust := func(user, key string) {
			t.Helper()
			if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "t", Property: "arcade", User: user, Amount: d("1"),
				Reason: "r", IdempotencyKey: key, RequestHash: key}); err != nil {
				t.Fatal(err)
			}
		}
		record := func(ds rewards.Delivery, holder string, ok bool) {
			t.Helper()
			if err := tryAttempt(db, ds, holder, ok, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		adjust("u1", "u1-first")
		adjust("u2", "u2-first")
		heads, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if err != nil || len(heads) != 2 {
			t.Fatalf("claimed %v, %v", ids(heads), err)
		}
		// u2's next message is written while its first is being sent; u1's after its
		// first failed.
		adjust("u2", "u2-in-flight")
		record(heads[0], "A", false)
		record(heads[1], "A", false)
		retryAt := clock.Now().Add(time.Hour)
		adjust("u1", "u1-after")
		adjust("u1", "u1-after-2")
		all := deliveries(t, db)
		if len(all) != 5 {
			t.Fatalf("%d deliveries", len(all))
		}
		// The first messages are due at their retry; those behind them are parked after it.
		for _, x := range all {
			want := retryAt
			if x.Attempts == 0 {
				want = retryAt.Add(store.ParkedBehind)
			}
			if !x.NextAttemptAt.Equal(want) {
				t.Errorf("delivery %d of %s (attempts %d) due %s, want %s", x.ID, x.User, x.Attempts, x.NextAttemptAt, want)
			}
		}
		if due, err := db.DueEndpoints(ctx, [][2]string{{"arcade", hookURL}}); len(due) != 0 || err != nil {
			t.Fatalf("due %v %v before the retries", due, err)
		}
		// A retry by hand of u1's first: the two behind it go as soon as it is delivered.
		clock.Advance(time.Minute)
		if _, err := db.RetryDelivery(ctx, heads[0].ID, "alice"); err != nil {
			t.Fatal(err)
		}
		got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if len(got) != 1 || got[0].ID != heads[0].ID {
			t.Fatalf("claimed %v after the retry by hand, want %d", ids(got), heads[0].ID)
		}
		record(got[0], "A", true)
		got, _ = db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if len(got) != 1 || got[0].User != "u1" || got[0].ID <= heads[0].ID {
			t.Fatalf("claimed %v once u1's first was delivered, want u1's next at once", ids(got))
		}
		record(got[0], "A", true)
		// u2's retry comes due with the message behind it; only the first is claimed
		// (with u1's last, whose turn it is).
		clock.Set(retryAt)
		got, _ = db.ClaimDeliveries(ctx, "B", 10, time.Minute)
		if len(got) != 2 || got[0].ID != heads[1].ID || got[0].Attempts != 1 || got[1].User != "u1" {
			t.Fatalf("claimed %v at u2's retry, want its first, %d, and u1's last", ids(got), heads[1].ID)
		}
		// The clock is stepped back half an hour while u2's first is sent: the message
		// behind it, written long before, goes next all the same, not at the retry's time.
		clock.Set(retryAt.Add(-30 * time.Minute))
		record(got[0], "B", true)
		next, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute)
		if len(next) != 1 || next[0].User != "u2" {
			t.Fatalf("claimed %v once u2's first was delivered with the clock stepped back, want u2's next", ids(next))
		}
	})
}

// A message sent again by hand, older than its user's first pending one, does not cut
// the retry that one waits for: once it is delivered, the pending one waits for its own
// retry as before.
func TestWebhookResendKeepsTheNextOnesRetry(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		seedDeliveries(t, db, "u1", "u1")
		first := sendOne(t, db, true, time.Hour)
		second := sendOne(t, db, false, time.Hour) // waits an hour for its retry
		clock.Advance(time.Minute)
		if _, err := db.RetryDelivery(ctx, first.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if again := sendOne(t, db, true, time.Hour); again.ID != first.ID {
			t.Fatalf("sent %d, want the one resent by hand, %d", again.ID, first.ID)
		}
		if got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed %v an hour before the retry of %d", ids(got), second.ID)
		}
		clock.Advance(time.Hour)
		if got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute); len(got) != 1 || got[0].ID != second.ID {
			t.Fatalf("claimed %v at the retry, want %d", ids(got), second.ID)
		}
	})
}

// While an endpoint is down, a poll for due work reads the retries come due, not every
// user's messages waiting behind a retry: with 20,000 users it read every user's first
// delivery each second (half a second a poll with 100,000 users).
func TestWebhookPollReadsNotWhatWaitsBehindRetries(t *testing.T) {
	ctx := context.Background()
	db := openHooked(t, storetest.URL(t, store.Postgres), nil, arcadeSubscribes)
	const users = 20000
	const bound = 100 // rows a poll may read
	// Each user's first message failed and waits an hour for its retry.
	if err := db.ExecRaw(ctx, fmt.Sprintf(`INSERT INTO webhook_deliveries (property, user_id, endpoint, type, body, attempts, step,
		next_attempt_at, created_at) SELECT 'arcade', 'u' || g, ?, 'balance.updated', '{}', 1, 1, now() + interval '1 hour', now()
		FROM generate_series(1, %d) g`, users), hookURL); err != nil {
		t.Fatal(err)
	}
	names := make([]string, users)
	for i := range names {
		names[i] = fmt.Sprintf("u%d", i+1)
	}
	for range 2 { // more changes for every user, written as the applier writes them
		if err := store.WriteDeliveries(ctx, db, "arcade", names); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ExecRaw(ctx, `ANALYZE webhook_deliveries`); err != nil { // as autovacuum does
		t.Fatal(err)
	}
	endpoint := [][2]string{{"arcade", hookURL}}
	poll := func(now time.Time, what string, want int) {
		t.Helper()
		read, plan, err := store.DueEndpointsRun(ctx, db, now, endpoint)
		if err != nil {
			t.Fatal(err)
		}
		if read > bound {
			t.Errorf("%s: a poll read %d rows of the outbox:\n%s", what, read, plan)
		}
		due, err := db.DueEndpoints(ctx, endpoint)
		if err != nil || len(due) != want {
			t.Fatalf("%s: due %v, %v; want %d", what, due, err, want)
		}
	}
	poll(time.Now(), "every user waiting for a retry", 0)
	if read, plan, err := store.DueDeliveriesRun(ctx, db, time.Now(), 100, endpoint); err != nil || read > bound {
		t.Errorf("a claim read %d rows of the outbox (%v):\n%s", read, err, plan)
	}
	// One user's retry comes due: found, without reading the rest.
	if err := db.ExecRaw(ctx, `UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' WHERE user_id = 'u777'`); err != nil {
		t.Fatal(err)
	}
	poll(time.Now(), "one retry come due", 1)
	if got, err := db.ClaimDeliveriesFor(ctx, "w", 100, time.Minute, endpoint); err != nil || len(got) != 1 || got[0].User != "u777" || got[0].Attempts != 1 {
		t.Fatalf("claimed %+v, %v; want u777's first", got, err)
	}
	// Messages written due behind a retry (before they waited for it): the poll steps
	// through the users and still finds what is due, and only that.
	if err := db.ExecRaw(ctx, `UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 minute' WHERE attempts = 0`); err != nil {
		t.Fatal(err)
	}
	due, err := db.DueEndpoints(ctx, endpoint)
	if err != nil || len(due) != 0 {
		t.Fatalf("due %v, %v with every user's first waiting or being sent", due, err)
	}
	if err := db.ExecRaw(ctx, `UPDATE webhook_deliveries SET next_attempt_at = now() - interval '1 second' WHERE user_id = 'u19999' AND attempts = 1`); err != nil {
		t.Fatal(err)
	}
	if due, err = db.DueEndpoints(ctx, endpoint); err != nil || len(due) != 1 {
		t.Fatalf("due %v, %v with one retry come due behind the others' waiting messages", due, err)
	}
}

// One endpoint working through a backlog does not make the poll read it once for every
// other endpoint listed. Postgres took each endpoint's share of the outbox from the
// statistics (the whole of it) and scanned the outbox for every idle endpoint: 1,000
// endpoints beside a backlog of 20,000 due deliveries read 20 million rows, 2 s a poll,
// every second on every replica (review helper 206 saw 7-17 ms in a milder mix).
func TestWebhookPollWithABacklogReadsOneEntryPerEndpoint(t *testing.T) {
	ctx := context.Background()
	db := openHooked(t, storetest.URL(t, store.Postgres), nil, arcadeSubscribes)
	const users = 20000
	insertDeliveries(t, db, hookURL, "now() - interval '1 minute'", users)
	// One idle endpoint is disabled: its check looks for any pending delivery of it.
	if err := db.ExecRaw(ctx, `INSERT INTO webhook_endpoints (property, url, failing_since, last_failure_at, disabled_at)
		VALUES ('p7', 'https://idle.example/h', now(), now(), now())`); err != nil {
		t.Fatal(err)
	}
	if err := db.ExecRaw(ctx, `ANALYZE webhook_deliveries`); err != nil { // as autovacuum does
		t.Fatal(err)
	}
	endpoints := [][2]string{{"arcade", hookURL}}
	for i := range 999 {
		endpoints = append(endpoints, [2]string{fmt.Sprintf("p%d", i), "https://idle.example/h"})
	}
	read, plan, err := store.DueEndpointsRun(ctx, db, time.Now(), endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if read > 100 {
		t.Errorf("a poll of 1,000 endpoints read %d rows of the outbox:\n%s", read, plan)
	}
	due, err := db.DueEndpoints(ctx, endpoints)
	if err != nil || len(due) != 1 || due[0] != endpoints[0] {
		t.Fatalf("due %v, %v; want the endpoint with the backlog only", due, err)
	}
}

// A claim reads its own endpoints' deliveries, not the backlogs of others. Each claim
// first fails the pending deliveries of disabled endpoints, and looked for them among
// every pending delivery of every endpoint: with one endpoint disabled anywhere (a
// publisher gone for good) every claim of every endpoint read every other's backlog.
// Then the claim itself read the due deliveries of every endpoint in due order, keeping
// its own. Here each claim of 100 read 40,000 rows of other endpoints' (review helper
// 209 saw the first).
func TestWebhookClaimReadsNotOtherEndpointsBacklogs(t *testing.T) {
	ctx := context.Background()
	db := openHooked(t, storetest.URL(t, store.Postgres), nil, arcadeSubscribes)
	// An endpoint down, its users waiting for retries; another working through a queue;
	// then the endpoint claimed for, with a little due.
	for _, e := range []struct {
		url, due string
		n        int
	}{{"https://down.example/h", "now() + interval '1 hour'", 10000}, {"https://busy.example/h", "now() - interval '1 minute'", 10000},
		{hookURL, "now() - interval '1 minute'", 2000}} {
		insertDeliveries(t, db, e.url, e.due, e.n)
	}
	gone := [2]string{"p7", "https://gone.example/h"}
	if err := db.ExecRaw(ctx, `INSERT INTO webhook_deliveries (property, user_id, endpoint, type, body, next_attempt_at, created_at)
		VALUES (?, 'v1', ?, 'balance.updated', '{}', now(), now())`, gone[0], gone[1]); err != nil {
		t.Fatal(err)
	}
	if err := db.ExecRaw(ctx, `INSERT INTO webhook_endpoints (property, url, failing_since, last_failure_at, disabled_at)
		VALUES (?, ?, now(), now(), now())`, gone[0], gone[1]); err != nil {
		t.Fatal(err)
	}
	if err := db.ExecRaw(ctx, `ANALYZE webhook_deliveries; ANALYZE webhook_endpoints`); err != nil { // as autovacuum does
		t.Fatal(err)
	}
	var read int64
	store.SetClaimReads(db, func(n int64) { read = n })
	got, err := db.ClaimDeliveriesFor(ctx, "w", 100, time.Minute, [][2]string{{"arcade", hookURL}})
	if err != nil || len(got) != 100 {
		t.Fatalf("claimed %d, %v; want 100", len(got), err)
	}
	if read < 0 || read > 10000 {
		t.Errorf("a claim of 100 among 2,000 due read %d rows of the outbox", read)
	}
	// The endpoint with a queue: its claim reads its own due rows by its key, not every
	// endpoint's pending rows in due order.
	if _, plan, err := store.DueDeliveriesRun(ctx, db, time.Now(), 100, [][2]string{{"arcade", "https://busy.example/h"}}); err != nil ||
		!strings.Contains(plan, "Index Cond: ((((property || ' '::text) || endpoint) = 'arcade https://busy.example/h'::text) AND (next_attempt_at <=") {
		t.Errorf("the claim of an endpoint with a queue (%v):\n%s", err, plan)
	}
	// And it reads the due rows it takes (about four reads each: 400), not all 10,000:
	// a claim of 100 read every due row and sorted them, at every pass.
	if read, plan, err := store.DueDeliveriesRun(ctx, db, time.Now(), 100, [][2]string{{"arcade", "https://busy.example/h"}}); err != nil || read > 1000 {
		t.Errorf("a claim of 100 of an endpoint with 10,000 due read %d rows (%v):\n%s", read, err, plan)
	}
	// The disabled endpoint's own claim fails its delivery, unsent.
	if got, err := db.ClaimDeliveriesFor(ctx, "w", 100, time.Minute, [][2]string{gone}); err != nil || len(got) != 0 {
		t.Fatalf("claimed %v, %v for a disabled endpoint", ids(got), err)
	}
	if n, err := store.QueryInt(ctx, db, `SELECT count(*) FROM webhook_deliveries WHERE endpoint = ? AND status = 'failed'`, gone[1]); err != nil || n != 1 {
		t.Fatalf("%d of the disabled endpoint's deliveries failed (%v), want 1", n, err)
	}
}

// After an outage one user's messages, waiting behind its retry (waitBehindHead moves
// them to its due time), come first in the endpoint's due order: a claim passes over
// them and takes every other user's first message too, not that user's head alone
// (review helper 215: one message a pass, 533 passes for 500 users' one each).
func TestWebhookClaimPassesOverOneUsersBacklog(t *testing.T) {
	ctx := context.Background()
	db := openHooked(t, storetest.URL(t, store.Postgres), nil, arcadeSubscribes)
	if err := db.ExecRaw(ctx, `INSERT INTO webhook_deliveries (property, user_id, endpoint, type, body, next_attempt_at, created_at)
		SELECT 'arcade', 'big', ?, 'balance.updated', '{}', now() - interval '10 minutes', now() FROM generate_series(1, 1500)`, hookURL); err != nil {
		t.Fatal(err)
	}
	insertDeliveries(t, db, hookURL, "now() - interval '5 minutes'", 500) // u1…u500, one each
	eps := [][2]string{{"arcade", hookURL}}
	seen := map[string]bool{}
	for _, holder := range []string{"w1", "w2"} { // the second beside the first's lease
		got, err := db.ClaimDeliveriesFor(ctx, holder, 100, time.Minute, eps)
		if err != nil || len(got) != 100 {
			t.Fatalf("%s claimed %d, %v; want 100 users' first messages", holder, len(got), err)
		}
		for _, d := range got {
			if seen[d.User] {
				t.Fatalf("%s claimed a second message of %s (delivery %d)", holder, d.User, d.ID)
			}
			seen[d.User] = true
		}
	}
	if !seen["big"] {
		t.Error("the user due longest, big, was not claimed")
	}
	// Passing over big's 1,499 waiting messages costs a lookup each, no more.
	if read, plan, err := store.DueDeliveriesRun(ctx, db, time.Now(), 100, eps); err != nil || read > 4000 {
		t.Errorf("a claim past 1,500 of one user's messages read %d rows (%v):\n%s", read, err, plan)
	}
}

// insertDeliveries writes, in bulk on Postgres, one never-sent balance.updated delivery
// to url for each of users u1..un of arcade, due at the SQL time due.
func insertDeliveries(t *testing.T, db *store.DB, url, due string, n int) {
	t.Helper()
	if err := db.ExecRaw(context.Background(), fmt.Sprintf(`INSERT INTO webhook_deliveries (property, user_id, endpoint, type, body,
		next_attempt_at, created_at) SELECT 'arcade', 'u' || g, ?, 'balance.updated', '{}', %s, now()
		FROM generate_series(1, %d) g`, due, n), url); err != nil {
		t.Fatal(err)
	}
}

// A failure recorded beside the one that disables the endpoint waits for it without a
// deadlock: it holds its user's next messages (moving them to its retry) while it waits
// for the endpoint's row, and the disabling one, holding that row, waited for them to
// fail every pending delivery (review helper 201); it now leaves them to the next claim.
func TestWebhookFailureBesideTheDisablingOneIsNoDeadlock(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(t0)
	db := openHooked(t, storetest.URL(t, store.Postgres), clock.Now, arcadeSubscribes)
	seedDeliveries(t, db, "u1", "u2", "u2")
	heads, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
	if err != nil || len(heads) != 2 {
		t.Fatalf("claimed %v, %v", ids(heads), err)
	}
	// Failing for six days, the last failure an hour ago: the next failure disables it.
	if err := db.ExecRaw(ctx, `INSERT INTO webhook_endpoints (property, url, failing_since, last_failure_at) VALUES ('arcade', ?, ?, ?)`,
		hookURL, t0.Add(-6*24*time.Hour), t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	fail := func(i int) func() error {
		return func() error {
			_, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: heads[i].ID, Holder: "A", Step: heads[i].Step, Status: 503,
				Error: "answered 503", RetryIn: time.Hour, DisableAfter: 5 * 24 * time.Hour})
			return err
		}
	}
	// u1's first in line for the endpoint's row: it disables the endpoint; then u2's,
	// with a message behind it.
	queuedOnEndpointRow(t, db, fail(0), fail(1))
	// What the disabling failure left to the other's transaction, the next claim fails.
	if got, err := db.ClaimDeliveries(ctx, "B", 10, time.Minute); err != nil || len(got) != 0 {
		t.Fatalf("claimed %v on the disabled endpoint, %v", ids(got), err)
	}
	for _, d := range deliveries(t, db) {
		if d.Status != rewards.DeliveryFailed {
			t.Fatalf("delivery %d of %s %s on the disabled endpoint, want failed", d.ID, d.User, d.Status)
		}
	}
}

// lockWaiters waits until n transactions of db's database wait for a lock (Postgres).
func lockWaiters(t *testing.T, db *store.DB, n int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		w, err := store.QueryInt(context.Background(), db, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`)
		if err != nil {
			t.Fatal(err)
		}
		if w >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d transactions waiting for a lock, want %d", w, n)
		}
	}
}

// startUntilWaiting runs step in a goroutine of its own and returns once step has ended
// or a transaction of db's database waits for a lock (Postgres), at most 10 s: to run a
// transaction beside one a test seam holds open, which it may have to wait for. The
// channel gives step's error.
func startUntilWaiting(db *store.DB, step func() error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- step() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if len(done) > 0 {
			break
		}
		if w, err := store.QueryInt(context.Background(), db, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`); err != nil || w > 0 {
			break
		}
	}
	return done
}

// queuedOnEndpointRow runs each of steps in a goroutine of its own while another
// transaction holds the endpoint's row, starting each once the ones before it wait for a
// lock, so that they queue in that order; then it releases the row, waits for them, and
// fails the test on an error, or on a transaction db tried again (a deadlock).
func queuedOnEndpointRow(t *testing.T, db *store.DB, steps ...func() error) {
	t.Helper()
	var mu sync.Mutex
	var retried []error
	db.OnRetry(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		retried = append(retried, err)
	})
	var wg sync.WaitGroup
	errs := make([]error, len(steps))
	if err := db.HoldEndpointRow(context.Background(), "arcade", hookURL, func() {
		for i, step := range steps {
			wg.Go(func() { errs[i] = step() })
			lockWaiters(t, db, int64(i+1))
		}
	}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(retried) > 0 {
		t.Fatalf("deadlocked, retried: %v", retried)
	}
}

// An attempt's outcome recorded beside a retry by hand of the message behind it does not
// deadlock: the recording moved (or released) that message after taking the endpoint's
// row, and the retry, holding the message, waited for that row (review helper 202).
func TestWebhookAttemptBesideARetryOfTheNextIsNoDeadlock(t *testing.T) {
	for _, ok := range []bool{false, true} {
		t.Run(fmt.Sprintf("success=%v", ok), func(t *testing.T) {
			ctx := context.Background()
			clock := storetest.NewClock(t0)
			db := openHooked(t, storetest.URL(t, store.Postgres), clock.Now, arcadeSubscribes)
			all := seedDeliveries(t, db, "u1", "u1")
			// u1's first failed and was retried by hand: the message behind it waits
			// for the retry it had.
			heads, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
			if err != nil || len(heads) != 1 || heads[0].ID != all[0].ID {
				t.Fatalf("claimed %v, %v", ids(heads), err)
			}
			if err := tryAttempt(db, heads[0], "A", false, time.Hour); err != nil {
				t.Fatal(err)
			}
			if _, err := db.RetryDelivery(ctx, all[0].ID, "alice"); err != nil {
				t.Fatal(err)
			}
			if heads, err = db.ClaimDeliveries(ctx, "A", 10, time.Minute); err != nil || len(heads) != 1 || heads[0].ID != all[0].ID {
				t.Fatalf("claimed %v, %v", ids(heads), err)
			}
			// The endpoint is failing, so a success writes its row too.
			if err := db.ExecRaw(ctx, `UPDATE webhook_endpoints SET failing_since = ?, last_failure_at = ?`,
				t0.Add(-time.Hour), t0.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
			queuedOnEndpointRow(t, db,
				func() error { return tryAttempt(db, heads[0], "A", ok, 2*time.Hour) },
				func() error { _, err := db.RetryDelivery(ctx, all[1].ID, "alice"); return err })
		})
	}
}

// A message that was attempted itself keeps its own retry behind an older one sent again
// by hand: when that one failed, the message took its retry, and kept it after it was
// delivered, waiting hours past its own (review helper 202).
func TestWebhookAttemptedMessageKeepsItsOwnRetry(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		seedDeliveries(t, db, "u1", "u1")
		first := sendOne(t, db, true, 0)
		second := sendOne(t, db, false, 5*time.Second) // retried in 5 s
		clock.Advance(time.Minute)
		if _, err := db.RetryDelivery(ctx, first.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		sendOne(t, db, false, 2*time.Hour) // the one sent again fails: retried in 2 h
		if _, err := db.RetryDelivery(ctx, first.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		if again := sendOne(t, db, true, 0); again.ID != first.ID {
			t.Fatalf("sent %d, want %d", again.ID, first.ID)
		}
		if got, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute); len(got) != 1 || got[0].ID != second.ID {
			t.Fatalf("claimed %v once the one sent again was delivered, want %d, its own retry long past", ids(got), second.ID)
		}
	})
}

// Two recordings of one user's messages, an older one sent again by hand and the next one
// being sent beside it, both failing, do not deadlock whatever plan Postgres picks: each
// moved the messages behind it in the plan's order (the due index's, or the table's),
// and with the messages written in another order than they came due, they took them in
// opposite orders (review helper 204).
func TestWebhookTwoFailuresOfOneUserAreNoDeadlock(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(t0)
	db := openHooked(t, storetest.URL(t, store.Postgres), clock.Now, arcadeSubscribes)
	claim := func(want int64) rewards.Delivery {
		t.Helper()
		got, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if err != nil || len(got) != 1 || got[0].ID != want {
			t.Fatalf("claimed %v, %v; want %d", ids(got), err, want)
		}
		return got[0]
	}
	record := func(d rewards.Delivery, ok bool, retry time.Duration) error { return tryAttempt(db, d, "A", ok, retry) }
	adjust := func(key string) {
		t.Helper()
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "t", Property: "arcade", User: "u1", Amount: d("1"),
			Reason: "r", IdempotencyKey: key, RequestHash: key}); err != nil {
			t.Fatal(err)
		}
	}
	adjust("o")
	o := claim(1)
	if err := record(o, false, time.Hour); err != nil {
		t.Fatal(err)
	}
	adjust("n") // 2, behind o's retry
	clock.Advance(time.Minute)
	if _, err := db.RetryDelivery(ctx, o.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	adjust("a") // 3, due now
	clock.Advance(time.Minute)
	if err := record(claim(o.ID), true, 0); err != nil {
		t.Fatal(err)
	}
	n := claim(2)                                                   // due now, after 3
	if _, err := db.RetryDelivery(ctx, o.ID, "alice"); err != nil { // o sent again
		t.Fatal(err)
	}
	o = claim(o.ID)
	if err := db.ExecRaw(ctx, `ANALYZE webhook_deliveries`); err != nil {
		t.Fatal(err)
	}
	queuedOnEndpointRow(t, db,
		// A retry by hand of n, being sent, holds it and waits for the endpoint's row.
		func() error { _, err := db.RetryDelivery(ctx, n.ID, "alice"); return err },
		func() error { return record(n, false, 2*time.Hour) },
		func() error { return record(o, false, time.Hour) })
}

// A message being sent keeps its due time while an older one of its user, sent again by
// hand, fails beside it: moved to that one's retry, its own failure read as a retry by
// hand asked during the attempt, which neither advanced its schedule nor kept its own
// retry (review helper 204).
func TestWebhookMessageBeingSentKeepsItsOwnSchedule(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		all := seedDeliveries(t, db, "u1", "u1")
		sendOne(t, db, true, 0)
		n, _ := db.ClaimDeliveries(ctx, "A", 10, time.Minute) // the next, being sent
		if len(n) != 1 || n[0].ID != all[1].ID {
			t.Fatalf("claimed %v", ids(n))
		}
		if _, err := db.RetryDelivery(ctx, all[0].ID, "alice"); err != nil { // the first sent again
			t.Fatal(err)
		}
		o, _ := db.ClaimDeliveries(ctx, "B", 10, time.Minute)
		if len(o) != 1 || o[0].ID != all[0].ID {
			t.Fatalf("claimed %v", ids(o))
		}
		if err := errors.Join(tryAttempt(db, o[0], "B", false, time.Hour), tryAttempt(db, n[0], "A", false, 5*time.Second)); err != nil {
			t.Fatal(err)
		}
		for _, x := range deliveries(t, db) {
			if x.ID == all[1].ID && (x.Step != 1 || !x.NextAttemptAt.Equal(t0.Add(5*time.Second))) {
				t.Fatalf("the message being sent: step %d, due %s; want step 1, due in 5 s, its own retry", x.Step, x.NextAttemptAt)
			}
		}
	})
}

// tryAttempt records an attempt at d by holder, a success or a failure retried in retry,
// and reports an error unless it was recorded.
func tryAttempt(db *store.DB, d rewards.Delivery, holder string, ok bool, retry time.Duration) error {
	a := rewards.DeliveryAttempt{ID: d.ID, Holder: holder, Step: d.Step, Due: d.NextAttemptAt, OK: ok, Status: 204}
	if !ok {
		a.Status, a.Error, a.RetryIn = 503, "answered 503", retry
	}
	recorded, _, err := db.RecordAttempt(context.Background(), a)
	if err == nil && !recorded {
		err = fmt.Errorf("the attempt at delivery %d was not recorded", d.ID)
	}
	return err
}

// sendOne claims the one delivery due for holder "A" and records an attempt at it, a
// success or a failure retried in retry.
func sendOne(t *testing.T, db *store.DB, ok bool, retry time.Duration) rewards.Delivery {
	t.Helper()
	got, err := db.ClaimDeliveries(context.Background(), "A", 10, time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("claimed %v, %v; want one", ids(got), err)
	}
	if err := tryAttempt(db, got[0], "A", ok, retry); err != nil {
		t.Fatal(err)
	}
	return got[0]
}

// On SQLite the attempts recorded at the same time share a transaction: each in its own
// took the one write lock and synced the log, and beside a small publisher's ingest
// delivery fell minutes behind (review helper 211: 99-127 recordings a second against
// 135 changes). Each is still recorded as it would be alone.
func TestWebhookAttemptsRecordedTogetherOnSQLite(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(t0)
	db := openHooked(t, storetest.URL(t, store.SQLite), clock.Now, arcadeSubscribes)
	const n = 64
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
	}
	if err := store.WriteDeliveries(ctx, db, "arcade", users); err != nil {
		t.Fatal(err)
	}
	if err := store.WriteDeliveries(ctx, db, "arcade", users[:1]); err != nil { // u0's next message
		t.Fatal(err)
	}
	got, err := db.ClaimDeliveries(ctx, "w", 2*n, time.Minute)
	if err != nil || len(got) != n {
		t.Fatalf("claimed %d, %v; want %d", len(got), err, n)
	}
	// The first recording holds the recorder until every other one has been asked for.
	var mu sync.Mutex
	var batches []int
	first, asked := make(chan struct{}), make(chan struct{})
	store.SetBeforeAttemptBatch(db, func(k int) {
		mu.Lock()
		batches = append(batches, k)
		holding := len(batches) == 1
		mu.Unlock()
		if holding {
			close(first)
			<-asked
		}
	})
	record := func(dl rewards.Delivery) error {
		a := rewards.DeliveryAttempt{ID: dl.ID, Holder: "w", Step: dl.Step, Due: dl.NextAttemptAt, OK: true, Status: 200}
		if dl.User == "u1" { // one failure among them, retried in an hour
			a = rewards.DeliveryAttempt{ID: dl.ID, Holder: "w", Step: dl.Step, Due: dl.NextAttemptAt, Status: 503, Error: "answered 503", RetryIn: time.Hour}
		}
		recorded, _, err := db.RecordAttempt(ctx, a)
		if err == nil && !recorded {
			err = fmt.Errorf("delivery %d not recorded", dl.ID)
		}
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	wg.Go(func() { errs <- record(got[0]) })
	<-first
	var started sync.WaitGroup
	for _, dl := range got[1:] {
		started.Add(1)
		wg.Go(func() { started.Done(); errs <- record(dl) })
	}
	started.Wait()
	close(asked)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(batches) > 8 {
		t.Errorf("%d attempts asked for together were recorded in %d transactions: %v", n, len(batches), batches)
	}
	// Each as it would be alone: delivered, the failure waiting for its retry, and u0's
	// next message due at once.
	ds, err := db.Deliveries(ctx, rewards.DeliveryFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, dl := range ds {
		count[dl.Status]++
		if dl.User == "u1" && (dl.Status != rewards.DeliveryPending || !dl.NextAttemptAt.Equal(t0.Add(time.Hour))) {
			t.Errorf("u1's failed attempt: %s, due %v", dl.Status, dl.NextAttemptAt)
		}
	}
	if count[rewards.DeliveryDelivered] != n-1 || count[rewards.DeliveryPending] != 2 {
		t.Errorf("deliveries by status %v, want %d delivered and 2 pending", count, n-1)
	}
	if next, err := db.ClaimDeliveries(ctx, "w", 10, time.Minute); err != nil || len(next) != 1 || next[0].User != "u0" {
		t.Fatalf("claimed %v, %v; want u0's next message", next, err)
	}
}

// On SQLite a recording reported failed was not committed, and one committed is not
// reported failed: the caller's deadline ending while its batch waited for the write
// lock answered "unavailable" while the batch went on to record the failure that
// disabled the endpoint, and the worker never logged it disabled (review helper 213).
func TestWebhookAttemptOutlivingItsDeadlineOnSQLiteIsReportedAsRecorded(t *testing.T) {
	ctx := context.Background()
	clock := storetest.NewClock(t0)
	db := openHooked(t, storetest.URL(t, store.SQLite), clock.Now, arcadeSubscribes)
	// Failing for six days: the next failure disables the endpoint.
	if err := db.ExecRaw(ctx, `INSERT INTO webhook_endpoints (property, url, failing_since, last_failure_at) VALUES ('arcade', ?, ?, ?)`,
		hookURL, t0.Add(-6*24*time.Hour), t0.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	seedDeliveries(t, db, "u1")
	got, err := db.ClaimDeliveries(ctx, "A", 10, time.Minute)
	if err != nil || len(got) != 1 {
		t.Fatalf("claimed %v, %v", ids(got), err)
	}
	type result struct {
		recorded, disabled bool
		err                error
	}
	done := make(chan result, 1)
	if err := db.HoldWriteLock(ctx, func() {
		// The recording waits for the write lock past its own deadline.
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		go func() {
			defer cancel()
			recorded, disabled, err := db.RecordAttempt(rctx, rewards.DeliveryAttempt{ID: got[0].ID, Holder: "A", Step: got[0].Step,
				Due: got[0].NextAttemptAt, Status: 503, Error: "answered 503", RetryIn: time.Minute, DisableAfter: 5 * 24 * time.Hour})
			done <- result{recorded, disabled, err}
		}()
		<-rctx.Done()
	}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	// A later recording, of nothing, comes after the first one's batch has ended.
	if _, _, err := db.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: -1, Holder: "A"}); err != nil {
		t.Fatal(err)
	}
	attempts, err := store.QueryInt(ctx, db, `SELECT attempts FROM webhook_deliveries WHERE id = ?`, got[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	disabled, err := store.QueryInt(ctx, db, `SELECT count(*) FROM webhook_endpoints WHERE disabled_at IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	if (attempts == 1) != (r.err == nil && r.recorded) || (disabled == 1) != (r.err == nil && r.disabled) {
		t.Fatalf("reported recorded %v, disabled %v, %v; the database has %d attempts and %d endpoints disabled",
			r.recorded, r.disabled, r.err, attempts, disabled)
	}
}

// Claims running at once never lease one delivery twice. A claim reads its candidates,
// then locks them; a row another claim leased and committed in between is locked as it
// is now, and Postgres tests again only the locked row's own conditions: without its due
// time and lease among them, two replicas sent 133 messages of 120.
func TestWebhookClaimsAtOnceLeaseEachDeliveryOnce(t *testing.T) {
	ctx := context.Background()
	db := openHooked(t, storetest.URL(t, store.Postgres), nil, arcadeSubscribes)
	const n = 2000
	insertDeliveries(t, db, hookURL, "now() - interval '1 minute'", n)
	seen := claimAtOnce(t, 8, func(_ int, holder string) ([]rewards.Delivery, error) {
		return db.ClaimDeliveriesFor(ctx, holder, 10, time.Hour, [][2]string{{"arcade", hookURL}})
	})
	if len(seen) != n {
		t.Errorf("%d of %d deliveries leased", len(seen), n)
	}
}

// One user's backlog behind a retry drains one message a pass (order per user), and no
// claim reads what is left of it: the messages behind the first are parked past its
// retry until their turn (waitBehindHead, outbox.flush). Due at the retry itself, they
// came due with it, and each claim passed over all that was left, at every pass while
// it drained (100,000 waiting: 0.4-1.4 s a claim; review helper 219).
func TestWebhookBacklogBehindARetryDrainsUnread(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		eps := [][2]string{{"arcade", hookURL}}
		write := func(users ...string) {
			t.Helper()
			if err := store.WriteDeliveries(ctx, db, "arcade", users); err != nil {
				t.Fatal(err)
			}
		}
		claim := func() []rewards.Delivery {
			t.Helper()
			if dia == store.Postgres {
				if read, plan, err := store.DueDeliveriesRun(ctx, db, clock.Now(), 100, eps); err != nil || read > 100 {
					t.Fatalf("a claim at %s read %d rows of the outbox (%v):\n%s", clock.Now(), read, err, plan)
				}
				if read, plan, err := store.DueEndpointsRun(ctx, db, clock.Now(), eps); err != nil || read > 10 {
					t.Fatalf("a poll read %d rows of the outbox (%v):\n%s", read, err, plan)
				}
			}
			got, err := db.ClaimDeliveriesFor(ctx, "A", 100, time.Minute, eps)
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		write("big")
		first := claim()
		if len(first) != 1 {
			t.Fatalf("claimed %v, want big's first", ids(first))
		}
		if err := tryAttempt(db, first[0], "A", false, time.Hour); err != nil { // retried in an hour
			t.Fatal(err)
		}
		// 200 messages behind the retry, written together and one by one.
		write(slices.Repeat([]string{"big"}, 180)...)
		for range 20 {
			write("big")
		}
		others := make([]string, 20)
		for i := range others {
			others[i] = fmt.Sprintf("u%d", i+1)
		}
		write(others...)
		if dia == store.Postgres {
			if err := db.ExecRaw(ctx, `ANALYZE webhook_deliveries`); err != nil { // as autovacuum does
				t.Fatal(err)
			}
		}
		got := claim()
		if len(got) != 20 {
			t.Fatalf("claimed %d, want the 20 other users' messages", len(got))
		}
		for _, x := range got {
			if err := tryAttempt(db, x, "A", true, 0); err != nil {
				t.Fatal(err)
			}
		}
		clock.Advance(time.Hour)
		got = claim()
		if len(got) != 1 || got[0].ID != first[0].ID {
			t.Fatalf("claimed %v at the retry, want big's first, %d", ids(got), first[0].ID)
		}
		drain := func(d rewards.Delivery, waiting int) {
			t.Helper()
			for sent := 0; ; sent++ {
				if err := tryAttempt(db, d, "A", true, 0); err != nil {
					t.Fatal(err)
				}
				got := claim()
				if len(got) == 0 {
					if sent != waiting {
						t.Fatalf("%d of %s's %d waiting messages sent, then none due", sent, d.User, waiting)
					}
					return
				}
				if len(got) != 1 || got[0].User != d.User || got[0].ID <= d.ID {
					t.Fatalf("claimed %v after delivery %d, want %s's next", ids(got), d.ID, d.User)
				}
				d = got[0]
			}
		}
		drain(got[0], 200)
		// Messages of one user written together with none pending before them: the
		// first is due, the rest wait behind it.
		write(slices.Repeat([]string{"bulk"}, 100)...)
		got = claim()
		if len(got) != 1 || got[0].User != "bulk" {
			t.Fatalf("claimed %v, want bulk's first", ids(got))
		}
		drain(got[0], 99)
	})
}

// A message written while the one before it is delivered is due at once, not parked
// behind a delivery that is no longer pending. The write skips a first delivery whose
// recording holds it, and a recording that comes while the write holds the first one
// waits for it, then makes the message behind due: without the write's lock, both
// committing at once, nothing made the message due until its parked time, an hour on.
func TestWebhookMessageWrittenAsTheOneBeforeIsDeliveredIsDueAtOnce(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.Postgres)
	writer := openHooked(t, u, nil, arcadeSubscribes)
	recorder := openHooked(t, u, nil, arcadeSubscribes)
	write := func(ctx context.Context, user string) error {
		return store.WriteDeliveries(ctx, writer, "arcade", []string{user})
	}
	claimOne := func(user string) rewards.Delivery {
		t.Helper()
		got, err := recorder.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if err != nil || len(got) != 1 || got[0].User != user {
			t.Fatalf("claimed %+v, %v; want %s's next message", got, err, user)
		}
		return got[0]
	}
	once := func(fn func()) func() {
		var o sync.Once
		return func() { o.Do(fn) }
	}

	// The recording commits while the message is written: the write does not wait for it.
	if err := write(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	head := claimOne("u1")
	var written error
	store.BeforeCommit(recorder, once(func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		written = write(wctx, "u1")
	}))
	err := tryAttempt(recorder, head, "A", true, 0)
	store.BeforeCommit(recorder, nil)
	if err != nil || written != nil {
		t.Fatalf("recorded: %v; written beside it: %v", err, written)
	}
	claimOne("u1")

	// The message is written while the recording comes: the recording waits for it.
	if err := write(ctx, "u2"); err != nil {
		t.Fatal(err)
	}
	head = claimOne("u2")
	var recorded <-chan error
	store.BeforeCommit(writer, once(func() {
		recorded = startUntilWaiting(recorder, func() error { return tryAttempt(recorder, head, "A", true, 0) })
	}))
	err = write(ctx, "u2")
	store.BeforeCommit(writer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-recorded; err != nil {
		t.Fatal(err)
	}
	claimOne("u2")
}

// A message written beside the failure that disables the endpoint is not left first in
// line, parked, once the endpoint is enabled again. The write locks only the user's
// first delivery, and counts one a recording holds as none: it took the first one it
// could lock, a message parked behind the one being failed, which the disabling failure
// then skipped (it fails what no one holds); a success enabled the endpoint, and that
// message waited its hour with nothing to make it due (review helper 221).
func TestWebhookWriteBesideADisablingFailureLeavesNothingParkedFirst(t *testing.T) {
	ctx := context.Background()
	writer, recorder := twoHooked(t)
	write := func(users ...string) error { return store.WriteDeliveries(ctx, writer, "arcade", users) }
	for _, users := range [][]string{{"a"}, {"a", "a"}, {"c"}} { // a's first, two behind it; c's
		if err := write(users...); err != nil {
			t.Fatal(err)
		}
	}
	heads, err := recorder.ClaimDeliveries(ctx, "A", 10, time.Minute)
	if err != nil || len(heads) != 2 || heads[0].User != "a" || heads[1].User != "c" {
		t.Fatalf("claimed %+v, %v; want a's first and c's", heads, err)
	}
	// Failing for six days: the next failure disables the endpoint.
	if err := recorder.ExecRaw(ctx, `INSERT INTO webhook_endpoints (property, url, failing_since, last_failure_at) VALUES ('arcade', ?, ?, ?)`,
		hookURL, t0.Add(-6*24*time.Hour), t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	// a's first fails for good while the endpoint's row is held: it makes the next one
	// due, then waits for the row. A message of a's is written meanwhile, and commits
	// after the failure has disabled the endpoint.
	recorded, written := make(chan error, 1), make(chan error, 1)
	flushed, commit := make(chan struct{}), make(chan struct{})
	var once sync.Once
	store.BeforeCommit(writer, func() { once.Do(func() { close(flushed); <-commit }) })
	if err := recorder.HoldEndpointRow(ctx, "arcade", hookURL, func() {
		go func() {
			_, _, err := recorder.RecordAttempt(ctx, rewards.DeliveryAttempt{ID: heads[0].ID, Holder: "A", Step: heads[0].Step,
				Due: heads[0].NextAttemptAt, Status: 503, Error: "answered 503", DisableAfter: 5 * 24 * time.Hour})
			recorded <- err
		}()
		lockWaiters(t, recorder, 1)
		go func() { written <- write("a") }()
		<-flushed
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-recorded; err != nil {
		t.Fatal(err)
	}
	close(commit)
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	store.BeforeCommit(writer, nil)
	// c's attempt in flight succeeds: the endpoint is enabled again.
	if err := tryAttempt(recorder, heads[1], "A", true, 0); err != nil {
		t.Fatal(err)
	}
	var pending []rewards.Delivery
	for _, d := range deliveries(t, recorder) {
		if d.User == "a" && d.Status == rewards.DeliveryPending {
			pending = append(pending, d)
		}
	}
	got, err := recorder.ClaimDeliveries(ctx, "B", 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) > 0 && (len(got) != 1 || got[0].ID != pending[0].ID) {
		t.Fatalf("a's first pending delivery %d (due %s) not claimed with the endpoint enabled: claimed %v",
			pending[0].ID, pending[0].NextAttemptAt, ids(got))
	}
}

// An older message sent again by hand and the next one, both delivered at once, leave
// the one behind them due: each recording saw the other's message still pending, being
// sent, and left the next in line to it, and the third stayed parked for its hour
// (review helper 224).
func TestWebhookTwoDeliveriesAtOnceLeaveTheNextDue(t *testing.T) {
	ctx := context.Background()
	one, other := twoHooked(t)
	write := func() {
		t.Helper()
		if err := store.WriteDeliveries(ctx, one, "arcade", []string{"u1"}); err != nil {
			t.Fatal(err)
		}
	}
	claimOne := func() rewards.Delivery {
		t.Helper()
		got, err := one.ClaimDeliveries(ctx, "A", 10, time.Minute)
		if err != nil || len(got) != 1 {
			t.Fatalf("claimed %v, %v; want one", ids(got), err)
		}
		return got[0]
	}
	write()
	m1 := claimOne()
	if err := tryAttempt(one, m1, "A", true, 0); err != nil {
		t.Fatal(err)
	}
	write() // m2, first in line
	write() // m3, parked behind it
	m2 := claimOne()
	if _, err := one.RetryDelivery(ctx, m1.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	again := claimOne()
	if again.ID != m1.ID {
		t.Fatalf("claimed %d, want %d sent again", again.ID, m1.ID)
	}
	// m2's recording runs while m1's is about to commit: to its own commit, or until it
	// waits for m1's (a lock m1's holds).
	var m2done <-chan error
	var once sync.Once
	store.BeforeCommit(one, func() {
		once.Do(func() { m2done = startUntilWaiting(other, func() error { return tryAttempt(other, m2, "A", true, 0) }) })
	})
	err := tryAttempt(one, again, "A", true, 0)
	store.BeforeCommit(one, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-m2done; err != nil {
		t.Fatal(err)
	}
	got, err := one.ClaimDeliveries(ctx, "A", 10, time.Minute)
	if err != nil || len(got) != 1 || got[0].ID <= m2.ID {
		t.Fatalf("claimed %v, %v once both were delivered; want the third message", ids(got), err)
	}
}

// A user's first message whose turn came without nextInLine seeing it (here: the one
// before it marked delivered behind the store's back) waits parked for an hour; the
// workers' sweep makes it due, and only it: messages behind a pending one stay parked,
// and a first one that was attempted, or is being sent, keeps its own time.
func TestWebhookSweepMakesAParkedFirstMessageDue(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		clock := storetest.NewClock(t0)
		db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
		write := func(users ...string) {
			t.Helper()
			if err := store.WriteDeliveries(ctx, db, "arcade", users); err != nil {
				t.Fatal(err)
			}
		}
		// Each user's first message, then one behind it, then (u1) a third.
		write("u1", "u2", "u3", "u4")
		write("u1", "u2", "u3", "u4")
		write("u1")
		first := map[string]int64{}
		byID := map[int64]rewards.Delivery{}
		for _, d := range deliveries(t, db) {
			if _, ok := first[d.User]; !ok {
				first[d.User] = d.ID
			}
			byID[d.ID] = d
		}
		// u3's first message was attempted and waits for its retry.
		got, err := db.ClaimDeliveriesFor(ctx, "A", 10, time.Minute, [][2]string{{"arcade", hookURL}})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range got {
			if d.User == "u3" {
				if err := tryAttempt(db, d, "A", false, 2*time.Hour); err != nil {
					t.Fatal(err)
				}
			} else if err := db.ReleaseDeliveries(ctx, "A", []int64{d.ID}); err != nil {
				t.Fatal(err)
			}
		}
		// u1's and u4's first messages end with nothing making the next one due; u4's next
		// one is being sent all the same (a lease taken by hand).
		for _, u := range []string{"u1", "u4"} {
			if err := db.ExecRaw(ctx, `UPDATE webhook_deliveries SET status = 'delivered' WHERE id = ?`, first[u]); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.ExecRaw(ctx, `UPDATE webhook_deliveries SET holder = 'B', lease_until = ?
			WHERE status = 'pending' AND user_id = 'u4'`, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		// u5's one message is due a moment from now, as a replica whose clock is ahead
		// writes it: it is not parked.
		clock.Set(t0.Add(3 * time.Second))
		write("u5")
		clock.Set(t0.Add(time.Second))
		before := map[int64]time.Time{}
		for _, d := range deliveries(t, db) {
			before[d.ID] = d.NextAttemptAt
		}
		endpoint := [2]string{"arcade", hookURL}
		if eps, err := db.ParkedEndpoints(ctx, [][2]string{endpoint, {"arcade", "https://other.example/hooks"}}); err != nil ||
			len(eps) != 1 || eps[0] != endpoint {
			t.Fatalf("ParkedEndpoints named %v, %v; want only %v", eps, err, endpoint)
		}
		sweep := func(after string, limit int, wantMade int, wantLast string) []int64 {
			t.Helper()
			made, last, err := db.UnparkHeads(ctx, endpoint, after, limit)
			if err != nil || len(made) != wantMade || last != wantLast {
				t.Fatalf("UnparkHeads after %q (%d users) made %v due up to %q, %v; want %d up to %q",
					after, limit, made, last, err, wantMade, wantLast)
			}
			return made
		}
		made := sweep("", 1, 1, "u1") // u1's second message; the next sweep goes on after u1
		sweep("u1", 2, 0, "u3")       // u2, u3 (its first message waits for its retry in 2 h)
		sweep("u3", 3, 0, "")         // u4 and u5, the last: the next sweep starts over
		if made, last, err := db.UnparkHeads(ctx, [2]string{"arcade", "https://other.example/hooks"}, "", 10); err != nil || len(made) != 0 || last != "" {
			t.Fatalf("another endpoint's sweep made %v due up to %q, %v", made, last, err)
		}
		var stranded int64
		for _, d := range deliveries(t, db) {
			if d.User == "u1" && d.ID > first["u1"] && stranded == 0 {
				if stranded = d.ID; len(made) != 1 || made[0] != stranded {
					t.Errorf("UnparkHeads reported %v made due, want [%d]", made, stranded)
				}
				if !d.NextAttemptAt.Equal(clock.Now()) {
					t.Errorf("u1's first pending message %d is due at %v, want now (%v)", d.ID, d.NextAttemptAt, clock.Now())
				}
				continue
			}
			if !d.NextAttemptAt.Equal(before[d.ID]) {
				t.Errorf("delivery %d of %s moved from %v to %v", d.ID, d.User, before[d.ID], d.NextAttemptAt)
			}
		}
		got, err = db.ClaimDeliveriesFor(ctx, "A", 10, time.Minute, [][2]string{{"arcade", hookURL}})
		if err != nil {
			t.Fatal(err)
		}
		claimed := map[string]int64{}
		for _, d := range got {
			claimed[d.User] = d.ID
		}
		if claimed["u1"] != stranded || claimed["u2"] != first["u2"] || len(got) != 2 {
			t.Fatalf("claimed %v; want u1's %d and u2's first %d", claimed, stranded, first["u2"])
		}
		// Nothing left to make due: a second sweep changes nothing.
		sweep("", 10, 0, "")
	})
}

// The sweep tests a parked first message again as it updates it: one that a retry by
// hand made due, one now behind an older message sent again by hand, or one being sent,
// since the sweep read it, is left as it is and not counted.
func TestWebhookSweepLeavesWhatChangedSinceItsRead(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(t *testing.T, db *store.DB, first, stranded int64)
		due    bool // the stranded message is due after the sweep (by the change)
	}{
		{"retried by hand", func(t *testing.T, db *store.DB, _, stranded int64) {
			if _, err := db.RetryDelivery(context.Background(), stranded, "alice"); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"behind an older message sent again", func(t *testing.T, db *store.DB, first, _ int64) {
			if _, err := db.RetryDelivery(context.Background(), first, "alice"); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"being sent", func(t *testing.T, db *store.DB, _, stranded int64) {
			if err := db.ExecRaw(context.Background(), `UPDATE webhook_deliveries SET holder = 'B', lease_until = ? WHERE id = ?`,
				t0.Add(time.Hour), stranded); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
				ctx := context.Background()
				clock := storetest.NewClock(t0)
				db := openHooked(t, storetest.URL(t, dia), clock.Now, arcadeSubscribes)
				for range 2 {
					if err := store.WriteDeliveries(ctx, db, "arcade", []string{"u1"}); err != nil {
						t.Fatal(err)
					}
				}
				ds := deliveries(t, db)
				first, stranded := ds[0].ID, ds[1].ID
				if err := db.ExecRaw(ctx, `UPDATE webhook_deliveries SET status = 'delivered' WHERE id = ?`, first); err != nil {
					t.Fatal(err)
				}
				store.AfterParkedRead(db, func() { c.change(t, db, first, stranded) })
				made, _, err := db.UnparkHeads(ctx, [2]string{"arcade", hookURL}, "", 10)
				store.AfterParkedRead(db, nil)
				if err != nil || len(made) != 0 {
					t.Fatalf("UnparkHeads made %v due, %v; want none", made, err)
				}
				for _, d := range deliveries(t, db) {
					if d.ID == stranded && d.NextAttemptAt.After(clock.Now()) == c.due {
						t.Fatalf("message %d due at %v (now %v); due now: %v", d.ID, d.NextAttemptAt, clock.Now(), c.due)
					}
				}
			})
		})
	}
}
