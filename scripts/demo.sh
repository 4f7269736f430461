#!/bin/bash
# The end-to-end demo (README quick start): installs dependencies, builds coffer, and runs the
# original remote-disk scenario securely (scripts/demo_scenario.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build/demo -G Ninja -DCMAKE_BUILD_TYPE=Release -DCOFFER_TESTS=OFF -DCOFFER_BENCH=OFF >/dev/null
cmake --build build/demo -j"$(nproc)" --target coffer
COFFER=build/demo/src/cli/coffer bash scripts/demo_scenario.sh
