package store_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// mirror is what a publisher polling the feed knows.
type mirror struct {
	cursor   string
	balances map[string]rewards.Balance
}

// poll follows the feed until a page comes back short, and returns the rows it read.
func (m *mirror) poll(t *testing.T, db *store.DB, limit int) []rewards.Balance {
	t.Helper()
	var read []rewards.Balance
	for {
		page, next, err := db.BalancesSince(context.Background(), "arcade", m.cursor, limit)
		if err != nil {
			t.Errorf("BalancesSince(%q): %v", m.cursor, err)
			return read
		}
		if next == "" {
			t.Errorf("BalancesSince(%q) returned no cursor", m.cursor)
			return read
		}
		for _, b := range page {
			m.balances[b.User] = b
		}
		read = append(read, page...)
		m.cursor = next
		if len(page) < limit {
			return read
		}
	}
}

// pollFor polls until it has read at least n rows. On Postgres a change comes out of
// the feed once every transaction that started writing before it has finished, and the
// test server is shared, so a row may take a moment.
func (m *mirror) pollFor(t *testing.T, db *store.DB, limit, n int) []rewards.Balance {
	t.Helper()
	var read []rewards.Balance
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		read = append(read, m.poll(t, db, limit)...)
		if len(read) >= n || time.Now().After(deadline) {
			return read
		}
	}
}

// catchUp polls until the mirror holds every user's current balance, and fails the test
// if that does not happen: a change the feed skipped never arrives.
func (m *mirror) catchUp(t *testing.T, db *store.DB, users []string) {
	t.Helper()
	var stale []string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m.poll(t, db, 7)
		stale = stale[:0]
		for _, u := range users {
			b, err := db.Balance(context.Background(), "arcade", u)
			if err != nil {
				t.Fatal(err)
			}
			got := m.balances[u]
			if !got.Available.Equal(b.Available) || !got.Pending.Equal(b.Pending) || !got.LifetimeEarned.Equal(b.LifetimeEarned) ||
				!got.NextAvailableAt.Equal(b.NextAvailableAt) {
				stale = append(stale, fmt.Sprintf("%s: mirror %s/%s next %s, wallet %s/%s next %s", u, got.Available, got.Pending,
					got.NextAvailableAt, b.Available, b.Pending, b.NextAvailableAt))
			}
		}
		if len(stale) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed never delivered (available/pending):\n%s", strings.Join(stale, "\n"))
		}
	}
}

func TestBalanceFeed(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		clock := storetest.NewClock(t0)
		db := storetest.Open(t, dia, clock.Now)
		m := &mirror{balances: map[string]rewards.Balance{}}
		if read := m.poll(t, db, 10); len(read) != 0 {
			t.Fatalf("empty feed returned %d rows", len(read))
		}
		var users []string
		for i := range 25 {
			u := fmt.Sprintf("u%02d", i)
			users = append(users, u)
			ingestOne(t, db, in(score(u, "p1", "500")))
		}
		if read := m.pollFor(t, db, 10, 25); len(read) != 25 {
			t.Fatalf("first polls read %d rows, want 25", len(read))
		}
		// A feed row says when its pending credit matures, as the balance does.
		if b := m.balances["u00"]; b.NextAvailableAt.IsZero() || b.Pending.IsZero() {
			t.Fatalf("feed row of u00 = %+v, want its pending credit's maturity", b)
		}
		m.catchUp(t, db, users)
		// Nothing new: the cursor stays and nothing comes back.
		before := m.cursor
		if read := m.poll(t, db, 10); len(read) != 0 || m.cursor != before {
			t.Fatalf("idle poll read %d rows, cursor %q → %q", len(read), before, m.cursor)
		}
		// Settlement changes every wallet; a redemption and a credit then change two.
		settle(t, db, 0)
		if read := m.pollFor(t, db, 100, 25); len(read) != 25 {
			t.Fatalf("after settlement read %d rows, want 25", len(read))
		}
		if _, _, err := db.Redeem(context.Background(), redeemReq("u03", "20", "r1")); err != nil {
			t.Fatal(err)
		}
		fund(t, db, "u07", "1")
		read := m.pollFor(t, db, 1, 2)
		if len(read) != 2 || read[0].User != "u03" || read[1].User != "u07" || !read[0].Available.Equal(d("30")) {
			t.Fatalf("rows after two writes = %+v", read)
		}
		m.catchUp(t, db, users)

		for _, bad := range []string{"x", "v1.", "v1.1", "v1.a.b", "v1.-1.2", "v1.01.2", "v2.1.2", "v1.1.2.3"} {
			if _, _, err := db.BalancesSince(context.Background(), "arcade", bad, 10); !errors.Is(err, rewards.ErrBadCursor) {
				t.Errorf("cursor %q: err = %v, want ErrBadCursor", bad, err)
			}
		}
	})
}

// A wallet made by an event that earns nothing (a session of no revenue) is listed
// by the feed, with its zero balance, for a publisher already past its first pass. It
// kept feed_seq 0 before, which sorts before every cursor, so such a publisher never
// learned of the user.
func TestBalanceFeedListsAWalletThatEarnedNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		fund(t, db, "first", "1")
		m := &mirror{balances: map[string]rewards.Balance{}}
		m.catchUp(t, db, []string{"first"})
		if _, ok := m.balances["first"]; !ok {
			t.Fatal("the first pass did not list the funded wallet")
		}
		ingestOne(t, db, in(session("nothing", "s1", "0", 60)))
		if n, err := store.QueryInt(context.Background(), db, `SELECT count(*) FROM wallets WHERE user_id = 'nothing' AND lifetime_earned = 0`); err != nil || n != 1 {
			t.Fatalf("the session of no revenue made %d wallets that earned nothing (%v), want 1", n, err)
		}
		read := m.pollFor(t, db, 10, 1)
		if len(read) != 1 || read[0].User != "nothing" || !read[0].Available.IsZero() || !read[0].Pending.IsZero() {
			t.Fatalf("the feed after the wallet that earned nothing: %+v, want its zero balance", read)
		}
	})
}

// Such a wallet made before Tally stamped new wallets (feed_seq 0) is listed once its
// database is migrated (00028), to a publisher already past its first pass.
func TestBalanceFeedListsAnOldWalletThatEarnedNothing(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		ctx := context.Background()
		old, u := migratedTo(t, dia, 27)
		fund(t, old, "first", "1")
		m := &mirror{balances: map[string]rewards.Balance{}}
		m.catchUp(t, old, []string{"first"})
		if _, ok := m.balances["first"]; !ok {
			t.Fatal("the first pass did not list the funded wallet")
		}
		if err := old.ExecRaw(ctx, `INSERT INTO wallets (property, user_id, created_at, updated_at) VALUES ('arcade', 'legacy', ?, ?)`, t0, t0); err != nil {
			t.Fatal(err)
		}
		if read := m.poll(t, old, 10); len(read) != 0 {
			t.Fatalf("before the migration the feed listed %+v", read)
		}
		_ = old.Close()

		db := storetest.OpenURL(t, u, nil) // migrates the rest
		read := m.pollFor(t, db, 10, 1)
		if len(read) != 1 || read[0].User != "legacy" || !read[0].Available.IsZero() {
			t.Fatalf("the feed after the migration: %+v, want the old wallet's zero balance", read)
		}
		// Once: the wallet is not listed again until it changes.
		if read := m.poll(t, db, 10); len(read) != 0 {
			t.Fatalf("a second poll listed %+v", read)
		}
		// A replica still running the older binary during a rolling deploy inserts
		// wallets without a stamp (its lockWallets' statement): the schema stamps them.
		if err := db.ExecRaw(ctx, `INSERT INTO wallets (property, user_id, created_at, updated_at) VALUES ('arcade', 'from-old-replica', ?, ?)
			ON CONFLICT (property, user_id) DO UPDATE SET updated_at = wallets.updated_at`, t0, t0); err != nil {
			t.Fatal(err)
		}
		read = m.pollFor(t, db, 10, 1)
		if len(read) != 1 || read[0].User != "from-old-replica" {
			t.Fatalf("the feed after an older replica made a wallet: %+v, want it", read)
		}
	})
}

// A writer that took its wallet (and, on Postgres, its transaction id) first but commits
// last must still reach a poller that has moved past the writers that committed before it.
func TestBalanceFeedLateCommit(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		ctx := context.Background()
		fund(t, db, "slow", "1")
		fund(t, db, "fast", "1")
		m := &mirror{balances: map[string]rewards.Balance{}}
		m.catchUp(t, db, []string{"slow", "fast"})

		locked, release := make(chan struct{}), make(chan struct{})
		slowDone := make(chan error, 1)
		go func() { slowDone <- db.CreditSlowly(ctx, "arcade", "slow", d("5"), locked, release) }()
		<-locked
		fastDone := make(chan error, 1)
		go func() { // on SQLite this waits for the slow writer's lock
			_, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "test", Property: "arcade", User: "fast", Amount: d("2"), Reason: "r",
				IdempotencyKey: "fast-2", RequestHash: "h"})
			fastDone <- err
		}()
		if dia == store.Postgres {
			if err := <-fastDone; err != nil {
				t.Fatal(err)
			}
		}
		// The fast write may have committed; the feed must not run past the slow one.
		m.poll(t, db, 10)
		close(release)
		if err := <-slowDone; err != nil {
			t.Fatal(err)
		}
		if dia != store.Postgres {
			if err := <-fastDone; err != nil {
				t.Fatal(err)
			}
		}
		m.catchUp(t, db, []string{"slow", "fast"})
		if b := m.balances["slow"]; !b.Available.Equal(d("6")) {
			t.Fatalf("mirror has slow at %s, want 6", b.Available)
		}
	})
}

// Writers on many wallets and a poller at once: when the writers stop, one more poll
// leaves the mirror equal to every wallet.
func TestBalanceFeedConcurrentWriters(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		ctx := context.Background()
		var users []string
		for i := range 30 {
			users = append(users, fmt.Sprintf("u%02d", i))
		}
		m := &mirror{balances: map[string]rewards.Balance{}}
		stop := make(chan struct{})
		var writers sync.WaitGroup
		for w := range 6 {
			writers.Add(1)
			go func() {
				defer writers.Done()
				r := rand.New(rand.NewPCG(uint64(w), 1))
				for i := range 40 {
					u := users[r.IntN(len(users))]
					req := rewards.AdjustRequest{Actor: "test", Property: "arcade", User: u, Amount: decimal.NewFromInt(int64(r.IntN(9) + 1)),
						Reason: "load", IdempotencyKey: fmt.Sprintf("w%d-%d", w, i), RequestHash: "h"}
					err := retryUnavailable(func() error { _, _, err := db.Adjust(ctx, req); return err })
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
				}
			}()
		}
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			for {
				select {
				case <-stop:
					return
				default:
					m.poll(t, db, 7)
				}
			}
		}()
		writers.Wait()
		close(stop)
		<-polled
		m.catchUp(t, db, users)
		checkInvariants(t, db)
	})
}

// A feed row's next_available_at is read with its amounts, as the balance reads it:
// pending credit comes with its maturity, and none without. On SQLite the maturity was
// read by a second statement, and a settlement committing between the two gave
// "pending 5" with no maturity (or the reverse).
func TestBalanceFeedRowReadsItsMaturityWithItsAmounts(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		ctx := context.Background()
		done, stop := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for i := range 150 {
				select {
				case <-stop:
					return
				default:
				}
				req := rewards.AdjustRequest{Actor: "test", Property: "arcade", User: "u", Amount: d("5"), Bucket: rewards.Pending,
					Reason: "r", IdempotencyKey: fmt.Sprint("k", i), RequestHash: "h"}
				if err := retryUnavailable(func() error { _, _, err := db.Adjust(ctx, req); return err }); err != nil {
					t.Errorf("adjust: %v", err)
					return
				}
				if err := retryUnavailable(func() error { _, err := db.Settle(ctx, "arcade", 0, ""); return err }); err != nil {
					t.Errorf("settle: %v", err)
					return
				}
			}
		}()
		defer func() { close(stop); <-done }()
		for reads := 0; ; reads++ {
			select {
			case <-done:
				return
			default:
			}
			rows, _, err := db.BalancesSince(ctx, "arcade", "", 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range rows {
				if b.Pending.IsPositive() == b.NextAvailableAt.IsZero() {
					t.Fatalf("feed row after %d reads: pending %s with next_available_at %v", reads, b.Pending, b.NextAvailableAt)
				}
			}
		}
	})
}
