package store_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// A property's units are recorded once; a renamed currency or a coarser scale is a
// change, a finer scale is recorded; a first record that the wallets' settled amounts do
// not fit (a scale lowered before units were recorded) is refused.
func TestCheckUnits(t *testing.T) {
	storetest.ForEach(t, func(t *testing.T, dia store.Dialect) {
		db := storetest.Open(t, dia, nil)
		ctx := context.Background()
		check := func(u store.Units, record bool) []store.UnitsChange {
			t.Helper()
			ch, err := db.CheckUnits(ctx, []store.Units{u}, record)
			if err != nil {
				t.Fatal(err)
			}
			return ch
		}
		coin := store.Units{Property: "arcade", Currency: "COIN", Scale: 2}
		if ch := check(store.Units{Property: "arcade", Currency: "GEM", Scale: 0}, false); len(ch) != 0 {
			t.Fatalf("nothing recorded, only compared: %+v", ch)
		}
		if ch := check(coin, true); len(ch) != 0 {
			t.Fatalf("first record: %+v", ch)
		}
		if ch := check(store.Units{Property: "arcade", Currency: "GEM", Scale: 2}, true); len(ch) != 1 || ch[0].Ledger.Currency != "COIN" {
			t.Fatalf("renamed currency: %+v", ch)
		}
		if ch := check(store.Units{Property: "arcade", Currency: "COIN", Scale: 1}, false); len(ch) != 1 || ch[0].Ledger.Scale != 2 {
			t.Fatalf("coarser scale: %+v", ch)
		}
		if ch := check(store.Units{Property: "arcade", Currency: "COIN", Scale: 4}, true); len(ch) != 0 {
			t.Fatalf("finer scale: %+v", ch)
		}
		if ch := check(coin, false); len(ch) != 1 || ch[0].Ledger.Scale != 4 {
			t.Fatalf("after the finer scale was recorded: %+v", ch)
		}
		// Another property, whose wallet holds 10.55 available before its units are
		// recorded at scale 0: refused, the digits beyond it could never be redeemed.
		if _, _, err := db.Adjust(ctx, rewards.AdjustRequest{Actor: "test", Property: "other", User: "bob", Amount: d("10.55"),
			Reason: "r", IdempotencyKey: "k", RequestHash: "h"}); err != nil {
			t.Fatal(err)
		}
		if ch := check(store.Units{Property: "other", Currency: "PTS", Scale: 0}, true); len(ch) != 1 || ch[0].Finer != 1 {
			t.Fatalf("first record below the wallets' amounts: %+v", ch)
		}
		if ch := check(store.Units{Property: "other", Currency: "PTS", Scale: 2}, true); len(ch) != 0 {
			t.Fatalf("first record the amounts fit: %+v", ch)
		}
	})
}

// Two processes recording at once (a rolling deploy with two configs) compare with what
// the first recorded: the second's other currency is refused, not accepted because its
// insert found the row taken; and a finer scale never goes down again.
func TestCheckUnitsRecordedConcurrently(t *testing.T) {
	ctx := context.Background()
	url := storetest.URL(t, store.Postgres)
	db := storetest.OpenURL(t, url, storetest.NewClock(t0).Now)
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// holds runs stmt in a transaction that commits once CheckUnits waits on its lock,
	// and returns CheckUnits' outcome for u.
	holds := func(stmt string, u store.Units) []store.UnitsChange {
		t.Helper()
		tx, err := raw.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.Exec(stmt); err != nil {
			t.Fatal(err)
		}
		type outcome struct {
			ch  []store.UnitsChange
			err error
		}
		done := make(chan outcome, 1)
		go func() {
			ch, err := db.CheckUnits(ctx, []store.Units{u}, true)
			done <- outcome{ch, err}
		}()
		poll := time.NewTicker(5 * time.Millisecond)
		defer poll.Stop()
		for {
			select {
			case o := <-done:
				t.Fatalf("CheckUnits did not wait for the other process: %+v, %v", o.ch, o.err)
			case <-poll.C:
			}
			var waiting int
			if err := raw.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND query LIKE '%property_units%'`).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			if waiting > 0 {
				break
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		o := <-done
		if o.err != nil {
			t.Fatal(o.err)
		}
		return o.ch
	}
	ch := holds(`INSERT INTO property_units (property, currency, scale, recorded_at) VALUES ('arcade', 'COIN', 2, now())`,
		store.Units{Property: "arcade", Currency: "GEM", Scale: 0})
	if len(ch) != 1 || ch[0].Ledger.Currency != "COIN" {
		t.Fatalf("GEM recorded beside COIN: %+v, want it refused", ch)
	}
	if ch := holds(`UPDATE property_units SET scale = 4 WHERE property = 'arcade'`, store.Units{Property: "arcade", Currency: "COIN", Scale: 3}); len(ch) != 1 {
		t.Fatalf("scale 3 while 4 was recorded meanwhile: %+v, want it refused", ch)
	}
	var scale int
	if err := raw.QueryRow(`SELECT scale FROM property_units WHERE property = 'arcade'`).Scan(&scale); err != nil || scale != 4 {
		t.Fatalf("recorded scale %d (%v), want 4", scale, err)
	}
}

// Only comparing (every command but serve and migrate) is a read: it does not queue for
// SQLite's write lock, which a long true-up or settlement holds for minutes. Before, a
// read-only command waited out the busy timeout and failed with "database is locked".
func TestCheckUnitsReadsBesideAWriter(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.SQLite)
	db := storetest.OpenURL(t, u, nil)
	units := []store.Units{{Property: "arcade", Currency: "COIN", Scale: 0}}
	if _, err := db.CheckUnits(ctx, units, true); err != nil {
		t.Fatal(err)
	}
	writer := storetest.OpenURL(t, u, nil)
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- writer.HoldWriteLock(ctx, func() { close(held); <-release })
	}()
	<-held
	ch, err := db.CheckUnits(ctx, units, false)
	close(release)
	if err != nil || len(ch) != 0 {
		t.Fatalf("compare beside a writer: %+v, %v", ch, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
