#!/usr/bin/env bash
# bench-settle.sh: settlement throughput of this tree beside a baseline commit, measured
# in one run on one machine (issue 15: ≥ 2.5× main before the set-based settlement).
#
#   BASE=021a173 TALLY_BENCH_USERS=100000 TALLY_BENCH_LOTS=10 ROUNDS=1 scripts/bench-settle.sh
#
# The baseline is checked out with `git worktree` into a temporary directory (removed on
# exit) and runs the same BenchmarkSettle, against the same Postgres (TALLY_TEST_POSTGRES,
# default postgres://postgres@127.0.0.1:5432/postgres), with the same sizes. Each round
# runs the baseline, then this tree; each populates its own fresh database, untimed. On a
# machine others are using, ROUNDS=3 alternates three times and keeps each side's best.
set -euo pipefail

BASE=${BASE:-021a173}
export TALLY_BENCH_USERS=${TALLY_BENCH_USERS:-100000}
export TALLY_BENCH_LOTS=${TALLY_BENCH_LOTS:-10}
BENCHTIME=${BENCHTIME:-1x}
ROUNDS=${ROUNDS:-1}

root=$(git rev-parse --show-toplevel)
cd "$root"
base_commit=$(git rev-parse --verify "$BASE^{commit}")
head_commit=$(git rev-parse --short HEAD)
dirty=""
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then dirty=" (with uncommitted changes)"; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-settle.XXXXXX")
cleanup() {
	git -C "$root" worktree remove --force "$tmp/base" >/dev/null 2>&1 || true
	rm -rf "$tmp"
	git -C "$root" worktree prune >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM
git worktree add --quiet --detach "$tmp/base" "$base_commit"

# bench DIR LABEL: run BenchmarkSettle in DIR, print its output, append its lots/s to
# $tmp/LABEL.rate.
bench() {
	local dir=$1 label=$2 rate
	echo "== $label"
	(cd "$dir" && go test -vet=off -run '^$' -bench '^BenchmarkSettle$' -benchtime "$BENCHTIME" -timeout 60m ./store/) | tee "$tmp/$label.out"
	rate=$(awk '/^BenchmarkSettle/ { for (i = 1; i < NF; i++) if ($(i+1) == "lots/s") print $i }' "$tmp/$label.out" | tail -1)
	if [ -z "$rate" ]; then
		echo "bench-settle: no lots/s figure from $label" >&2
		exit 1
	fi
	echo "$rate" >>"$tmp/$label.rate"
}

for _ in $(seq "$ROUNDS"); do
	bench "$tmp/base" base
	bench "$root" head
done

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
best() { sort -g "$1" | tail -1; }
base_rate=$(best "$tmp/base.rate")
head_rate=$(best "$tmp/head.rate")
echo
echo "machine:   $(nproc) cores, ${cpu:-unknown cpu}, $(uname -sr)"
echo "postgres:  $(psql "${TALLY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}" -Atc 'SHOW server_version' 2>/dev/null || echo unknown)"
echo "workload:  $TALLY_BENCH_USERS users × $TALLY_BENCH_LOTS matured lots, benchtime $BENCHTIME, best of $ROUNDS"
echo "load:      $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown) (1, 5, 15 min)"
printf 'baseline:  %-10s %10.0f lots/s  (runs: %s)\n' "$(git rev-parse --short "$base_commit")" "$base_rate" "$(paste -sd' ' "$tmp/base.rate")"
printf 'this tree: %-10s %10.0f lots/s  (runs: %s)%s\n' "$head_commit" "$head_rate" "$(paste -sd' ' "$tmp/head.rate")" "$dirty"
awk -v b="$base_rate" -v h="$head_rate" 'BEGIN { printf "ratio:     %.2f× (target ≥ 2.5×)\n", h / b }'
