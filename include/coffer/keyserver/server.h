// `coffer serve keys`: the fleet key server. HTTPS with mutual TLS (client certificates from the fleet
// CA; a revoked serial in the CRL, reloaded when the file changes, is refused with 403), an address
// allowlist, per-identity rate limits and an append-only audit log (who, when, what, allowed or denied;
// never a secret). Endpoints (docs/format/keyserver_protocol.md):
//   GET  /healthz                     liveness (still needs a client certificate)
//   GET  /v1/secret/NAME              escrow: this device's secret NAME  -> {"secret": "<text>"}
//   GET  /v1/devices/ID/secret/NAME   same, refused (403) unless ID is the caller
//   GET  /key                         opt-in secure-store compatibility: 201 {"password": "<default secret>"}
//   POST /v1/witness                  freshness witness report {"volume","counter","root"}; 409 if rolled back
//   GET  /v1/witness/VOLUME           newest report seen for this device's VOLUME
//   GET  /adv[/THP], POST /rec/KID    Tang (server-blind), behind the same identity checks
// An optional plain-HTTP Tang listener serves only /adv and /rec for stock clevis clients (allowlist,
// rate limit and audit still apply; there is no identity there). State lives under the data directory
// (see docs/fleet.md); files are 0600 and written atomically. Thread-safe; Stop() may be called from
// any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "coffer/base/status.h"

namespace coffer::keyserver {

struct ServerOptions {
  std::string data_dir;
  std::string host = "127.0.0.1";
  int port = 8443;  // 0 picks a free port (see KeyServer::port)
  std::string tls_cert, tls_key, client_ca;
  std::string crl;                 // optional; default <client_ca dir>/crl.pem is not assumed
  std::vector<std::string> allow;  // CIDRs; empty allows every address
  double rate_per_second = 20;     // per identity (device id, or address without one)
  double burst = 40;
  bool compat_key_endpoint = false;
  std::string tang_host;  // plain Tang listener; empty = none
  int tang_port = -1;     // 0 picks a free port
};

class KeyServer {
 public:
  static Result<std::unique_ptr<KeyServer>> Create(const ServerOptions& options);
  virtual ~KeyServer() = default;
  // Binds the listeners and serves on background threads; returns once they accept connections.
  virtual Status Start() = 0;
  virtual void Stop() = 0;
  // Blocks until Stop (for the CLI).
  virtual void Wait() = 0;
  virtual int port() const = 0;
  virtual int tang_port() const = 0;
};

// Data directory helpers for the admin commands (`coffer keyserver enroll|rotate`).
// Stores secret NAME for device ID (0600, atomic). Refuses to replace an existing one unless replace.
Status EnrollDevice(const std::string& data_dir, const std::string& device, const std::string& name,
                    const std::string& secret_text, bool replace);
Status RotateTangKeys(const std::string& data_dir);

}  // namespace coffer::keyserver
