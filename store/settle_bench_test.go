package store_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"tally/store"
	"tally/store/storetest"
)

// envInt reads a positive integer from the environment, or returns def.
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkSettle settles TALLY_BENCH_USERS users (default 10,000) with
// TALLY_BENCH_LOTS matured lots each (default 10) on Postgres. The DESIGN.md target is
// 100,000 users × 10 lots in ≤ 40 s on 2 cores:
//
//	TALLY_BENCH_USERS=100000 go test -run '^$' -bench Settle -benchtime 1x -timeout 30m ./store/
//
// scripts/bench-settle.sh runs it on a baseline commit and on this tree in one go and
// prints the ratio (issue 15).
//
// Each iteration settles a fresh property populated (untimed) with set-based SQL: the
// wallets, their revenue journal rows and legs, and the lots, all consistent, plus as
// many users again whose lots have not matured. TALLY_BENCH_CHECK=1 runs
// CheckInvariants afterwards (untimed).
func BenchmarkSettle(b *testing.B) {
	users := envInt(b, "TALLY_BENCH_USERS", 10000)
	lots := envInt(b, "TALLY_BENCH_LOTS", 10)
	clock := storetest.NewClock(t0)
	db := storetest.Open(b, store.Postgres, clock.Now)
	ctx := context.Background()
	settled := int64(0)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		property := fmt.Sprintf("bench-%d", i)
		start := time.Now()
		populate(b, db, property, users, lots)
		clock.Set(t0.Add(48 * time.Hour))
		b.Logf("populated %d users × %d lots in %s", users, lots, time.Since(start).Round(time.Millisecond))
		b.StartTimer()
		run, err := db.Settle(ctx, property, 0, "")
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if run.Users != int64(users) || run.Entries != int64(users*lots) {
			b.Fatalf("run = %+v, want %d users and %d lots", run, users, users*lots)
		}
		settled += run.Entries
		if os.Getenv("TALLY_BENCH_CHECK") == "1" {
			if err := db.CheckInvariants(ctx, property); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(settled)/b.Elapsed().Seconds(), "lots/s")
}

// populate writes, in bulk, users wallets of property with lots matured lots each, and as
// many wallets again with one lot maturing in the future, as ingest would have.
func populate(b *testing.B, db *store.DB, property string, users, lots int) {
	b.Helper()
	ctx := context.Background()
	matured, later := t0, t0.Add(72*time.Hour)
	steps := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO wallets (property, user_id, created_at, updated_at)
			SELECT ?, 'user-' || lpad(g::text, 9, '0'), ?, ? FROM generate_series(1, ?) g`,
			[]any{property, t0, t0, 2 * users}},
		{`INSERT INTO journal (property, user_id, kind, rule, rule_version, ref, matures_at, created_at)
			SELECT w.property, w.user_id, 'revenue', 'revenue', 'bench', 'bench', CASE WHEN k = 0 THEN ?::timestamptz ELSE ?::timestamptz END, ?
			FROM wallets w CROSS JOIN generate_series(0, ?) k
			WHERE w.property = ? AND (w.id % 2 = 0 OR k = 0)`,
			[]any{later, matured, t0, lots, property}},
		{`INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
			SELECT j.id, j.property, j.user_id, a.account, a.bucket, 'revenue', a.sign * (0.5 + (j.id % 97) * 0.013), j.created_at
			FROM journal j CROSS JOIN (VALUES ('', 'pending', 1), ('@revenue', '', -1)) AS a (account, bucket, sign)
			WHERE j.property = ?`,
			[]any{property}},
		{`INSERT INTO lots (wallet_id, property, journal_id, amount, matures_at)
			SELECT w.id, w.property, j.id, 0.5 + (j.id % 97) * 0.013, j.matures_at
			FROM journal j JOIN wallets w ON w.property = j.property AND w.user_id = j.user_id
			WHERE j.property = ?`,
			[]any{property}},
		{`UPDATE wallets w SET pending = s.total, lifetime_earned = s.total
			FROM (SELECT wallet_id, sum(amount) AS total FROM lots GROUP BY wallet_id) s
			WHERE s.wallet_id = w.id AND w.property = ?`,
			[]any{property}},
		{`ANALYZE`, nil},
	}
	// Even wallets get lots matured lots (k > 0) and one maturing later (k = 0); odd
	// wallets only the later one, so exactly users × lots lots are due.
	for _, s := range steps {
		if err := db.ExecRaw(ctx, s.sql, s.args...); err != nil {
			b.Fatalf("populate: %v\n%s", err, s.sql)
		}
	}
}
