#!/usr/bin/env bash
# Publisher reads against the local Postgres, in one run (issue "Reads and settlement near
# the database's own speed"): pgbench's select-only run with prepared statements (one
# primary-key lookup per transaction) at 16 and 64 clients, then `tally serve` answering
# GET balance over HTTP from wrk in its own process at 16 and 64 connections over USERS
# users, then transactions pages and balance-feed pages of 100 with ENTRIES ledger entries
# in the database, at 16 and 4 connections. Prints req/s, p50/p99 and the ratio to
# pgbench. A benchmark, never a test: it asserts nothing.
#
#   scripts/bench-reads.sh            # DURATION=15 USERS=100000 ENTRIES=10000000
#   KEEP=1 scripts/bench-reads.sh     # keep the database afterwards, to look at it
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-15}"
USERS="${USERS:-100000}"
ENTRIES="${ENTRIES:-10000000}"
PORT="${PORT:-18081}"
. scripts/bench/lib.sh
bench_setup reads

# 1. tally's schema and data: USERS wallets, each with one pending lot, and ENTRIES ledger
# legs over the first half of them (journal rows of a pending credit and its @revenue
# leg, interleaved across users as ingest writes them), so each of those users has a
# full page of 100 transactions and more.
go build -o "$work/tally" ./cmd/tally
cat > "$work/bench.yaml" <<YAML
listen: "127.0.0.1:$PORT"
database: { url: "$db_url" }
admin_token: "bench-admin-token"
settlement: { schedule: "@every 1h" }
properties:
  - id: arcade
    gamezop_property_id: "1234"
    currency: COIN
    scale: 0
    api_keys: ["bench-api-key"]
    sources:
      gamezop_spp: { bearer_token: "bench-spp-token" }
    revenue:
      units_per_usd: "100000"
      share: "0.7"
      buffer: "0.2"
      hold: 24h
YAML
"$work/tally" migrate --config "$work/bench.yaml" >/dev/null
ledger_users=$(( USERS / 2 ))
per=$(( ENTRIES / ledger_users / 2 )); [ "$per" -ge 1 ] || per=1
echo "seeding $USERS wallets, $(( per * 2 * ledger_users )) ledger entries over $ledger_users of them …"
seed_start=$(date +%s)
psql -q -v ON_ERROR_STOP=1 "$db_url" <<SQL
SET synchronous_commit = off;
INSERT INTO wallets (property, user_id, created_at, updated_at, feed_seq)
  SELECT 'arcade', 'user-' || lpad(g::text, 9, '0'), now(), now(), 1 FROM generate_series(1, $USERS) g;
INSERT INTO journal (property, user_id, kind, rule, rule_version, ref, matures_at, created_at)
  SELECT w.property, w.user_id, 'revenue', 'revenue', 'bench', 'session:' || w.id || '-' || k, now() + interval '1 day', now()
  FROM generate_series(1, $per) k CROSS JOIN wallets w WHERE w.id <= $ledger_users ORDER BY k, w.id;
INSERT INTO entries (journal_id, property, user_id, account, bucket, kind, amount, created_at)
  SELECT j.id, j.property, j.user_id, a.account, a.bucket, 'revenue', a.sign * (1 + j.id % 97), j.created_at
  FROM journal j CROSS JOIN (VALUES ('', 'pending', 1), ('@revenue', '', -1)) AS a (account, bucket, sign)
  ORDER BY j.id, a.sign DESC;
INSERT INTO lots (wallet_id, property, journal_id, amount, matures_at)
  SELECT w.id, w.property, coalesce(j.id, 0), 1 + w.id % 97, now() + interval '1 day'
  FROM wallets w LEFT JOIN journal j ON j.user_id = w.user_id AND j.ref = 'session:' || w.id || '-1';
UPDATE wallets w SET pending = s.total, lifetime_earned = s.total
  FROM (SELECT wallet_id, sum(amount) AS total FROM lots GROUP BY wallet_id) s WHERE s.wallet_id = w.id;
VACUUM ANALYZE;
-- The seed's dirty pages are written now, not by the backends the reads below run on.
CHECKPOINT;
SQL
echo "seeded in $(( $(date +%s) - seed_start )) s: $(psql -tA "$db_url" -c 'SELECT count(*) FROM entries') entries"

# 2. The database alone: pgbench's select-only transactions (one primary-key lookup of
# 100,000 accounts), prepared statements, in the same database.
pgbench -i -s 1 -q "$db_url" >/dev/null 2>&1
pg() { pgbench -n -S -M prepared -c "$1" -j 2 -T "$DURATION" "$db_url" 2>/dev/null | awk '/^tps/ {print int($3)}'; }
pg16=$(pg 16)
pg64=$(pg 64)
echo "pgbench -S -M prepared: 16 clients $pg16 tps, 64 clients $pg64 tps"

# 3. tally serve on the same database. Request logs go to a file, as in production.
"$work/tally" serve --config "$work/bench.yaml" 2>"$work/serve.log" &
tally_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

# CPU time (user + system, clock ticks) of tally serve and of the bench database's client
# backends, the ones serving tally (not autovacuum's; Postgres on this machine, as
# scripts/postgres.sh starts it: the backends' pids are read from /proc here).
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
backends() { psql -tA "$ADMIN_URL" -c "SELECT pid FROM pg_stat_activity WHERE datname = '$db' AND backend_type = 'client backend'"; }

# run WHAT CONNECTIONS PGBENCH_TPS: one wrk run, printed with its ratio to pgbench and the
# CPU each process spent per answer (tally, the database's backends, wrk itself), which
# says where the two cores went.
run() {
  local what=$1 conns=$2 pgtps=$3 res rps requests tally_cpu pg_cpu=0 wrk_cpu p
  local -A before=()
  for p in $(backends); do before[$p]=$(ticks "$p"); done
  tally_cpu=$(ticks "$tally_pid")
  res=$( { TIMEFORMAT='%3U %3S'; time wrk -t"$(( conns < 2 ? conns : 2 ))" -c"$conns" -d"${DURATION}s" -s scripts/bench/reads.lua "http://127.0.0.1:$PORT" -- \
    "$what" "$USERS" bench-api-key 1 "$ledger_users" >"$work/wrk.out" 2>"$work/wrk.err"; } 2>&1)
  wrk_cpu=$(echo "$res" | awk '{printf "%d", ($1 + $2) * 1e6}')
  tally_cpu=$(( $(ticks "$tally_pid") - tally_cpu ))
  for p in $(backends); do pg_cpu=$(( pg_cpu + $(ticks "$p") - ${before[$p]:-0} )); done
  res=$(grep '^RESULT' "$work/wrk.out")
  rps=$(echo "$res" | sed 's/.*rps=\([0-9]*\).*/\1/')
  requests=$(echo "$res" | sed 's/.*requests=\([0-9]*\).*/\1/')
  awk -v w="$what" -v c="$conns" -v r="$res" -v rps="$rps" -v pg="$pgtps" -v n="$requests" -v hz="$hz" \
    -v t="$tally_cpu" -v d="$pg_cpu" -v k="$wrk_cpu" 'BEGIN { n = n > 0 ? n : 1
    printf "%-13s c=%-3d %s | %.2f× pgbench -S -M prepared (c=%d) | cpu/answer: tally %.0f µs, postgres %.0f µs, wrk %.0f µs\n",
      w, c, substr(r, 8), rps/pg, c, t * 1e6 / hz / n, d * 1e6 / hz / n, k / n }'
}
curl -sf -H 'Authorization: Bearer bench-api-key' "http://127.0.0.1:$PORT/v1/properties/arcade/users/user-000000001/balance" >/dev/null
run balance 16 "$pg16"
run balance 64 "$pg64"
# Pages at 16 connections keep both cores busy, so their latency is mostly queueing; at
# 4 still (a page costs about 1 ms of CPU in all); at 1 it is what one page costs.
run transactions 16 "$pg16"
run transactions 4 "$pg16"
run transactions 1 "$pg16"
run feed 16 "$pg16"
run feed 4 "$pg16"
run feed 1 "$pg16"
