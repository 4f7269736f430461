// BlockHostServer: coffer's block host over HTTP/1.1 (keep-alive): protocol v1 under /v1/volumes,
// optionally the original disk host's /ReadBlock and /WriteBlock, /healthz and /metrics. TLS, mTLS
// with CRL, bearer tokens, a CIDR allowlist and request limits come from Options.
// Start() binds; Run() serves until Stop() (callable from any thread), which drains in-flight
// requests. One server object per listener; handlers run on a pool of worker threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "coffer/base/status.h"
#include "coffer/net/net.h"

namespace coffer::blockhost {

struct ServerOptions {
  std::string data_dir;
  std::string listen_host = "127.0.0.1";
  int listen_port = 0;  // 0: pick a free port (see port())
  std::optional<net::TlsServerConfig> tls;  // none: plaintext (only with insecure_plaintext on loopback)
  bool insecure_plaintext = false;
  std::string token_file;                // per-device bearer tokens
  std::vector<std::string> allow;        // CIDR allowlist; empty = everyone
  std::string compat_volume;             // serve /ReadBlock and /WriteBlock from this volume
  int max_connections = 64;              // worker threads; one per keep-alive connection
  size_t max_body_bytes = 64 << 20;
  size_t max_range_bytes = 16 << 20;
  uint64_t max_volume_bytes = uint64_t(64) << 30;
  int keep_alive_seconds = 5;            // idle keep-alive; also bounds the drain at Stop()
  int read_timeout_seconds = 30;
  std::ostream* access_log = nullptr;    // one line per request, never data bytes
};

class BlockHostServer {
 public:
  static Result<std::unique_ptr<BlockHostServer>> Create(ServerOptions options);
  ~BlockHostServer();
  Status Start();  // binds the listener (port() valid afterwards)
  Status Run();    // serves until Stop()
  void Stop();
  int port() const;

 private:
  struct Impl;
  explicit BlockHostServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::blockhost
