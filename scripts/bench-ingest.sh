#!/usr/bin/env bash
# Durable SPP ingest against the local Postgres, in one run (issue "The write path at the
# database's speed"): pgbench's single-row INSERT … ON CONFLICT at 32 clients, then
# `tally serve` receiving unique SPPs over HTTP from wrk in its own process at 32 and 64
# connections, then (REDELIVERY=1, the default) an inbox already holding PRE events applied
# since its last vacuum, without and with 20 % redeliveries mixed in. Prints req/s,
# p50/p99, non-200s, apply lag p99, tally's CPU per request and the ratio to pgbench.
# A benchmark, never a test: it asserts nothing.
#
#   scripts/bench-ingest.sh            # DURATION=15 PRE=1000000 REDELIVERY=1
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${DURATION:-15}"
PRE="${PRE:-1000000}"
REDELIVERY="${REDELIVERY:-1}"
PORT="${PORT:-18080}"
. scripts/bench/lib.sh
bench_setup ingest

# 1. The database alone: single-row INSERT … ON CONFLICT transactions, 32 clients.
psql -q "$db_url" -c "CREATE TABLE pgbench_ingest (k bigint PRIMARY KEY, v text NOT NULL)"
cat > "$work/insert.sql" <<'SQL'
\set k random(1, 9000000000000000)
INSERT INTO pgbench_ingest (k, v) VALUES (:k, 'x') ON CONFLICT DO NOTHING;
SQL
pg_tps=$(pgbench -n -c 32 -j 2 -T "$DURATION" -f "$work/insert.sql" "$db_url" 2>/dev/null | awk '/^tps/ {print int($3)}')
echo "pgbench single-row INSERT … ON CONFLICT, 32 clients: $pg_tps tx/s"
psql -q "$db_url" -c "DROP TABLE pgbench_ingest"

# 2. tally serve on the same database.
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
      min_session_seconds: 10
      countries: { "*": "1" }
      caps: { per_session: "500", per_user_per_day: "10000" }
YAML
"$work/tally" migrate --config "$work/bench.yaml" >/dev/null
"$work/tally" serve --config "$work/bench.yaml" 2>"$work/serve.log" &
tally_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$tally_pid/stat"; }
hz=$(getconf CLK_TCK)
backlog() { psql -tA "$db_url" -c "SELECT count(*) FROM inbox WHERE status = 'recorded'"; }

# run NAME CONNECTIONS REDELIVER%: one wrk run, then wait for the applier to drain.
run() {
  local name=$1 conns=$2 redeliver=$3
  local start cpu0 out res reqs cpu1 cpu2 lag
  start=$(psql -tA "$db_url" -c "SELECT now()")
  cpu0=$(cpu_ticks)
  out=$(wrk -t2 -c"$conns" -d"${DURATION}s" --latency -s scripts/bench/spp.lua "http://127.0.0.1:$PORT" -- "$name" "$redeliver" "$PRE" bench-spp-token)
  cpu1=$(cpu_ticks)
  for _ in $(seq 1 600); do [ "$(backlog)" = "0" ] && break; sleep 0.1; done
  cpu2=$(cpu_ticks)
  res=$(echo "$out" | grep '^RESULT')
  reqs=$(echo "$res" | sed 's/.*requests=\([0-9]*\).*/\1/')
  rps=$(echo "$res" | sed 's/.*rps=\([0-9]*\).*/\1/')
  lag=$(psql -tA "$db_url" -c "SELECT round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM applied_at - received_at)) * 1000)::numeric, 1)
    FROM inbox WHERE received_at >= '$start' AND applied_at IS NOT NULL")
  awk -v n="$name" -v c="$conns" -v r="$res" -v reqs="$reqs" -v rps="$rps" -v c0="$cpu0" -v c1="$cpu1" -v c2="$cpu2" -v hz="$hz" -v pg="$pg_tps" -v lag="$lag" 'BEGIN {
    printf "%-22s c=%-3d %s | apply lag p99 %s ms | tally CPU/request %.0f µs during the run, %.0f µs until applied | %.2f× pgbench\n",
      n, c, substr(r, 8), lag, (c1-c0)/hz*1e6/reqs, (c2-c0)/hz*1e6/reqs, rps/pg }'
}

run unique-32 32 0
run unique-64 64 0

if [ "$REDELIVERY" = "1" ]; then
  # Recorded, then marked applied, as the applier does (in one transaction, so the
  # running applier never sees them recorded), with no vacuum since: each leaves a dead
  # entry in the index of recorded events, as on a busy inbox between two vacuums.
  echo "pre-recording $PRE events, applied since the inbox's last vacuum …"
  psql -q -v ON_ERROR_STOP=1 "$db_url" -c "BEGIN" -c "INSERT INTO inbox (property, source, dedupe_key, user_id, kind, event_type, raw_body, event, received_at, status)
    SELECT 'arcade', 'gamezop_spp', 'pre-' || g, 'u' || (g % 100000), 'session', 'spp', '\x7b7d'::bytea, '{}', now(), 'recorded'
    FROM generate_series(1, $PRE) g" -c "UPDATE inbox SET status = 'applied', applied_at = now() WHERE dedupe_key LIKE 'pre-%'" \
    -c "COMMIT" && psql -q "$db_url" -c "ANALYZE inbox"
  run unique-32-large-inbox 32 0
  run redeliver20-32 32 20
fi
echo "(tally CPU includes its applier; 'until applied' adds the time the applier needed after wrk stopped)"
