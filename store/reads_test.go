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

// Balance reads run batched on Postgres (many callers' wallets in one statement): every
// caller gets its own wallet, exact, never another's, and sees what was committed before
// it asked.
func TestBalanceReadsConcurrent(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, storetest.NewClock(t0).Now)
		ctx := context.Background()
		const users = 40
		for i := range users {
			// Amounts that differ per user in their last digit, so a mix-up shows.
			fund(t, db, fmt.Sprintf("u%02d", i), fmt.Sprintf("%d.%018d", i+1, i+1))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64*users)
		for range 16 {
			wg.Go(func() {
				for i := range 2 * users { // every user twice, and users without a wallet
					user := fmt.Sprintf("u%02d", i)
					b, err := db.Balance(ctx, "arcade", user)
					want := decimal.Zero
					if i < users {
						want = d(fmt.Sprintf("%d.%018d", i+1, i+1))
					}
					switch {
					case err != nil:
						errs <- err
					case b.User != user || b.Property != "arcade" || !b.Available.Equal(want) || !b.Pending.IsZero():
						errs <- fmt.Errorf("balance of %s = %+v, want available %s", user, b, want)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// A write committed before a read asks is in what it reads.
		fund(t, db, "u00", "1")
		b, err := db.Balance(ctx, "arcade", "u00")
		if err != nil || !b.Available.Equal(d("2.000000000000000001")) {
			t.Errorf("balance after a committed write = %+v, %v; want 2.000000000000000001", b, err)
		}
	})
}

// A caller that gives up is answered at once, and the store's close never leaves a
// caller waiting.
func TestBalanceReadCancelAndClose(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := db.Balance(ctx, "arcade", "u1"); !errors.Is(err, rewards.ErrUnavailable) && !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled read: err = %v, want unavailable or cancelled", err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := db.Balance(context.Background(), "arcade", "u1")
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("read after close succeeded")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("read after close still waiting after 30 s")
		}
	})
}
