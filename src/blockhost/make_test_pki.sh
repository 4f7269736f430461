#!/bin/bash
# Makes a throwaway PKI for the block host's TLS tests (run at test time; never committed output):
# ca, server (IP SAN 127.0.0.1), client certs devA/devB/revoked/expired from ca, a client "other"
# from a second CA, and ca.crl revoking "revoked". Usage: make_test_pki.sh DIR
set -euo pipefail
d=$1; mkdir -p "$d"; cd "$d"
q() { "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }; }
mkca() {  # name
  mkdir -p "$1.db"; : >"$1.db/index.txt"; echo 1000 >"$1.db/serial"; echo 1000 >"$1.db/crlnumber"
  cat >"$1.cnf" <<CNF
[ca]
default_ca = ca_default
[ca_default]
dir = $d/$1.db
database = \$dir/index.txt
serial = \$dir/serial
crlnumber = \$dir/crlnumber
new_certs_dir = \$dir
certificate = $d/$1.pem
private_key = $d/$1.key
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
copy_extensions = copy
unique_subject = no
[policy_any]
commonName = supplied
[v3_client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
[v3_server]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
CNF
  q openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" \
    -days 30 -subj "/CN=$1 test CA"
}
issue() {  # ca name ext [ca-args...]
  local ca=$1 name=$2 ext=$3; shift 3
  q openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=$name"
  q openssl ca -batch -config "$ca.cnf" -extensions "$ext" -in "$name.csr" -out "$name.pem" -notext "$@"
}
mkca ca; mkca otherca
issue ca server v3_server
issue ca devA v3_client
issue ca devB v3_client
issue ca revoked v3_client
issue ca expired v3_client -startdate 20200101000000Z -enddate 20200102000000Z
issue otherca other v3_client
q openssl ca -batch -config ca.cnf -revoke revoked.pem
q openssl ca -batch -config ca.cnf -gencrl -out ca.crl
chmod 600 *.key
