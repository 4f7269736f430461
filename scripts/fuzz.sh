#!/bin/bash
# Runs every built libFuzzer target for a bounded time: scripts/fuzz.sh BUILD_DIR SECONDS
# Seeds come from fuzz/corpus/<target>/ when present. A crash fails the run.
set -euo pipefail
build=${1:-build/fuzz}; secs=${2:-20}
shopt -s nullglob
n=0
for f in "$build"/fuzz/fuzz_*; do
  [[ -x $f && -f $f ]] || continue
  name=$(basename "$f"); corpus=$(mktemp -d)
  [[ -d fuzz/corpus/$name ]] && cp -r fuzz/corpus/"$name"/. "$corpus"/
  echo "-- $name (${secs}s)"
  "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "$corpus" 2>&1 | tail -n 4
  rm -rf "$corpus"; n=$((n+1))
done
echo "fuzz: $n targets ran clean"
