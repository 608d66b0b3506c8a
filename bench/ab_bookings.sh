#!/usr/bin/env bash
# Interleaved A/B of the booking benchmark: an earlier commit against the working tree, in the same run.
#
#   bench/ab_bookings.sh BASE_REV [ROUNDS=3] [SECONDS=15]
#
# The machine is shared and noisy, so a figure is only comparable with one measured next to it: each round runs
# the base commit, then the working tree, one after the other under the bench lock. The base runs from a
# throw-away git worktree with this checkout's virtualenv (PYTHONPATH puts its packages first) and compiled
# translations. Needs MARKETPLACE_TEST_DATABASE_URL like the other benchmarks; results go to /tmp/ab_*.json.
set -euo pipefail
base_rev=${1:?usage: bench/ab_bookings.sh BASE_REV [ROUNDS] [SECONDS]}
rounds=${2:-3}
seconds=${3:-15}
here=$(cd "$(dirname "$0")/.." && pwd)
base=$(mktemp -d /tmp/ab_base.XXXXXX)
trap 'git -C "$here" worktree remove --force "$base" >/dev/null 2>&1 || rm -rf "$base"' EXIT
git -C "$here" worktree add --detach --force "$base" "$base_rev" >/dev/null
ln -s "$here/.venv" "$base/.venv"
(cd "$here" && find marketplace -name '*.mo' -exec cp --parents {} "$base" \;)

for round in $(seq 1 "$rounds"); do
  for side in base new; do
    if [ "$side" = base ]; then dir=$base; path=$base; else dir=$here; path=; fi
    echo "== $side, round $round, $(date -u +%H:%M:%S) UTC, load $(cut -d' ' -f1 /proc/loadavg)"
    (cd "$dir" && PYTHONPATH=$path flock /tmp/bench.lock "$here/.venv/bin/python" bench/bookings_bench.py \
      --seconds "$seconds" --output "/tmp/ab_${side}_${round}.json" 2>&1 | grep -A4 '^API' | grep -v busy)
  done
done
