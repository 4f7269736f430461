#!/bin/bash
# Runs every built libFuzzer target for a bounded time: scripts/fuzz.sh BUILD_DIR SECONDS
# Seeds come from fuzz/corpus/<target>/ when present. A crash, leak or hang fails the run and its
# report is printed.
set -uo pipefail
build=${1:-build/fuzz}; secs=${2:-20}
shopt -s nullglob
n=0; failed=0
for f in "$build"/fuzz/fuzz_*; do
  [[ -x $f && -f $f ]] || continue
  name=$(basename "$f"); corpus=$(mktemp -d); log=$(mktemp)
  [[ -d fuzz/corpus/$name ]] && cp -r fuzz/corpus/"$name"/. "$corpus"/
  echo "-- $name (${secs}s)"
  if "$f" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 "$corpus" >"$log" 2>&1; then
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$log"
  else
    echo "FAILED: $name"; grep -A40 -E 'ERROR|runtime error|deadly signal|Test unit written' "$log" | head -80
    failed=$((failed+1))
  fi
  rm -rf "$corpus" "$log"; n=$((n+1))
done
echo "fuzz: $n targets ran, $failed failed"
((failed == 0))
