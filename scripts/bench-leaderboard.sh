#!/usr/bin/env bash
# GET …/tournaments/{t}/leaderboard over HTTP against the local Postgres (issue 12: p99
# ≤ 5 ms with 100,000 participants). Seeds PARTICIPANTS users into the open window of a
# weekly tournament with SQL straight into the tournament tables (scores, rank buckets:
# what the applier would leave), and the same users into last week's window, closed with
# its final ranking stored (what the closer would leave). Then `tally serve` answers wrk
# (scripts/bench/leaderboard.lua) at 1, 4 and 16 connections (one connection shows what
# an answer costs; at 4 and 16 the two cores are busy and latency is mostly queueing): a
# page of 50 of the current window, with user= on every other request, then the same of
# the closed window. Prints req/s, p50 and p99, and the CPU time per request that tally
# serve and the Postgres backends of the bench database spent (less disturbed than
# latency on a shared machine). A benchmark, never a test: it asserts nothing.
#
#   scripts/bench-leaderboard.sh                      # DURATION=15 PARTICIPANTS=100000
#   BASE_BIN=/tmp/old/tally scripts/bench-leaderboard.sh
#
# With BASE_BIN, that binary is measured too, on the same data in the same sitting,
# ROUNDS times each, alternating with this tree's (ROUNDS=1 by default): compare the two
# on a shared machine only within one run.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-15}"
PARTICIPANTS="${PARTICIPANTS:-100000}"
PORT="${PORT:-18082}"
ROUNDS="${ROUNDS:-1}"
CONNS="${CONNS:-1 4 16}"
BASE_BIN="${BASE_BIN:-}"
. scripts/bench/lib.sh
bench_setup lb

# 1. The schema and the boards. The tournament is weekly (Mondays 00:00 UTC), so this
# week's window is open whatever the time of the run, and last week's is closed.
go build -o "$work/tally" ./cmd/tally
week=$(date -u -d "$(date -u +%F) -$(( $(date -u +%u) - 1 )) days" +%F)T00:00:00Z
last=$(date -u -d "$week -7 days" +%FT%TZ)
cat > "$work/bench.yaml" <<YAML
listen: "127.0.0.1:$PORT"
database: { url: "$db_url" }
admin_token: "bench-admin-token"
settlement: { schedule: "@every 1h" }
properties:
  - id: arcade
    currency: COIN
    scale: 0
    api_keys: ["bench-api-key"]
    sources:
      gamezop_scores: { api_key: "" }
    tournaments:
      - id: bench-weekly
        game: NyM_JGWcx
        sources: [gamezop_scores]
        schedule: "0 0 * * 1"
        duration: 168h
        grace: 15m
        prizes:
          - { ranks: "1", amount: "1000" }
          - { ranks: "2-3", amount: "400" }
          - { ranks: "4-10", amount: "50" }
YAML
"$work/tally" migrate --config "$work/bench.yaml" >/dev/null
echo "seeding $PARTICIPANTS participants in window $week (open) and $last (closed) …"
seed_start=$(date +%s)
# Scores repeat every PARTICIPANTS/2 users (every score a tie of two, ties split). Sort
# keys and rank buckets are built in SQL as rewards.ScoreKey and rewards.RankBucket build
# them for direction higher (the Go benchmarks check this formula against RankBucket).
psql -q -v ON_ERROR_STOP=1 -v week="$week" -v last="$last" -v n="$PARTICIPANTS" "$db_url" <<'SQL'
SET synchronous_commit = off;
INSERT INTO tournament_windows (property, tournament, window_start, window_end, created_at)
  VALUES ('arcade', 'bench-weekly', :'week', :'week'::timestamptz + interval '168 hours', :'week');
INSERT INTO tournament_scores (property, tournament, window_start, user_id, score, sort_key, coarse_bucket, fine_bucket,
    achieved_us, event_id, plays, updated_at)
  SELECT 'arcade', 'bench-weekly', :'week', 'user-' || g, v, key,
    CASE WHEN v = 0 THEN key ELSE rpad(left(key, 21 - length(v::text)), 38, '0') END,
    CASE WHEN v = 0 THEN key ELSE rpad(left(key, 23 - length(v::text)), 38, '0') END,
    (extract(epoch FROM :'week'::timestamptz) * 1000000)::bigint + g * 1000, g, 1 + g % 3, :'week'
  FROM (SELECT g, v, translate(lpad(v::text, 20, '0') || repeat('0', 18), '0123456789', '9876543210') AS key
    FROM (SELECT g, (g * 7919) % greatest(:n / 2, 1) AS v FROM generate_series(1, :n) AS g) AS a) AS b;
INSERT INTO tournament_rank_buckets (property, tournament, window_start, level, bucket, shard, users)
  SELECT property, tournament, window_start, 1, coarse_bucket, 0, count(*) FROM tournament_scores
    GROUP BY property, tournament, window_start, coarse_bucket
  UNION ALL
  SELECT property, tournament, window_start, 3, fine_bucket, 0, count(*) FROM tournament_scores
    GROUP BY property, tournament, window_start, fine_bucket;
-- Last week: the same users, ranked (ties split: rank() over the sort key) with each
-- tied group sharing the prizes of the positions it occupies, as the close stores them.
INSERT INTO tournament_results (property, tournament, window_start, user_id, rank, score, sort_key, achieved_us, event_id, plays, prize)
  SELECT property, tournament, :'last', user_id, rank() OVER (ORDER BY sort_key), score, sort_key,
    achieved_us - 604800000000, event_id, plays,
    CASE WHEN sum(pp) OVER (PARTITION BY sort_key) > 0 THEN sum(pp) OVER (PARTITION BY sort_key) / count(*) OVER (PARTITION BY sort_key) END
  FROM (SELECT *, CASE WHEN pos = 1 THEN 1000 WHEN pos <= 3 THEN 400 WHEN pos <= 10 THEN 50 ELSE 0 END AS pp
    FROM (SELECT *, row_number() OVER (ORDER BY sort_key, achieved_us, event_id) AS pos FROM tournament_scores) AS s) AS x;
INSERT INTO tournament_windows (property, tournament, window_start, window_end, created_at, closed_at, closes_at, rule_version,
    ranked, paid, final_board)
  SELECT 'arcade', 'bench-weekly', :'last', :'week', :'last', :'week'::timestamptz + interval '15 minutes',
    :'week'::timestamptz + interval '15 minutes', 'bench', count(rank), coalesce(sum(prize), 0), true
  FROM tournament_results;
VACUUM ANALYZE;
SQL
echo "seeded in $(( $(date +%s) - seed_start )) s: $(psql -tA "$db_url" -c "SELECT count(*) FROM tournament_scores") live rows, $(psql -tA "$db_url" -c "SELECT count(*) FROM tournament_results") final rows"

# 2. tally serve on that database, request logs to a file as in production.
start_tally() { # BINARY
  "$1" serve --config "$work/bench.yaml" 2>>"$work/serve.log" &
  tally_pid=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.1; done
  echo "bench-leaderboard: tally serve did not come up" >&2
  tail -20 "$work/serve.log" >&2
  exit 1
}

# CPU time (user + system, clock ticks) of tally serve and of the bench database's backends.
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
backends() { psql -tA "$ADMIN_URL" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend'"; }

# run LABEL WINDOW CONNECTIONS: one wrk run.
run() {
  local label=$1 window=$2 conns=$3 res requests p tally_cpu pg_cpu=0
  local -A before=()
  for p in $(backends); do before[$p]=$(ticks "$p"); done
  tally_cpu=$(ticks "$tally_pid")
  res=$(wrk -t$(( conns < 2 ? conns : 2 )) -c"$conns" -d"${DURATION}s" -s scripts/bench/leaderboard.lua "http://127.0.0.1:$PORT" -- \
    "$window" "$PARTICIPANTS" bench-api-key 50 | grep '^RESULT')
  tally_cpu=$(( $(ticks "$tally_pid") - tally_cpu ))
  for p in $(backends); do pg_cpu=$(( pg_cpu + $(ticks "$p") - ${before[$p]:-0} )); done
  requests=$(echo "$res" | sed 's/.*requests=\([0-9]*\).*/\1/')
  printf "%-5s %-8s c=%-3d %s | cpu/req: tally %d µs, postgres %d µs\n" "$label" "${window/$last/closed}" "$conns" "${res#RESULT }" \
    $(( tally_cpu * 1000000 / hz / (requests > 0 ? requests : 1) )) $(( pg_cpu * 1000000 / hz / (requests > 0 ? requests : 1) ))
}

# answers LABEL: a few answers of the running binary, kept to compare with BASE_BIN's
# (pages of both windows, with and without own rows, the first and the last user, a
# page from a cursor, the list of tournaments).
answers() {
  local base="http://127.0.0.1:$PORT/v1/properties/arcade/tournaments" path cursor
  for window in current "$last"; do
    for path in "limit=50" "limit=50&user=user-1" "limit=5&user=user-50000" "limit=500&user=user-99999" "limit=1&user=nobody"; do
      curl -sf -H 'Authorization: Bearer bench-api-key' "$base/bench-weekly/leaderboard?window=$window&$path"; echo
    done
    cursor=$(curl -sf -H 'Authorization: Bearer bench-api-key' "$base/bench-weekly/leaderboard?window=$window&limit=500" | jq -r .next_cursor)
    curl -sf -H 'Authorization: Bearer bench-api-key' "$base/bench-weekly/leaderboard?window=$window&limit=50&cursor=$cursor&user=user-2"; echo
  done
  curl -sf -H 'Authorization: Bearer bench-api-key' "$base"; echo
}

# bench LABEL BINARY: every case against one binary.
bench() {
  local label=$1 bin=$2 window conns
  start_tally "$bin"
  answers > "$work/$label.answers"
  if [ -n "$BASE_BIN" ] && [ -f "$work/base.answers" ] && [ -f "$work/new.answers" ]; then
    if cmp -s "$work/base.answers" "$work/new.answers"; then
      echo "answers: the same from both binaries ($(wc -l < "$work/new.answers") requests)"
    else
      echo "answers: DIFFER"; diff <(jq -S . "$work/base.answers") <(jq -S . "$work/new.answers") | head -40
    fi
  fi
  wrk -t2 -c4 -d2s -s scripts/bench/leaderboard.lua "http://127.0.0.1:$PORT" -- current "$PARTICIPANTS" bench-api-key 50 >/dev/null
  for window in current "$last"; do
    for conns in $CONNS; do
      run "$label" "$window" "$conns"
    done
  done
  bench_stop_tally
}

for _ in $(seq 1 "$ROUNDS"); do
  [ -n "$BASE_BIN" ] && bench base "$BASE_BIN"
  bench new "$work/tally"
done
