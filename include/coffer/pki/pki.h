// The fleet PKI: a CA (ECDSA P-256) kept in a directory, per-device client certificates with bounded
// validity, server certificates, and a CRL that key servers honour; plus the single self-signed
// certificate of secure-store's original setup. Private keys are written 0600 atomically.
// Directory layout (docs/fleet.md): ca.crt, ca.key, crl.pem, devices/<ID>.crt|.key, servers/<NAME>.crt|.key.
// Functions are thread-compatible (callers serialise writers of one directory).
#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"

namespace coffer::pki {

// Device ids: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-' (they name files and URLs).
Status ValidateDeviceId(std::string_view id);

struct CaOptions {
  std::string name = "coffer fleet CA";
  int days = 3650;
};
// Creates DIR (0700) with a new CA key and certificate and an empty CRL. Refuses an existing CA.
Status InitCa(const std::string& dir, const CaOptions& options = {});

struct IssueOptions {
  int days = 365;
  bool server = false;               // serverAuth certificate with SANs below instead of a device clientAuth one
  std::vector<std::string> hosts;    // DNS names or IP addresses for a server certificate
  int64_t not_before_offset_seconds = -300;  // tests set negative validity to make expired certificates
};
struct Issued {
  std::string cert_path, key_path;
  std::string serial_hex;
};
// Issues devices/ID.crt + devices/ID.key (or servers/ID.* with options.server). Refuses to overwrite
// an existing, unrevoked certificate of the same id.
Result<Issued> Issue(const std::string& dir, const std::string& id, const IssueOptions& options = {});

// Adds the certificate of device ID to the CRL and re-signs crl.pem (atomic).
Status Revoke(const std::string& dir, const std::string& id);

// secure-store's setup: one self-signed certificate (serverAuth+clientAuth, SAN hostname) in
// out_dir/cert.pem and out_dir/key.pem (0600); with base64, also cert.pem.b64 and key.pem.b64 (0600).
Status GenerateSingleCert(const std::string& out_dir, const std::string& hostname, int days, bool base64);

// ---- verification side (key servers) ----
// A parsed CRL whose signature was checked against the CA. Holds revoked serials (upper-case hex).
struct RevocationList {
  std::set<std::string> serials;
  bool Contains(const std::string& serial_hex) const { return serials.count(serial_hex) != 0; }
};
// Loads and verifies a CRL (PEM) against the CA certificate (PEM). kDataLoss if its signature fails.
Result<RevocationList> LoadCrl(const std::string& crl_path, const std::string& ca_cert_path);

}  // namespace coffer::pki
