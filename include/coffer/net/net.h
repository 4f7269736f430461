// coffer_net: small HTTP/TLS plumbing shared by coffer's servers and clients (block host, key
// server): URL parsing, CIDR allowlists, bearer-token tables, TLS contexts (server with mTLS + CRL,
// client with CA pinning and a client certificate), retry backoff with jitter, Prometheus metrics.
// Everything here is thread-safe unless a comment says otherwise; nothing here logs secrets.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/base/status.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace coffer::net {

// ---- URLs -------------------------------------------------------------------------------------
struct Url {
  std::string scheme;  // "http", "https", "diskhost"
  std::string host;    // without brackets
  int port = 0;
  std::string path;    // starts with '/', or empty
  std::string query;   // after '?', without it
  std::string HostPort() const;  // "host:port", IPv6 bracketed
};
// Parses scheme://host[:port][/path][?query]; the default port is 443 for https, 80 for http.
Result<Url> ParseUrl(std::string_view text);
// Parses HOST:PORT (IPv6 as [::1]:PORT).
Result<std::pair<std::string, int>> ParseHostPort(std::string_view text);
bool IsLoopbackHost(std::string_view host);
// A TCP port on 127.0.0.1 that the kernel had free a moment ago (closed again before returning),
// for tests and benchmarks that start servers on loopback; 0 if none could be had.
int FreeLoopbackPort();

// ---- CIDR allowlist ---------------------------------------------------------------------------
class CidrAllowlist {
 public:
  // Each entry is "a.b.c.d/n", "a.b.c.d", "x::y/n" or "x::y". Empty list allows everyone.
  static Result<CidrAllowlist> Parse(const std::vector<std::string>& entries);
  bool Allows(std::string_view address) const;  // false for unparsable addresses
  bool empty() const { return nets_.empty(); }

 private:
  struct Net {
    int family;  // 4 or 6
    std::array<uint8_t, 16> addr{};
    int prefix = 0;
  };
  std::vector<Net> nets_;
};

// ---- Bearer tokens ----------------------------------------------------------------------------
// A token file has one device per line: "<device-id> <token>" ('#' comments, blank lines ok).
// Tokens are kept only as SHA-256 digests and compared in constant time.
class TokenTable {
 public:
  static Result<TokenTable> Load(const std::string& path);
  static Result<TokenTable> Parse(std::string_view text);
  // The device id for a presented token, or kUnauthenticated.
  Result<std::string> Identify(std::string_view token) const;
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string device;
    std::array<uint8_t, 32> digest;
  };
  std::vector<Entry> entries_;
};
// Extracts the token from "Authorization: Bearer <token>"; empty if absent/malformed.
std::string_view BearerToken(std::string_view authorization_header);

// ---- TLS --------------------------------------------------------------------------------------
struct TlsServerConfig {
  std::string cert_file, key_file;  // PEM
  std::string client_ca_file;       // non-empty: require client certificates from this CA (mTLS)
  std::string crl_file;             // PEM CRL(s) checked for client certificates
};
// Configures an SSL_CTX for a server: TLS >= 1.2, cert/key, optional mTLS with CRL checking.
Status ConfigureServerContext(SSL_CTX* ctx, const TlsServerConfig& config);
// Identity of a verified client certificate: "cn:<subject CN>"; empty if there is none.
std::string PeerCertificateIdentity(const SSL* ssl);

struct TlsClientConfig {
  std::string ca_file;                // trust anchors for the server (empty: system store)
  std::string cert_file, key_file;    // client certificate for mTLS (optional)
};

// ---- Retry with backoff -----------------------------------------------------------------------
struct BackoffPolicy {
  int max_attempts = 8;                                  // total tries, >= 1
  std::chrono::milliseconds initial{50};
  std::chrono::milliseconds max_delay{2000};
  double multiplier = 2.0;
};
// Delay before retry number `attempt` (1-based): "full jitter" uniformly in [d/2, d] where
// d = min(max_delay, initial * multiplier^(attempt-1)).
std::chrono::milliseconds BackoffDelay(const BackoffPolicy& policy, int attempt);

// ---- Prometheus metrics -----------------------------------------------------------------------
// Counters by label set and one latency histogram; Render() gives the text exposition format.
class Metrics {
 public:
  explicit Metrics(std::string prefix) : prefix_(std::move(prefix)) {}
  void CountRequest(std::string_view route, int status, double seconds, uint64_t bytes_in,
                    uint64_t bytes_out);
  void CountError(std::string_view error_class);  // "client", "server", "auth", "transport"...
  std::string Render() const;

  static constexpr std::array<double, 12> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    2.5};

 private:
  std::string prefix_;
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;
  std::map<std::string, uint64_t> errors_;
  uint64_t bytes_in_ = 0, bytes_out_ = 0;
  std::array<uint64_t, kBuckets.size()> buckets_{};
  uint64_t latency_count_ = 0;
  double latency_sum_ = 0;
};

}  // namespace coffer::net
