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

// fund puts amount in the user's available balance through an adjustment.
func fund(t *testing.T, db *store.DB, user, amount string) {
	t.Helper()
	_, _, err := db.Adjust(context.Background(), rewards.AdjustRequest{Actor: "test", Property: "arcade", User: user, Amount: d(amount),
		Reason: "test funds", IdempotencyKey: "fund-" + user + "-" + amount, RequestHash: "h"})
	if err != nil {
		t.Fatalf("fund %s: %v", user, err)
	}
}

func redeemReq(user, amount, key string) rewards.RedeemRequest {
	return rewards.RedeemRequest{Property: "arcade", User: user, Amount: d(amount), Reference: "ref-" + key,
		IdempotencyKey: key, RequestHash: "hash:" + user + ":" + amount}
}

// A commit whose answer never came (the connection broke after the work was sent) is
// "outcome unknown" on Postgres, never "nothing was saved": the caller must retry with
// the same key, which then answers what was saved. SQLite's in-process commit has no
// such case.
func TestCommitWithoutAnswerIsOutcomeUnknown(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		ctx := context.Background()
		fund(t, db, "u1", "100")
		store.FailCommits(db, errors.New("connection reset by peer"))
		_, _, err := db.Redeem(ctx, redeemReq("u1", "30", "k1"))
		store.FailCommits(db, nil)
		if !errors.Is(err, rewards.ErrUnavailable) || errors.Is(err, rewards.ErrOutcomeUnknown) != (dia == store.Postgres) {
			t.Fatalf("redeem whose commit went unanswered: %v (want unavailable, outcome unknown on Postgres only)", err)
		}
		// The retry with the same key answers what was saved (here: nothing was).
		r, replayed, err := db.Redeem(ctx, redeemReq("u1", "30", "k1"))
		if err != nil || replayed || !r.Balance.Available.Equal(d("70")) {
			t.Fatalf("retry: %+v %v %v", r, replayed, err)
		}
	})
}

func TestRedeemIdempotency(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		fund(t, db, "u1", "100")

		r, replayed, err := db.Redeem(ctx, redeemReq("u1", "30", "k1"))
		if err != nil || replayed {
			t.Fatalf("Redeem = %+v, %v, %v", r, replayed, err)
		}
		if r.ID == 0 || !r.Amount.Equal(d("30")) || r.Reference != "ref-k1" || !r.Balance.Available.Equal(d("70")) ||
			!r.Balance.Redeemed.Equal(d("30")) || !r.CreatedAt.Equal(t0) {
			t.Fatalf("redemption = %+v", r)
		}
		// The balance moves on; a retry still answers as the first time.
		fund(t, db, "u1", "5")
		again, replayed, err := db.Redeem(ctx, redeemReq("u1", "30", "k1"))
		if err != nil || !replayed || again.ID != r.ID || !again.Balance.Available.Equal(d("70")) || !again.Balance.Redeemed.Equal(d("30")) {
			t.Fatalf("retry = %+v, %v, %v; want replay of %+v", again, replayed, err, r)
		}
		wantBalance(t, db, "u1", "0", "75")

		other := redeemReq("u1", "31", "k1")
		if _, _, err := db.Redeem(ctx, other); !errors.Is(err, rewards.ErrIdempotencyMismatch) {
			t.Fatalf("same key, other body: err = %v, want ErrIdempotencyMismatch", err)
		}
		fund(t, db, "u2", "100")
		if _, _, err := db.Redeem(ctx, redeemReq("u2", "30", "k1")); !errors.Is(err, rewards.ErrIdempotencyMismatch) {
			t.Fatalf("same key, other user: err = %v, want ErrIdempotencyMismatch", err)
		}

		// Refusals are not recorded: the same key succeeds once the funds are there.
		if _, _, err := db.Redeem(ctx, redeemReq("u1", "75.5", "k2")); !errors.Is(err, rewards.ErrInsufficientFunds) {
			t.Fatalf("overdraw: err = %v, want ErrInsufficientFunds", err)
		}
		fund(t, db, "u1", "0.5")
		if r, _, err := db.Redeem(ctx, redeemReq("u1", "75.5", "k2")); err != nil || !r.Balance.Available.IsZero() {
			t.Fatalf("after funding: %+v, %v", r, err)
		}
		// Exactly the whole balance is allowed; one unit more is not.
		if _, _, err := db.Redeem(ctx, redeemReq("u1", "0.000000000000000001", "k3")); !errors.Is(err, rewards.ErrInsufficientFunds) {
			t.Fatalf("redeem from zero: err = %v", err)
		}
		if _, _, err := db.Redeem(ctx, redeemReq("nobody", "1", "k4")); !errors.Is(err, rewards.ErrInsufficientFunds) {
			t.Fatalf("unknown user: err = %v, want ErrInsufficientFunds", err)
		}
		for _, bad := range []rewards.RedeemRequest{redeemReq("u1", "0", "k5"), redeemReq("u1", "-1", "k6"), redeemReq("u1", "1", "")} {
			if _, _, err := db.Redeem(ctx, bad); !errors.Is(err, rewards.ErrInvalidRequest) {
				t.Errorf("Redeem(%+v): err = %v, want ErrInvalidRequest", bad, err)
			}
		}
		checkInvariants(t, db)
	})
}

// Many redemptions at once on one wallet: never more than it holds, and a key sent by
// several clients at once redeems once.
func TestConcurrentRedemptions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		ctx := context.Background()
		fund(t, db, "u1", "100")
		const n = 24
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		ids := map[int64]int{}
		for i := range n {
			wg.Add(2)
			go func() { // distinct keys: 14 of 7 fit in 100
				defer wg.Done()
				_, _, err := db.Redeem(ctx, redeemReq("u1", "7", fmt.Sprintf("k%d", i)))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, rewards.ErrInsufficientFunds):
					refused++
				default:
					t.Errorf("redeem %d: %v", i, err)
				}
			}()
			go func() { // one shared key
				defer wg.Done()
				r, _, err := db.Redeem(ctx, redeemReq("u1", "1", "shared"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ids[r.ID]++
				case errors.Is(err, rewards.ErrInsufficientFunds):
				default:
					t.Errorf("shared redeem %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if len(ids) > 1 {
			t.Fatalf("one key made %d redemptions: %v", len(ids), ids)
		}
		b, err := db.Balance(ctx, "arcade", "u1")
		if err != nil {
			t.Fatal(err)
		}
		redeemed := decimal.NewFromInt(int64(7 * ok))
		if len(ids) == 1 {
			redeemed = redeemed.Add(d("1"))
		}
		if b.Available.IsNegative() || !b.Redeemed.Equal(redeemed) || !b.Available.Add(redeemed).Equal(d("100")) {
			t.Fatalf("balance %+v after %d redemptions of 7 and %d of 1", b, ok, len(ids))
		}
		// Whatever the interleaving, the wallet is drained to less than one more redemption of 7.
		if ok+refused != n || b.Available.GreaterThanOrEqual(d("7")) {
			t.Fatalf("%d redeemed, %d refused, %s left", ok, refused, b.Available)
		}
		checkInvariants(t, db)
	})
}

func TestAdjust(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		adj := func(amount string, bucket rewards.Bucket, key string) (rewards.Adjustment, bool, error) {
			return db.Adjust(ctx, rewards.AdjustRequest{Property: "arcade", User: "u1", Amount: d(amount), Bucket: bucket,
				Reason: "goodwill", IdempotencyKey: key, RequestHash: "h-" + key, Actor: "ops@example.com"})
		}
		a, replayed, err := adj("10", "", "a1")
		if err != nil || replayed || a.Bucket != rewards.Available || !a.Balance.Available.Equal(d("10")) ||
			!a.Balance.LifetimeEarned.Equal(d("10")) || a.Actor != "ops@example.com" || a.Reason != "goodwill" {
			t.Fatalf("credit = %+v, %v, %v", a, replayed, err)
		}
		again, replayed, err := adj("10", "", "a1")
		if err != nil || !replayed || again.ID != a.ID || !again.Balance.Available.Equal(d("10")) {
			t.Fatalf("retry = %+v, %v, %v", again, replayed, err)
		}
		if _, _, err := adj("11", "", "a1"); !errors.Is(err, rewards.ErrIdempotencyMismatch) {
			t.Fatalf("same key, other amount: %v", err)
		}
		if _, _, err := adj("-10.000000000000000001", "", "a2"); !errors.Is(err, rewards.ErrInsufficientFunds) {
			t.Fatalf("overdrawing debit: %v", err)
		}
		if a, _, err := adj("-10", "", "a3"); err != nil || !a.Balance.Available.IsZero() || !a.Balance.LifetimeEarned.IsZero() {
			t.Fatalf("debit to zero: %+v, %v", a, err)
		}

		// Pending: a credit matures at once; a debit nets against what matures.
		ingestOne(t, db, in(session("u1", "s-1", "0.000012", 60))) // 0.672, matures in 24h
		if _, _, err := adj("-0.672000000000000001", rewards.Pending, "p0"); !errors.Is(err, rewards.ErrInsufficientFunds) {
			t.Fatalf("overdrawing pending debit: %v", err)
		}
		if _, _, err := adj("-0.5", rewards.Pending, "p1"); err != nil {
			t.Fatal(err)
		}
		wantBalance(t, db, "u1", "0.172", "0")
		// u2 settles in the same batch as u1, whose lots stay.
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Property: "arcade", User: "u2", Amount: d("2.5"), Bucket: rewards.Pending,
			Reason: "goodwill", IdempotencyKey: "u2-p", RequestHash: "h-u2-p", Actor: "ops@example.com"}); err != nil {
			t.Fatal(err)
		}
		run := settle(t, db, 0)
		if run.Users != 1 || run.Entries != 1 || !run.Amount.Equal(d("2")) {
			t.Fatalf("a debit larger than what matured was settled, or u2 was not: %+v", run)
		}
		wantBalance(t, db, "u1", "0.172", "0")
		wantBalance(t, db, "u2", "0.5", "2")
		checkInvariants(t, db)
		if _, _, err := adj("2.5", rewards.Pending, "p2"); err != nil {
			t.Fatal(err)
		}
		run = settle(t, db, 0) // 2.5 − 0.5 = 2 matured now
		if run.Entries != 2 || !run.Amount.Equal(d("2")) {
			t.Fatalf("run = %+v, want the credit and the debit netted to 2", run)
		}
		wantBalance(t, db, "u1", "0.672", "2")
		clock.Advance(24 * time.Hour)
		settle(t, db, 0)
		wantBalance(t, db, "u1", "0.672", "2") // 0.672 is carried: less than a coin
		b, _ := db.Balance(ctx, "arcade", "u1")
		if !b.LifetimeEarned.Equal(d("2.672")) {
			t.Fatalf("lifetime_earned %s, want 2.672", b.LifetimeEarned)
		}
		// A pending debit of the carry alone.
		if _, _, err := adj("-0.672", rewards.Pending, "p3"); err != nil {
			t.Fatal(err)
		}
		settle(t, db, 0)
		wantBalance(t, db, "u1", "0", "2")

		for _, bad := range []rewards.AdjustRequest{
			{Property: "arcade", User: "u1", Amount: d("1"), Reason: "r", IdempotencyKey: "b0"}, // no actor for the audit log
			{Property: "arcade", User: "u1", Amount: d("0"), Reason: "r", IdempotencyKey: "b1"},
			{Property: "arcade", User: "u1", Amount: d("1"), Reason: " ", IdempotencyKey: "b2"},
			{Property: "arcade", User: "u1", Amount: d("1"), Reason: "r", IdempotencyKey: ""},
			{Property: "arcade", User: "u1", Amount: d("1"), Reason: "r", IdempotencyKey: "b3", Bucket: "carry"},
		} {
			if _, _, err := db.Adjust(ctx, bad); !errors.Is(err, rewards.ErrInvalidRequest) {
				t.Errorf("Adjust(%+v): err = %v, want ErrInvalidRequest", bad, err)
			}
		}
		checkInvariants(t, db)
	})
}
