package app_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"tally/app"
	"tally/rewards"
	"tally/store"
	"tally/store/storetest"
)

// BenchmarkLeaderboardHTTP drives GET …/leaderboard over real HTTP against Postgres
// with TALLY_BENCH_PARTICIPANTS participants (default 100,000) in the current window:
// every other request is the first page of 50, the others the first page plus the own
// row of a user spread over the whole board. DESIGN.md §4 target: p99 ≤ 5 ms.
//
//	TALLY_BENCH_CLIENTS_PER_CPU=8 go test -run '^$' -bench LeaderboardHTTP -benchtime 20000x ./app/
//
// The rows and rank buckets are written (untimed) with set-based SQL, as the applier
// would leave them (each row's buckets checked against rewards.RankBucket): every score
// is a tie of two, ties split.
func BenchmarkLeaderboardHTTP(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("TALLY_BENCH_PARTICIPANTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	u := storetest.URL(b, store.Postgres)
	db := storetest.OpenURL(b, u, nil)
	now := time.Now().UTC().Truncate(time.Second)
	cup := rewards.Tournament{ID: "cup", Version: "c1", Game: "NyM_JGWcx", Direction: rewards.Higher, Start: now.Add(-time.Hour),
		End: now.Add(time.Hour), Ties: rewards.TiesSplit, MinPlays: 1, Prizes: []rewards.Prize{{From: 1, To: 10, Amount: dec("10")}}}
	populateBoard(b, ctx, u, cup, n)

	p := arcade()
	p.Rules.Tournaments = []rewards.Tournament{cup}
	a := app.New(db, app.Options{Properties: []app.Property{p}, IngestWorkers: 2, IngestBatch: 256})
	defer a.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	load(b, newClient(), func(i int64) *http.Request {
		url := srv.URL + "/v1/properties/arcade/tournaments/cup/leaderboard?limit=50"
		if i%2 == 1 {
			url += fmt.Sprintf("&user=user-%d", (i*7919)%int64(n)+1)
		}
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		return req
	})
}

// populateBoard writes n participants of cup's window and its rank buckets.
func populateBoard(b *testing.B, ctx context.Context, url string, cup rewards.Tournament, n int) {
	b.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	start := cup.Start
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO tournament_windows (property, tournament, window_start, window_end, created_at) VALUES ('arcade', $1, $2, $3, $2)`,
			[]any{cup.ID, start, cup.End}},
		{`INSERT INTO tournament_scores (property, tournament, window_start, user_id, score, sort_key, coarse_bucket, fine_bucket,
			achieved_us, event_id, plays, updated_at)
			SELECT 'arcade', $1, $2, 'user-' || g, v, key,
				CASE WHEN v = 0 THEN key ELSE rpad(left(key, 21 - length(v::text)), 38, '0') END,
				CASE WHEN v = 0 THEN key ELSE rpad(left(key, 23 - length(v::text)), 38, '0') END,
				$4::bigint + g, g, 1, $2
			FROM (SELECT g, v, translate(lpad(v::text, 20, '0') || repeat('0', 18), '0123456789', '9876543210') AS key
				FROM (SELECT g, (g * 7919) % ($3 / 2) AS v FROM generate_series(1, $3) AS g) AS a) AS b`,
			[]any{cup.ID, start, n, start.UnixMicro()}},
	} {
		if _, err := conn.Exec(ctx, q.sql, q.args...); err != nil {
			b.Fatal(err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT sort_key, coarse_bucket, fine_bucket, count(*) FROM tournament_scores WHERE tournament = $1
		GROUP BY sort_key, coarse_bucket, fine_bucket`, cup.ID)
	if err != nil {
		b.Fatal(err)
	}
	type bucket struct {
		level int
		name  string
	}
	counts := map[bucket]int64{}
	for rows.Next() {
		var key, coarse, fine string
		var c int64
		if err := rows.Scan(&key, &coarse, &fine, &c); err != nil {
			b.Fatal(err)
		}
		if coarse != rewards.RankBucket(key, cup.Direction, rewards.CoarseDigits) || fine != rewards.RankBucket(key, cup.Direction, rewards.FineDigits) {
			b.Fatalf("key %s has buckets %s and %s", key, coarse, fine)
		}
		for _, level := range []int{rewards.CoarseDigits, rewards.FineDigits} {
			counts[bucket{level, rewards.RankBucket(key, cup.Direction, level)}] += c
		}
	}
	rows.Close()
	var levels []int16
	var names []string
	var users []int64
	for k, c := range counts {
		levels, names, users = append(levels, int16(k.level)), append(names, k.name), append(users, c)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO tournament_rank_buckets (property, tournament, window_start, level, bucket, users)
		SELECT 'arcade', $1, $2, l, b, n FROM unnest($3::smallint[], $4::text[], $5::bigint[]) AS t(l, b, n)`,
		cup.ID, start, levels, names, users); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `VACUUM ANALYZE`); err != nil {
		b.Fatal(err)
	}
}
