// Device side of the key server: mTLS requests with retries. Servers are tried in order; a server that
// cannot be reached (connect/timeout/5xx/429) is retried after exponential backoff with full jitter,
// capped, until a total deadline. A refusal is final and distinct:
//   kPermissionDenied  4xx (no certificate accepted, revoked, not this device's secret, address not allowed)
//   kDataLoss          409 from the witness (the volume was rolled back or forked)
//   kNotFound          404 (no such secret or key id)
//   kUnavailable       no server answered before the deadline
// Thread-compatible (one instance per thread). Plain http:// URLs are allowed only for Tang servers.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "coffer/base/secret.h"
#include "coffer/base/status.h"
#include "coffer/keyserver/tang.h"
#include "coffer/keyserver/witness.h"

namespace coffer::keyserver {

struct ClientOptions {
  std::vector<std::string> urls;  // https://HOST:PORT (or http:// for a plain Tang server)
  std::string cert, key, ca;      // client certificate/key (PEM) and the CA of the server certificate
  std::chrono::milliseconds deadline{30000};
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds attempt_timeout{5000};
  std::function<void(const std::string&)> on_retry;  // progress messages (optional)
};

struct HttpReply {
  int status = 0;
  std::string body;
};

class KeyServerClient {
 public:
  explicit KeyServerClient(ClientOptions options);
  ~KeyServerClient();
  // One request with the retry policy above; returns the first definitive 2xx reply.
  Result<HttpReply> Request(const std::string& method, const std::string& path, const std::string& body = {});

  Result<SecretBytes> GetSecret(const std::string& name);
  Result<WitnessRecord> ReportWitness(const std::string& volume_hex, uint64_t counter, const std::string& root_hex);
  Result<WitnessRecord> LatestWitness(const std::string& volume_hex);
  Result<std::string> TangAdvertisement();
  // Recovers a Tang binding through this client (mTLS to coffer, or plain http to tangd).
  Result<SecretBytes> TangRecover(const tang::TangBinding& binding);

 private:
  struct Conn;
  ClientOptions o_;
  std::vector<std::unique_ptr<Conn>> conns_;  // kept for connection reuse
};

}  // namespace coffer::keyserver
