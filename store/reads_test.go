package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
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

// With a read replica configured, balance, transactions and feed reads go to it and
// everything else to the primary. The "replica" here is a second database that never
// hears of the write, so where each read went shows in what it returns.
func TestReadReplica(t *testing.T) {
	ctx := context.Background()
	replica := storetest.URL(t, store.Postgres)
	storetest.OpenURL(t, replica, nil) // migrated, empty
	primary := storetest.URL(t, store.Postgres)
	// Another database is no replica of the primary: every balance would read zero.
	if db, err := store.Open(ctx, primary, store.Options{ReadURL: replica}); err == nil || !strings.Contains(err.Error(), "read_url is not a replica") {
		if db != nil {
			db.Close()
		}
		t.Fatalf("a read_url naming another database: err = %v, want refused", err)
	}
	db, err := store.Open(ctx, primary, store.WithAnyReplicaDatabase(store.Options{ReadURL: replica}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx, nil); err != nil {
		t.Fatal(err)
	}
	fund(t, db, "u1", "10")
	b, err := db.Balance(ctx, "arcade", "u1")
	if err != nil || !b.Available.IsZero() {
		t.Errorf("balance = %+v, %v; want the replica's zero", b, err)
	}
	if txns, err := db.Transactions(ctx, "arcade", "u1", 10, 0); err != nil || len(txns) != 0 {
		t.Errorf("transactions = %+v, %v; want the replica's none", txns, err)
	}
	if bs, _, err := db.BalancesSince(ctx, "arcade", "", 10); err != nil || len(bs) != 0 {
		t.Errorf("feed = %+v, %v; want the replica's none", bs, err)
	}
	// Whether a wallet exists decides whether an admin may adjust it: the primary says.
	if ok, err := db.WalletExists(ctx, "arcade", "u1"); err != nil || !ok {
		t.Errorf("WalletExists = %v, %v; want the primary's wallet", ok, err)
	}
	if _, err := store.Open(ctx, storetest.URL(t, store.SQLite), store.Options{ReadURL: replica}); err == nil {
		t.Error("a SQLite store accepted a read replica")
	}
	// A replica that does not answer fails at start, not on every read later.
	down := "postgres://postgres@127.0.0.1:1/tally?sslmode=disable&connect_timeout=2"
	if db, err := store.Open(ctx, primary, store.Options{ReadURL: down}); err == nil || !errors.Is(err, rewards.ErrUnavailable) {
		if db != nil {
			db.Close()
		}
		t.Errorf("a read_url nobody answers: err = %v, want unavailable", err)
	}
}

// Where the role tally connects as may not call pg_control_system() (a hardened
// install), a read_url is refused with what to grant, not as "storage unavailable".
func TestReadReplicaCheckWithoutTheRightToIdentifyIt(t *testing.T) {
	ctx := context.Background()
	u := storetest.URL(t, store.Postgres)
	admin := storetest.OpenURL(t, u, nil)
	role := fmt.Sprintf("tally_test_role_%d", time.Now().UnixNano())
	if err := admin.ExecRaw(ctx, `CREATE ROLE `+role+` LOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.ExecRaw(context.Background(), `DROP ROLE IF EXISTS `+role) })
	if err := admin.ExecRaw(ctx, `REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC`); err != nil {
		t.Fatal(err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parsed.User = url.User(role)
	as := parsed.String()
	db, err := store.Open(ctx, as, store.Options{ReadURL: as})
	if err == nil {
		db.Close()
		t.Fatal("opened; want refused")
	}
	if errors.Is(err, rewards.ErrUnavailable) || !strings.Contains(err.Error(), "GRANT EXECUTE ON FUNCTION pg_control_system()") {
		t.Fatalf("err = %v; want the grant named, not unavailable", err)
	}
}

// A read replica that stops answering fails the reads it serves (503, promptly), not
// the instance: Ready stays nil, so receivers keep recording and redemptions keep
// running on the primary, and ReadReplica names the replica. Before, Ready failed with
// it, and every instance left the load balancer with the replica.
func TestReadReplicaDownLeavesTheInstanceReady(t *testing.T) {
	ctx := context.Background()
	primary := storetest.URL(t, store.Postgres)
	storetest.OpenURL(t, primary, nil)
	u, err := url.Parse(primary)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCommitCutter(t, u.Host) // never armed: a plain proxy, the "replica"
	u.Host = proxy.ln.Addr().String()
	db, err := store.Open(ctx, primary, store.Options{ReadURL: u.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fund(t, db, "u1", "10")
	if b, err := db.Balance(ctx, "arcade", "u1"); err != nil || !b.Available.Equal(d("10")) {
		t.Fatalf("balance through the replica: %+v %v", b, err)
	}
	proxy.stop()
	if err := db.Ready(ctx); err != nil {
		t.Errorf("Ready with the replica down: %v, want nil", err)
	}
	if err := db.ReadReplica(ctx); !errors.Is(err, rewards.ErrUnavailable) || !strings.Contains(err.Error(), "read replica") {
		t.Errorf("ReadReplica with the replica down: %v, want unavailable naming the replica", err)
	}
	if _, err := db.Balance(ctx, "arcade", "u1"); !errors.Is(err, rewards.ErrUnavailable) {
		t.Errorf("balance with the replica down: %v, want unavailable", err)
	}
	fund(t, db, "u1", "5") // writes go on
}

// One batch answers each request with its own wallet: the same user asked twice, a user
// of another property, a user with no wallet, and a request whose caller has gone (not
// read at all). Pending lots give next_available_at, per wallet.
func TestBalanceBatch(t *testing.T) {
	clock := storetest.NewClock(t0)
	db := storetest.Open(t, store.Postgres, clock.Now)
	fund(t, db, "u1", "1.5")
	fund(t, db, "u2", "2.000000000000000002")
	if _, _, err := db.Adjust(context.Background(), rewards.AdjustRequest{Actor: "test", Property: "arcade", User: "u2",
		Amount: d("7"), Bucket: rewards.Pending, Reason: "pending", IdempotencyKey: "p-u2", RequestHash: "h"}); err != nil {
		t.Fatal(err)
	}
	live, gone := context.Background(), func() context.Context {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		return ctx
	}()
	keys := [][2]string{{"arcade", "u2"}, {"arcade", "u1"}, {"arcade", "nobody"}, {"arcade", "u1"}, {"puzzle", "u1"}, {"arcade", "u2"}}
	ctxs := []context.Context{live, live, live, live, live, gone}
	got := db.BalanceBatch(ctxs, keys)
	want := []string{"2.000000000000000002", "1.5", "0", "1.5", "0"}
	for i, w := range want {
		r := got[i]
		if !r.Answered || r.Err != nil || r.Balance.Property != keys[i][0] || r.Balance.User != keys[i][1] || !r.Balance.Available.Equal(d(w)) {
			t.Errorf("request %d (%v) = %+v; want available %s", i, keys[i], r, w)
		}
	}
	if p := got[0].Balance; !p.Pending.Equal(d("7")) {
		t.Errorf("u2 pending = %s, want 7", p.Pending)
	}
	if got[5].Answered {
		t.Errorf("a request whose caller had gone was answered: %+v", got[5])
	}
}

// A page of transactions reads the ledger from indexes alone on Postgres (migration
// 00011): the page's legs and journal rows are a few contiguous index pages, not a heap
// page per row. And the page, whose journal rows are read by the user's journal id
// range, holds that user's legs with their own journal rows even when every other
// user's rows lie between them.
func TestLedgerReadsUseTheCoveringIndexes(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	const users, perUser = 400, 150
	for _, q := range []string{
		fmt.Sprintf(`INSERT INTO journal (id, property, user_id, kind, rule, ref, created_at)
			SELECT i, 'arcade', 'u' || (i %% %d), 'revenue', 'rule-' || i, 'ref-' || i, '2026-11-02T10:00:00Z'::timestamptz + i * interval '1 second'
			FROM generate_series(1, %d) AS i`, users, users*perUser),
		`INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
			SELECT id, property, user_id, a.account, a.bucket, kind, a.sign * (id || '.5')::numeric, created_at
			FROM journal, (VALUES ('', 'pending', 1), ('@revenue', '', -1)) AS a (account, bucket, sign) ORDER BY id, a.sign DESC`,
		`VACUUM ANALYZE journal`,
		`VACUUM ANALYZE entries`,
	} {
		if err := db.ExecRaw(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	for _, before := range []int64{0, 20001} {
		plan, err := store.TransactionsPlan(ctx, db, "arcade", "u7", 100, before)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Index Only Scan Backward using entries_user on entries", "Index Only Scan using journal_user on journal"} {
			if !strings.Contains(plan, want) || strings.Contains(plan, "Seq Scan") {
				t.Fatalf("transactions page (before %d): no %q in its plan:\n%s", before, want, plan)
			}
		}
	}
	// The newest page of u7 and the next one: u7's legs only (journal ids 7, 407, 807, …),
	// newest first, each with its own journal row's rule and ref.
	var seen int
	before := int64(0)
	for page := 0; page < 2; page++ {
		txns, err := db.Transactions(ctx, "arcade", "u7", 100, before)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(100, perUser-seen); len(txns) != want {
			t.Fatalf("page %d: %d transactions, want %d", page, len(txns), want)
		}
		for _, x := range txns {
			j := int64(7 + users*(perUser-1-seen)) // the journal id of u7's seen-th newest credit
			if x.Rule != fmt.Sprintf("rule-%d", j) || x.Ref != fmt.Sprintf("ref-%d", j) || !x.Amount.Equal(decimal.RequireFromString(fmt.Sprintf("%d.5", j))) {
				t.Fatalf("transaction %d of u7: %+v, want journal row %d", seen, x, j)
			}
			seen++
			before = x.ID
		}
	}
}

// The journal ids a batch writes with are taken with the sequence looked up once per
// statement, not once per id (which searched the catalog for each of thousands of ids).
func TestJournalIDsLookUpTheSequenceOnce(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	plan, err := store.AllocIDsPlan(ctx, db, "journal", 5000)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "InitPlan") {
		t.Fatalf("the sequence is looked up per id:\n%s", plan)
	}
}

// A wallet's unsettled lots are indexed with their maturity (migration 00014): a
// balance's next_available_at is the first of them in that order, not the least of all
// of them read from the heap, and settlement tests maturity in the index when it looks
// for wallets with matured lots. The balance skips a pending debit (a negative lot)
// that matures first.
func TestLotsAreFoundByMaturityFromTheIndex(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	const wallets, perWallet = 500, 10
	for _, q := range []string{
		// Each arcade wallet is followed in id order by two of another property's, whose
		// lots have matured as well.
		fmt.Sprintf(`INSERT INTO wallets (property, user_id, created_at, updated_at, feed_seq)
			SELECT p, 'u' || g, '2026-11-02T00:00:00Z', '2026-11-02T00:00:00Z', 1
			FROM generate_series(1, %d) g CROSS JOIN unnest(ARRAY['arcade', 'other', 'third']) WITH ORDINALITY AS p (p, o)
			ORDER BY g, o`, wallets),
		// Lots written round by round, as credits arrive: a wallet's lots lie on as many
		// heap pages. Lot k of a wallet matures k hours after 10:00, the last ones first.
		// They are written without a property, as a binary before migration 00032 wrote
		// them during a rolling deploy: the wallet's is filled in.
		fmt.Sprintf(`INSERT INTO lots (wallet_id, journal_id, amount, matures_at)
			SELECT w.id, 0, k, '2026-11-02T10:00:00Z'::timestamptz + k * interval '1 hour'
			FROM generate_series(%d, 1, -1) k CROSS JOIN wallets w ORDER BY k DESC, w.id`, perWallet),
		// u7's earliest lot is a pending debit.
		`UPDATE lots SET amount = -1 WHERE matures_at = '2026-11-02T11:00:00Z' AND wallet_id = (SELECT id FROM wallets WHERE property = 'arcade' AND user_id = 'u7')`,
		`VACUUM ANALYZE wallets`,
		`VACUUM ANALYZE lots`,
	} {
		if err := db.ExecRaw(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := store.BalancePlan(ctx, db, "arcade", "u8")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "using lots_wallet on lots") || !strings.Contains(plan, "(matures_at IS NOT NULL)") || !strings.Contains(plan, "Limit") {
		t.Fatalf("a balance reads every unsettled lot of its wallet:\n%s", plan)
	}
	for user, want := range map[string]string{"u8": "2026-11-02T11:00:00Z", "u7": "2026-11-02T12:00:00Z"} {
		b, err := db.Balance(ctx, "arcade", user)
		if err != nil {
			t.Fatal(err)
		}
		if got := b.NextAvailableAt.Format(time.RFC3339); got != want {
			t.Errorf("%s: next_available_at %s, want %s", user, got, want)
		}
	}
	cutoff := time.Date(2026, 11, 2, 15, 30, 0, 0, time.UTC)
	plan, err = store.MaturedWalletsPlan(ctx, db, "arcade", cutoff, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "Index Only Scan using lots_property on lots") || !strings.Contains(plan, "matures_at <=") || strings.Contains(plan, "Filter: (matures_at") {
		t.Fatalf("settlement reads every lot to test its maturity:\n%s", plan)
	}
	// Five lots of each wallet have matured by the cutoff; finding 200 wallets reads one
	// index entry of each (a skip to the next wallet), not all five, and none of the
	// other properties' wallets between them.
	read, analyzed, err := store.MaturedWalletsLotsRead(ctx, db, "arcade", cutoff, 0, 200)
	if err != nil {
		t.Fatal(err)
	}
	if read < 200 || read > 201 {
		t.Fatalf("finding 200 wallets with matured lots read %d lots (want one per wallet):\n%s", read, analyzed)
	}
}

// A scheduled run's check for anything matured reads lots_property for its own property
// only. As an EXISTS, Postgres planned a scan of every lot when the other properties had
// many matured lots (expecting to stop at the first match), and an idle property has
// none: the whole table was read at every tick.
func TestSettlementDueCheckUsesTheIndex(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, store.Postgres, nil)
	for _, q := range []string{
		`INSERT INTO wallets (property, user_id, created_at, updated_at, feed_seq)
			SELECT 'p' || p, 'u' || g, '2026-11-02T00:00:00Z', '2026-11-02T00:00:00Z', 1
			FROM generate_series(1, 5) p CROSS JOIN generate_series(1, 4000) g`,
		// p1–p4 have matured lots; p5's mature next year.
		`INSERT INTO lots (wallet_id, property, journal_id, amount, matures_at)
			SELECT w.id, w.property, 0, 1, CASE WHEN w.property = 'p5' THEN '2027-11-02T00:00:00Z'::timestamptz
				ELSE '2026-11-02T00:00:00Z'::timestamptz + k * interval '1 minute' END
			FROM wallets w CROSS JOIN generate_series(1, 4) k`,
		`VACUUM ANALYZE lots`,
	} {
		if err := db.ExecRaw(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	plan, err := store.SettlementDuePlan(ctx, db, "p5", time.Date(2026, 11, 2, 15, 30, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan, "using lots_property on lots") || strings.Contains(plan, "Seq Scan on lots") {
		t.Fatalf("an idle property's check reads every lot:\n%s", plan)
	}
}
