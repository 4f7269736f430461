#!/bin/bash
# Installs the Debian 12 packages coffer needs to build, test and demo (idempotent; root or sudo).
#   bash scripts/deps.sh           build, tests, demo (what CI and the quick start use)
#   bash scripts/deps.sh --bench   also the peers the benchmarks compare against (nginx, gocryptfs)
set -euo pipefail
PKGS=(
  build-essential cmake ninja-build pkg-config git curl python3 ca-certificates
  clang libclang-rt-14-dev
  libssl-dev libsodium-dev libcli11-dev nlohmann-json3-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfuse3-dev fuse3 libtss2-dev
  openssl rclone tang clevis jose socat swtpm swtpm-tools tpm2-tools
)
# Benchmark peers only: kept out of CI (nginx's package starts a service on install).
[[ ${1:-} == --bench ]] && PKGS+=(nginx gocryptfs)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
  echo "deps: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
