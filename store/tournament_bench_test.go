package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// BenchmarkLeaderboard reads a window's leaderboard with TALLY_BENCH_PARTICIPANTS
// participants (default 100,000) on Postgres, as GET …/leaderboard does: the first page,
// a page from a cursor half-way down, and a page with a user's own row (the user ranked
// last: every rank bucket ahead of it is summed). The DESIGN.md target is p99 ≤ 5 ms:
//
//	go test -run '^$' -bench Leaderboard -benchtime 2000x ./store/
//
// Scores repeat every 50,000 users, so every score is a tie of two (ties: split). The
// rows are written (untimed) with one set-based statement whose sort keys and buckets
// are built in SQL the way rewards.ScoreKey and RankBucket build them (RebuildRankBuckets
// checks every bucket against RankBucket). Then the window is closed (untimed: it ranks
// every participant and stores the final board) and the same three reads are timed on
// the final board (closed-…).
func BenchmarkLeaderboard(b *testing.B) {
	n := envInt(b, "TALLY_BENCH_PARTICIPANTS", 100000)
	clock := storetest.NewClock(win0.Add(time.Hour))
	db := storetest.Open(b, store.Postgres, clock.Now)
	ctx := context.Background()
	start := time.Now()
	if err := db.ExecRaw(ctx, `INSERT INTO tournament_windows (property, tournament, window_start, window_end, created_at) VALUES (?, ?, ?, ?, ?)`,
		"arcade", "snake-daily", win0W.Start, win0W.End, win0); err != nil {
		b.Fatal(err)
	}
	if err := db.ExecRaw(ctx, `INSERT INTO tournament_scores (property, tournament, window_start, user_id, score, sort_key, coarse_bucket,
		fine_bucket, achieved_us, event_id, plays, updated_at)
		SELECT 'arcade', 'snake-daily', ?, 'user-' || g, v, key,
			CASE WHEN v = 0 THEN key ELSE rpad(left(key, 21 - length(v::text)), 38, '0') END,
			CASE WHEN v = 0 THEN key ELSE rpad(left(key, 23 - length(v::text)), 38, '0') END,
			?::bigint + g, g, 1 + g % 3, ?
		FROM (SELECT g, v, translate(lpad(v::text, 20, '0') || repeat('0', 18), '0123456789', '9876543210') AS key
			FROM (SELECT g, (g * 7919) % 50000 AS v FROM generate_series(1, ?) AS g) AS a) AS b`,
		win0W.Start, win0.UnixMicro(), win0, n); err != nil {
		b.Fatal(err)
	}
	if err := db.RebuildRankBuckets(ctx, "arcade", "snake-daily", win0W.Start, rewards.Higher); err != nil {
		b.Fatal(err)
	}
	if err := db.ExecRaw(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("populated %d participants in %s", n, time.Since(start).Round(time.Millisecond))

	q := rewards.LeaderboardQuery{Property: "arcade", Tournament: dailyTournament(), Window: win0W, Limit: 50}
	first, err := db.Leaderboard(ctx, q)
	if err != nil || len(first.Rows) != 50 {
		b.Fatalf("first page: %d rows, %v", len(first.Rows), err)
	}
	if key, _ := rewards.ScoreKey(first.Rows[0].Score, rewards.Higher); first.Rows[0].Score.String() != "49999" || key == "" {
		b.Fatalf("best score %s", first.Rows[0].Score)
	}
	// A cursor half-way down, found by paging (untimed).
	mid := q
	mid.Limit = 500
	for range n / 2 / 500 {
		page, err := db.Leaderboard(ctx, mid)
		if err != nil {
			b.Fatal(err)
		}
		mid.Cursor = page.NextCursor
	}
	mid.Limit = 50
	last := q
	// The lowest score (0) is held by users whose g × 7919 is a multiple of 50,000.
	last.User = "user-50000"

	type benchCase struct {
		name string
		q    rewards.LeaderboardQuery
	}
	run := func(c benchCase) {
		b.Run(c.name, func(b *testing.B) {
			times := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t := time.Now()
				lb, err := db.Leaderboard(ctx, c.q)
				times = append(times, time.Since(t))
				if err != nil || len(lb.Rows) != 50 || (c.q.User != "" && (lb.UserRow == nil || lb.UserRow.Rank < int64(n-1))) {
					b.Fatalf("%d rows, user row %+v, %v", len(lb.Rows), lb.UserRow, err)
				}
			}
			slices.Sort(times)
			p99 := times[min(len(times)-1, len(times)*99/100)]
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
		})
	}
	for _, c := range []benchCase{{"first-page", q}, {"page-at-half", mid}, {"page-and-last-user", last}} {
		run(c)
	}

	clock.Set(win0W.ClosesAt)
	start = time.Now()
	if got, err := db.CloseTournamentWindow(ctx, "arcade", dailyTournament(), win0W); err != nil || got.Outcome != rewards.CloseDone {
		b.Fatalf("close: %+v, %v", got, err)
	}
	if err := db.ExecRaw(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("closed the window of %d participants in %s", n, time.Since(start).Round(time.Millisecond))
	for _, c := range []benchCase{{"closed-first-page", q}, {"closed-page-at-half", mid}, {"closed-page-and-last-user", last}} {
		run(c)
	}
}
