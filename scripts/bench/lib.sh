# Sourced by the scripts/bench-*.sh benchmarks for what they all set up; run from the
# repository's root. bench_setup NAME starts Postgres, installs wrk when missing, makes a
# work directory ($work) and an empty database tally_bench_NAME_<pid> ($db, $db_url),
# removed on exit with the tally serve of $tally_pid (KEEP=1 keeps the database, to look
# at it), and prints the machine and Postgres lines.
ADMIN_URL="${TALLY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
tally_pid=""

# bench_stop_tally stops the tally serve of $tally_pid, if any.
bench_stop_tally() {
  if [ -n "$tally_pid" ]; then
    kill -INT "$tally_pid" 2>/dev/null || true
    wait "$tally_pid" 2>/dev/null || true
    tally_pid=""
  fi
}

bench_cleanup() {
  bench_stop_tally
  if [ "${KEEP:-0}" = "1" ]; then
    echo "kept: $db_url"
  else
    psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}

bench_setup() {
  scripts/postgres.sh
  # A tally left running on the port would answer in place of the one under test.
  if [ -n "${PORT:-}" ] && curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/"; then
    echo "bench-$1: something already listens on port $PORT; stop it or set PORT" >&2
    exit 1
  fi
  if ! command -v wrk >/dev/null; then
    echo "bench-$1: installing wrk" >&2
    (apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; })
  fi
  work=$(mktemp -d)
  db="tally_bench_$1_$$"
  db_url="${ADMIN_URL%/*}/$db?sslmode=disable"
  trap bench_cleanup EXIT
  psql -q "$ADMIN_URL" -c "CREATE DATABASE $db" >/dev/null
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "postgres: $(psql -tA "$ADMIN_URL" -c 'SHOW server_version')"
}
