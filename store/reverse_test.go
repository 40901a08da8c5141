package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

func reverseReq(id int64, key, reason string) rewards.ReverseRequest {
	return rewards.ReverseRequest{RedemptionID: id, Reason: reason, Actor: "alice", IdempotencyKey: key,
		RequestHash: fmt.Sprintf("rev:%d:%s", id, reason)}
}

func TestReverseRedemption(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		fund(t, db, "u1", "100")
		red, _, err := db.Redeem(ctx, redeemReq("u1", "30", "r1"))
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)

		rev, replayed, err := db.Reverse(ctx, reverseReq(red.ID, "v1", "gift card failed"))
		if err != nil || replayed {
			t.Fatalf("Reverse = %+v, %v, %v", rev, replayed, err)
		}
		if !rev.Amount.Equal(d("30")) || rev.Redemption.ID != red.ID || rev.Redemption.Reversal == nil ||
			rev.Redemption.Reversal.ID != rev.ID || rev.Actor != "alice" || !rev.CreatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("reversal = %+v", rev)
		}
		// The amount is back in available and no longer counts as redeemed.
		if !rev.Balance.Available.Equal(d("100")) || !rev.Balance.Redeemed.IsZero() || !rev.Balance.LifetimeEarned.Equal(d("100")) {
			t.Fatalf("balance after reversal = %+v", rev.Balance)
		}
		wantBalance(t, db, "u1", "0", "100")

		// A retry answers as the first time, even after the balance moved on.
		fund(t, db, "u1", "5")
		again, replayed, err := db.Reverse(ctx, reverseReq(red.ID, "v1", "gift card failed"))
		if err != nil || !replayed || again.ID != rev.ID || !again.Balance.Available.Equal(d("100")) {
			t.Fatalf("retry = %+v, %v, %v", again, replayed, err)
		}
		// The same key for another request is a mismatch; another key for the same
		// redemption finds it reversed already.
		if _, _, err := db.Reverse(ctx, reverseReq(red.ID, "v1", "another reason")); !errors.Is(err, rewards.ErrIdempotencyMismatch) {
			t.Fatalf("same key, other reason: %v", err)
		}
		if _, _, err := db.Reverse(ctx, reverseReq(red.ID, "v2", "gift card failed")); !errors.Is(err, rewards.ErrAlreadyReversed) {
			t.Fatalf("second reversal: %v, want ErrAlreadyReversed", err)
		}
		if _, _, err := db.Reverse(ctx, reverseReq(red.ID+1000, "v3", "x")); !errors.Is(err, rewards.ErrNotFound) {
			t.Fatalf("unknown redemption: %v, want ErrNotFound", err)
		}
		for _, bad := range []rewards.ReverseRequest{
			{RedemptionID: red.ID, Reason: "r", IdempotencyKey: "b1"}, // no actor
			{RedemptionID: red.ID, Reason: " ", Actor: "a", IdempotencyKey: "b2"},
			{RedemptionID: red.ID, Reason: "r", Actor: "a", IdempotencyKey: ""},
			{RedemptionID: 0, Reason: "r", Actor: "a", IdempotencyKey: "b3"},
		} {
			if _, _, err := db.Reverse(ctx, bad); !errors.Is(err, rewards.ErrInvalidRequest) {
				t.Errorf("Reverse(%+v) = %v, want ErrInvalidRequest", bad, err)
			}
		}

		// The ledger shows the reversal as an entry referencing the redemption.
		txns, err := db.Transactions(ctx, "arcade", "u1", 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, x := range txns {
			if x.Kind == string(rewards.EntryReversal) {
				found = true
				if x.Ref != fmt.Sprintf("redemption:%d", red.ID) || !x.Amount.Equal(d("30")) || x.Bucket != "available" {
					t.Errorf("reversal entry = %+v", x)
				}
			}
		}
		if !found {
			t.Fatalf("no reversal entry among %+v", txns)
		}

		// Reading the redemption shows it reversed.
		got, err := db.Redemption(ctx, "arcade", red.ID)
		if err != nil || got.Reversal == nil || got.Reversal.ID != rev.ID || !got.Reversal.CreatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("Redemption = %+v, %v", got, err)
		}
		if _, err := db.Redemption(ctx, "other", red.ID); !errors.Is(err, rewards.ErrNotFound) {
			t.Fatalf("redemption of another property: %v, want ErrNotFound", err)
		}
		checkInvariants(t, db)
	})
}

// Concurrent retries and rival keys: the redemption comes back exactly once.
func TestReverseOnceUnderConcurrency(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		ctx := context.Background()
		fund(t, db, "u1", "50")
		red, _, err := db.Redeem(ctx, redeemReq("u1", "50", "r1"))
		if err != nil {
			t.Fatal(err)
		}
		const n = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		ids := map[int64]int{}
		already := 0
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				key := "same"
				if i%2 == 1 {
					key = fmt.Sprintf("rival-%d", i)
				}
				r, _, err := db.Reverse(ctx, reverseReq(red.ID, key, "chargeback"))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ids[r.ID]++
				case errors.Is(err, rewards.ErrAlreadyReversed):
					already++
				default:
					t.Errorf("reverse %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if len(ids) != 1 {
			t.Fatalf("%d reversals of one redemption: %v", len(ids), ids)
		}
		wantBalance(t, db, "u1", "0", "50")
		b, err := db.Balance(ctx, "arcade", "u1")
		if err != nil || !b.Redeemed.IsZero() {
			t.Fatalf("balance %+v, %v", b, err)
		}
		checkInvariants(t, db)
	})
}

func TestListRedemptions(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		fund(t, db, "u1", "100")
		fund(t, db, "u2", "100")
		var ids []int64
		for i := range 5 {
			clock.Advance(time.Second)
			r, _, err := db.Redeem(ctx, redeemReq("u1", fmt.Sprint(i+1), fmt.Sprintf("k%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, r.ID)
		}
		if _, _, err := db.Redeem(ctx, redeemReq("u2", "1", "other-user")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Reverse(ctx, reverseReq(ids[1], "v", "r")); err != nil {
			t.Fatal(err)
		}
		// Newest first, in pages, never another user's.
		var seen []int64
		before := int64(0)
		for {
			page, err := db.Redemptions(ctx, rewards.RedemptionFilter{Property: "arcade", User: "u1", Before: before, Limit: 2})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if r.User != "u1" {
					t.Fatalf("listed %+v", r)
				}
				if (r.ID == ids[1]) != (r.Reversal != nil) {
					t.Errorf("redemption %d reversal = %+v", r.ID, r.Reversal)
				}
				seen = append(seen, r.ID)
			}
			if len(page) < 2 {
				break
			}
			before = page[len(page)-1].ID
		}
		want := []int64{ids[4], ids[3], ids[2], ids[1], ids[0]}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Fatalf("listed %v, want %v", seen, want)
		}
	})
}

// Adjustments, reversals and replays are in the audit log with their actor.
func TestAuditLog(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Property: "arcade", User: "u1", Amount: d("10"), Reason: "goodwill",
			IdempotencyKey: "a1", RequestHash: "h", Actor: "bob"}); err != nil {
			t.Fatal(err)
		}
		red, _, err := db.Redeem(ctx, redeemReq("u1", "4", "r1"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Reverse(ctx, reverseReq(red.ID, "v1", "duplicate payout")); err != nil {
			t.Fatal(err)
		}
		// A retry is not a second action.
		if _, _, err := db.Reverse(ctx, reverseReq(red.ID, "v1", "duplicate payout")); err != nil {
			t.Fatal(err)
		}
		got, err := db.Audit(ctx, rewards.AuditFilter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 {
			t.Fatalf("audit = %+v", got)
		}
		rev, adj := got[0], got[1]
		if rev.Actor != "alice" || rev.Action != rewards.AuditReversal || rev.Target != fmt.Sprintf("redemption:%d", red.ID) ||
			rev.Reason != "duplicate payout" || rev.Property != "arcade" || !rev.CreatedAt.Equal(t0) {
			t.Errorf("reversal audit = %+v", rev)
		}
		if adj.Actor != "bob" || adj.Action != rewards.AuditAdjustment || adj.Target != "user:u1" || adj.Reason != "goodwill" {
			t.Errorf("adjustment audit = %+v", adj)
		}
		older, err := db.Audit(ctx, rewards.AuditFilter{Before: rev.ID, Limit: 10})
		if err != nil || len(older) != 1 || older[0].ID != adj.ID {
			t.Fatalf("older = %+v, %v", older, err)
		}
	})
}

// Pending credits say when they mature: each pending transaction its own, the balance
// the earliest still unsettled.
func TestPendingShowsWhenItMatures(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		ctx := context.Background()
		b, err := db.Balance(ctx, "arcade", "u1")
		if err != nil || !b.NextAvailableAt.IsZero() {
			t.Fatalf("empty balance: %+v, %v", b, err)
		}
		ingestOne(t, db, in(session("u1", "s1", "0.001", 60))) // 56 COIN, held 24h
		clock.Advance(time.Hour)
		ingestOne(t, db, in(session("u1", "s2", "0.001", 60)))
		b, err = db.Balance(ctx, "arcade", "u1")
		if err != nil || !b.NextAvailableAt.Equal(t0.Add(24*time.Hour)) {
			t.Fatalf("balance %+v, %v; want next_available_at %s", b, err, t0.Add(24*time.Hour))
		}
		txns, err := db.Transactions(ctx, "arcade", "u1", 10, 0)
		if err != nil || len(txns) != 2 {
			t.Fatalf("transactions %+v, %v", txns, err)
		}
		if !txns[0].AvailableAt.Equal(t0.Add(25*time.Hour)) || !txns[1].AvailableAt.Equal(t0.Add(24*time.Hour)) {
			t.Fatalf("available_at %s, %s", txns[0].AvailableAt, txns[1].AvailableAt)
		}
		// After the first lot settles, the balance points at the second; the settlement
		// leg itself carries no maturity.
		clock.Set(t0.Add(24*time.Hour + time.Minute))
		settle(t, db, 0)
		if b, err = db.Balance(ctx, "arcade", "u1"); err != nil || !b.NextAvailableAt.Equal(t0.Add(25*time.Hour)) {
			t.Fatalf("after one settles: %+v, %v", b, err)
		}
		if txns, err = db.Transactions(ctx, "arcade", "u1", 10, 0); err != nil || !txns[0].AvailableAt.IsZero() {
			t.Fatalf("settlement legs carry available_at: %+v, %v", txns, err)
		}
		clock.Set(t0.Add(26 * time.Hour))
		settle(t, db, 0)
		if b, err = db.Balance(ctx, "arcade", "u1"); err != nil || !b.NextAvailableAt.IsZero() || !b.Pending.IsZero() {
			t.Fatalf("all settled: %+v, %v", b, err)
		}
	})
}

// tally verify holds finance's records of money paid out, put in and given back to
// their legs one by one, and a paid reward to its claim: each change below, made past
// the append-only triggers, moves or could move money (a reversal pays back what its row
// says; a reward without its claim pays again), and verify passed every one of them.
func TestCheckInvariantsHoldsPayoutRecordsToTheirLegs(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		for _, c := range []struct{ name, table, tamper, want string }{
			{"redemption amount", "redemptions", `UPDATE redemptions SET amount = '300' WHERE user_id = 'u1'`, "redemption 1 (arcade/u1, available -300) does not match its leg"},
			{"redemption removed", "redemptions", `DELETE FROM redemptions WHERE user_id = 'u2'`, "redemption leg of arcade/u2 under redemption:2 (available -30) has no redemption row"},
			{"reversal moved to another redemption", "reversals", `UPDATE reversals SET redemption_id = 2, user_id = 'u2'`, "reversal leg of arcade/u1 under redemption:1 (available 30) has no reversal row"},
			{"adjustment amount", "adjustments", `UPDATE adjustments SET amount = '5' WHERE user_id = 'u1'`, "does not match its leg under adjustment:"},
			{"claim removed", "claims", `DELETE FROM claims`, "(a target or achievement paid): its claim is missing"},
		} {
			t.Run(c.name, func(t *testing.T) {
				db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
				fund(t, db, "u1", "100")
				fund(t, db, "u2", "100")
				r1, _, err := db.Redeem(ctx, redeemReq("u1", "30", "k1"))
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := db.Redeem(ctx, redeemReq("u2", "30", "k2")); err != nil {
					t.Fatal(err)
				}
				if _, _, err := db.Reverse(ctx, reverseReq(r1.ID, "v1", "refused")); err != nil {
					t.Fatal(err)
				}
				ingestOne(t, db, in(score("u1", "p1", "600"))) // a target paid, with its claim
				wantTamperCaught(t, db, c.table, c.tamper, c.want)
			})
		}
	})
}
