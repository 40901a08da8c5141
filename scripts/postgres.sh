#!/usr/bin/env bash
# Makes sure the Postgres the tests use is up. Tests create and drop their own databases
# on it. Starts the local Debian cluster when it is installed but stopped; otherwise fails
# loudly: the suite never silently skips Postgres.
set -euo pipefail
url="${TALLY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"

# The URL's host and port, for a check without the Postgres client (pg_isready).
hostport="${url#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"; hostport="${hostport%%\?*}"
host="${hostport%:*}"; port="${hostport##*:}"
if [ "$host" = "$hostport" ]; then port=5432; fi
host="${host:-127.0.0.1}"

reachable() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -d "$url" -t 3 2>/dev/null
  else
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
  fi
}

if reachable; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  for v in $(ls /etc/postgresql); do
    echo "postgres.sh: starting Postgres cluster $v/main" >&2
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
  done
  for _ in $(seq 1 30); do reachable && exit 0; sleep 1; done
fi
cat >&2 <<MSG
################################################################################
  POSTGRES IS NOT REACHABLE at $url
  The test suite runs against SQLite AND Postgres and will not skip Postgres.
  Start it (pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start)
  or point TALLY_TEST_POSTGRES at a server where user may CREATE DATABASE.
################################################################################
MSG
exit 1
