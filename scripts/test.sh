#!/bin/bash
# The test command (README quick start, and what CI runs): installs dependencies, builds, runs the
# unit/integration tier, the same unit tests under ASan+UBSan, and short bounded fuzz runs.
# Long sweeps are labelled and run separately: see README "Long tests".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
JOBS=${JOBS:-$(nproc)}
start=$(date +%s)

echo "== build (RelWithDebInfo)"
cmake -S . -B build/ci -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/ci -j"$JOBS"

echo "== tests (label: unit, net, interop; long sweeps excluded)"
(cd build/ci && ctest -j"$JOBS" -L 'unit|net|interop|cli' -LE 'long' --output-on-failure --timeout 900)

if [[ ${COFFER_SKIP_ASAN:-0} != 1 ]]; then
  echo "== unit tests under ASan+UBSan"
  cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCOFFER_SANITIZE=ON -DCOFFER_BENCH=OFF >/dev/null
  cmake --build build/asan -j"$JOBS"
  (cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
     ctest -j"$JOBS" -L unit -LE 'long|nosan' --output-on-failure --timeout 900)
fi

if [[ ${COFFER_SKIP_FUZZ:-0} != 1 && -d fuzz ]]; then
  echo "== fuzz targets (bounded: ${FUZZ_SECONDS:-20}s each)"
  CC=clang CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_FUZZ=ON \
    -DCOFFER_TESTS=OFF -DCOFFER_BENCH=OFF >/dev/null
  cmake --build build/fuzz -j"$JOBS"
  bash scripts/fuzz.sh build/fuzz "${FUZZ_SECONDS:-20}"
fi
echo "== all test stages passed in $(( $(date +%s) - start ))s"
