#!/bin/bash
# The original remote-disk scenario (DESIGN 1.1), securely: a local coffer block host over TLS, a
# device key, a sealed volume on the host, littlefs with 256-byte blocks, write/seek/read test.txt.
# Called by scripts/demo.sh with COFFER=path/to/coffer; everything lives in a temp dir and goes away.
set -euo pipefail
COFFER=${COFFER:-build/src/cli/coffer}
COFFER=$(cd "$(dirname "$COFFER")" && pwd)/$(basename "$COFFER")
t=$(mktemp -d)
host_pid=""
cleanup() { [[ -n $host_pid ]] && kill "$host_pid" 2>/dev/null && wait "$host_pid" 2>/dev/null; rm -rf "$t"; }
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "throwaway TLS certificates for the host (openssl, in $t)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/ca.key" -out "$t/ca.pem" \
  -days 1 -subj "/CN=coffer demo CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$t/host.key" -out "$t/host.csr" \
  -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$t/ext"
openssl x509 -req -in "$t/host.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 1 \
  -extfile "$t/ext" -out "$t/host.pem" 2>/dev/null
chmod 600 "$t"/*.key

port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
step "start the block host: coffer serve blocks --listen 127.0.0.1:$port (TLS)"
"$COFFER" serve blocks --data "$t/data" --listen "127.0.0.1:$port" --tls-cert "$t/host.pem" \
  --tls-key "$t/host.key" --access-log off 2>"$t/host.log" &
host_pid=$!
for i in $(seq 1 100); do
  curl -sf --cacert "$t/ca.pem" -o /dev/null "https://127.0.0.1:$port/healthz" && break
  sleep 0.1
  [[ $i == 100 ]] && { echo "host did not come up:"; cat "$t/host.log"; exit 1; }
done
echo "host ready: https://127.0.0.1:$port/healthz -> 200"

step "device key: coffer key new"
"$COFFER" key new "$t/device.key"

V="https://127.0.0.1:$port/v1/volumes/demo?ca=$t/ca.pem"
step "sealed 4 MiB volume with 256-byte sectors on the host"
"$COFFER" volume create "$V" --key "$t/device.key" --size 4194304 --sector-size 256

step "the original scenario: mount (format on failure), open test.txt, write 442 bytes, seek 0, read, close"
"$COFFER" demo remote-disk --volume "$V" --key "$t/device.key"

step "what the host holds is ciphertext (no 'Lorem' in its files)"
if grep -rq "Lorem" "$t/data"; then echo "plaintext found on the host!"; exit 1; fi
echo "no plaintext on the host"

step "stop the host (SIGTERM drains and exits)"
kill "$host_pid"; wait "$host_pid"; host_pid=""
echo "done"
