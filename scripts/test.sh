#!/bin/bash
# The test command (README quick start, and what CI runs): installs dependencies, then
#  1. builds with gcc (RelWithDebInfo) and runs the unit, net, interop and cli tiers;
#  2. builds with clang under ASan+UBSan (plus libFuzzer coverage instrumentation), runs the unit
#     tests there, and runs every fuzz target for a bounded time (FUZZ_SECONDS, default 20).
# Long sweeps are labelled `long` and run separately: see README "Long tests".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
JOBS=${JOBS:-$(nproc)}
start=$(date +%s)

echo "== build (gcc, RelWithDebInfo)"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_BENCH=OFF >/dev/null
cmake --build build/ci -j"$JOBS"

echo "== tests: unit, net, interop, cli (long sweeps excluded)"
(cd build/ci && ctest -j"$JOBS" -L 'unit|net|interop|cli' -LE 'long' --output-on-failure --timeout 900)

if [[ ${COFFER_SKIP_SAN:-0} != 1 ]]; then
  echo "== build (clang, ASan+UBSan, fuzz targets)"
  CC=clang CXX=clang++ cmake -S . -B build/san -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCOFFER_SANITIZE=ON -DCOFFER_FUZZ=ON -DCOFFER_BENCH=OFF >/dev/null
  cmake --build build/san -j"$JOBS"
  echo "== fuzz targets (bounded: ${FUZZ_SECONDS:-20}s each)"
  bash scripts/fuzz.sh build/san "${FUZZ_SECONDS:-20}"
  echo "== unit tests under ASan+UBSan"
  (cd build/san && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest -j"$JOBS" -L unit -LE 'long|nosan' --output-on-failure --timeout 900)
fi
echo "== all test stages passed in $(( $(date +%s) - start ))s"
