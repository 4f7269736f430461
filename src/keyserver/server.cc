#include "coffer/keyserver/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <openssl/ssl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "coffer/base/file_util.h"
#include "coffer/keyserver/tang.h"
#include "coffer/keyserver/witness.h"
#include "coffer/net/net.h"
#include "coffer/pki/pki.h"
#include "pki/openssl_util.h"

namespace coffer::keyserver {
namespace {

using Clock = std::chrono::steady_clock;

std::string NowIso() {
  char buf[32];
  time_t t = time(nullptr);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool ValidSecretName(const std::string& n) { return pki::ValidateDeviceId(n).ok(); }

// Append-only JSON-lines audit log; one write() per line so lines never interleave.
class AuditLog {
 public:
  explicit AuditLog(const std::string& path) { fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600); }
  ~AuditLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  void Write(const std::string& listener, const std::string& peer, const std::string& device,
             const std::string& method, const std::string& path, bool allowed, int status, const std::string& reason) {
    nlohmann::json j = {{"time", NowIso()}, {"listener", listener}, {"peer", peer}, {"device", device},
                        {"method", method}, {"path", path}, {"decision", allowed ? "allowed" : "denied"},
                        {"status", status}};
    if (!reason.empty()) j["reason"] = reason;
    std::string line = j.dump() + "\n";
    if (fd_ >= 0) (void)!::write(fd_, line.data(), line.size());
  }

 private:
  int fd_ = -1;
};

class RateLimiter {
 public:
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}
  bool Allow(const std::string& who) {
    std::lock_guard<std::mutex> l(mu_);
    auto now = Clock::now();
    auto& b = buckets_[who];
    if (b.last.time_since_epoch().count() == 0) b = {burst_, now};
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.last = now;
    if (buckets_.size() > 100000) buckets_.clear();  // bounded memory under address churn
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last{};
  };
  double rate_, burst_;
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

long long Mtime(const std::string& p) {
  struct stat st;
  if (::stat(p.c_str(), &st) != 0) return -1;
  return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec + st.st_size;
}

void JsonReply(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
}

class Impl : public KeyServer {
 public:
  explicit Impl(ServerOptions o) : o_(std::move(o)), limiter_(o_.rate_per_second, o_.burst) {}

  Status Init() {
    if (o_.data_dir.empty()) return InvalidArgument("--data is required");
    if (::mkdir(o_.data_dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + o_.data_dir, errno);
    ::mkdir((o_.data_dir + "/devices").c_str(), 0700);
    COFFER_ASSIGN_OR_RETURN(allow_, net::CidrAllowlist::Parse(o_.allow));
    if (o_.tls_cert.empty() || o_.tls_key.empty() || o_.client_ca.empty()) {
      return InvalidArgument("--tls-cert, --tls-key and --client-ca are required (mutual TLS)");
    }
    COFFER_ASSIGN_OR_RETURN(auto tang, tang::TangKeyStore::Open(o_.data_dir + "/tang"));
    tang_ = std::move(tang);
    witness_ = std::make_unique<WitnessStore>(o_.data_dir + "/witness");
    audit_ = std::make_unique<AuditLog>(o_.data_dir + "/audit.log");
    if (!audit_->ok()) return ErrnoStatus("open " + o_.data_dir + "/audit.log", errno);
    if (!o_.crl.empty()) COFFER_RETURN_IF_ERROR(ReloadCrl());
    // Validate the TLS material now so errors are clear rather than a silent failed bind.
    COFFER_RETURN_IF_ERROR(pki::LoadCertPem(o_.tls_cert).status());
    COFFER_RETURN_IF_ERROR(pki::LoadKeyPem(o_.tls_key).status());
    COFFER_RETURN_IF_ERROR(pki::LoadCertPem(o_.client_ca).status());
    return Status::Ok();
  }

  Status Start() override {
    // Revocation is checked per request against the reloadable CRL (IsRevoked), not in the context.
    net::TlsServerConfig tls{.cert_file = o_.tls_cert, .key_file = o_.tls_key, .client_ca_file = o_.client_ca};
    Status tls_status;
    tls_ = std::make_unique<httplib::SSLServer>([&tls, &tls_status](SSL_CTX& ctx) {
      tls_status = net::ConfigureServerContext(&ctx, tls);
      if (!tls_status.ok()) return false;
      SSL_CTX_set_verify_depth(&ctx, 2);
      static const unsigned char kSid[] = "coffer-keys";
      SSL_CTX_set_session_id_context(&ctx, kSid, sizeof kSid - 1);
      return true;
    });
    if (!tls_status.ok()) return tls_status;
    if (!tls_->is_valid()) return InvalidArgument("cannot load the TLS certificate, key or client CA");
    tls_->set_keep_alive_max_count(1000);
    // httplib writes a response's headers and body separately: without TCP_NODELAY, Nagle holds the
    // body until the client's delayed ACK (40 ms on Linux), capping a connection at ~22 requests/s.
    tls_->set_tcp_nodelay(true);
    tls_->set_payload_max_length(64 * 1024);
    tls_->set_read_timeout(10, 0);
    Route(*tls_, true);
    int port = o_.port == 0 ? tls_->bind_to_any_port(o_.host) : (tls_->bind_to_port(o_.host, o_.port) ? o_.port : -1);
    if (port < 0) return Unavailable("cannot listen on " + o_.host + ":" + std::to_string(o_.port));
    port_ = port;
    threads_.emplace_back([this] { tls_->listen_after_bind(); });
    if (!o_.tang_host.empty() && o_.tang_port >= 0) {
      plain_ = std::make_unique<httplib::Server>();
      plain_->set_payload_max_length(16 * 1024);
      plain_->set_tcp_nodelay(true);
      plain_->set_read_timeout(10, 0);
      Route(*plain_, false);
      int tp = o_.tang_port == 0 ? plain_->bind_to_any_port(o_.tang_host)
                                 : (plain_->bind_to_port(o_.tang_host, o_.tang_port) ? o_.tang_port : -1);
      if (tp < 0) {
        Stop();
        return Unavailable("cannot listen on " + o_.tang_host + ":" + std::to_string(o_.tang_port));
      }
      tang_port_ = tp;
      threads_.emplace_back([this] { plain_->listen_after_bind(); });
    }
    for (int i = 0; i < 200 && !(tls_->is_running() && (!plain_ || plain_->is_running())); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return Status::Ok();
  }

  void Stop() override {
    if (tls_) tls_->stop();
    if (plain_) plain_->stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
    std::lock_guard<std::mutex> l(stop_mu_);
    stopped_ = true;
    stop_cv_.notify_all();
  }
  void Wait() override {
    std::unique_lock<std::mutex> l(stop_mu_);
    stop_cv_.wait(l, [this] { return stopped_; });
  }
  int port() const override { return port_; }
  int tang_port() const override { return tang_port_; }
  ~Impl() override { Stop(); }

 private:
  struct Caller {
    std::string device;  // empty on the plain listener
    std::string serial;
  };

  Status ReloadCrl() {
    std::lock_guard<std::mutex> l(crl_mu_);
    long long m = Mtime(o_.crl);
    if (m == crl_mtime_) return Status::Ok();
    auto crl = pki::LoadCrl(o_.crl, o_.client_ca);
    if (!crl.ok()) return crl.status();
    revoked_ = std::move(*crl);
    crl_mtime_ = m;
    return Status::Ok();
  }

  bool IsRevoked(const std::string& serial) {
    if (o_.crl.empty()) return false;
    Status s = ReloadCrl();
    std::lock_guard<std::mutex> l(crl_mu_);
    if (!s.ok()) return true;  // an unreadable or forged CRL fails closed
    return revoked_.Contains(serial);
  }

  // Admission: allowlist, identity (mTLS listener), revocation, rate limit. Writes the refusal itself.
  bool Admit(const httplib::Request& req, httplib::Response& res, bool tls, Caller& caller) {
    std::string listener = tls ? "mtls" : "tang";
    if (!allow_.Allows(req.remote_addr)) {
      audit_->Write(listener, req.remote_addr, "", req.method, req.path, false, 403, "address not allowed");
      JsonReply(res, 403, {{"error", "address not allowed"}});
      return false;
    }
    if (tls) {
      X509* cert = req.ssl ? SSL_get1_peer_certificate(const_cast<SSL*>(req.ssl)) : nullptr;
      if (!cert) {
        audit_->Write(listener, req.remote_addr, "", req.method, req.path, false, 401, "no client certificate");
        JsonReply(res, 401, {{"error", "client certificate required"}});
        return false;
      }
      caller.device = pki::CommonName(cert);
      caller.serial = pki::SerialHex(cert);
      X509_free(cert);
      if (!pki::ValidateDeviceId(caller.device).ok()) {
        audit_->Write(listener, req.remote_addr, "", req.method, req.path, false, 403, "certificate CN is not a device id");
        JsonReply(res, 403, {{"error", "certificate does not name a device"}});
        return false;
      }
      if (IsRevoked(caller.serial)) {
        audit_->Write(listener, req.remote_addr, caller.device, req.method, req.path, false, 403,
                      "certificate revoked (serial " + caller.serial + ")");
        JsonReply(res, 403, {{"error", "certificate revoked"}});
        return false;
      }
    }
    std::string who = caller.device.empty() ? "addr:" + req.remote_addr : "dev:" + caller.device;
    if (!limiter_.Allow(who)) {
      audit_->Write(listener, req.remote_addr, caller.device, req.method, req.path, false, 429, "rate limited");
      res.set_header("Retry-After", "1");
      JsonReply(res, 429, {{"error", "too many requests"}});
      return false;
    }
    return true;
  }

  void Done(const httplib::Request& req, const httplib::Response& res, bool tls, const Caller& c,
            const std::string& reason = {}) {
    audit_->Write(tls ? "mtls" : "tang", req.remote_addr, c.device, req.method, req.path, res.status < 400,
                  res.status, reason);
  }

  void ReplyStatus(httplib::Response& res, const Status& s) {
    int code = 500;
    switch (s.code()) {
      case StatusCode::kNotFound: code = 404; break;
      case StatusCode::kInvalidArgument: code = 400; break;
      case StatusCode::kPermissionDenied: code = 403; break;
      case StatusCode::kDataLoss: code = 409; break;
      default: code = 500;
    }
    JsonReply(res, code, {{"error", code == 500 ? std::string("internal error") : s.message()}});
  }

  Result<std::string> ReadSecret(const std::string& device, const std::string& name) {
    if (!ValidSecretName(name)) return InvalidArgument("bad secret name");
    auto s = ReadSecretFile(o_.data_dir + "/devices/" + device + "/" + name + ".secret", 64 * 1024);
    if (!s.ok()) {
      if (s.status().code() == StatusCode::kNotFound) return NotFound("no secret '" + name + "' for this device");
      return s.status();
    }
    return std::string(s->reveal_string());
  }

  template <typename F>
  httplib::Server::Handler Wrap(bool tls, F f) {
    return [this, tls, f](const httplib::Request& req, httplib::Response& res) {
      Caller c;
      if (!Admit(req, res, tls, c)) return;
      std::string reason = f(req, res, c);
      Done(req, res, tls, c, reason);
    };
  }

  void Route(httplib::Server& s, bool tls) {
    if (tls) {
      s.Get("/healthz", Wrap(tls, [](const httplib::Request&, httplib::Response& res, Caller&) {
        res.set_content("ok\n", "text/plain");
        return std::string();
      }));
      auto secret = [this](const std::string& device, const std::string& name, httplib::Response& res,
                           const Caller& c, bool compat) -> std::string {
        if (device != c.device) {
          JsonReply(res, 403, {{"error", "a device may read only its own secrets"}});
          return "device " + c.device + " asked for " + device + "'s secret";
        }
        auto s = ReadSecret(device, name);
        if (!s.ok()) {
          ReplyStatus(res, s.status());
          return s.status().message();
        }
        if (compat) {
          JsonReply(res, 201, {{"password", *s}});
        } else {
          JsonReply(res, 200, {{"secret", *s}});
        }
        std::fill(s->begin(), s->end(), '\0');
        return "escrow secret " + name;
      };
      s.Get(R"(/v1/secret/([A-Za-z0-9._-]{1,64}))",
            Wrap(tls, [secret](const httplib::Request& req, httplib::Response& res, Caller& c) {
              return secret(c.device, req.matches[1], res, c, false);
            }));
      s.Get(R"(/v1/devices/([A-Za-z0-9._-]{1,64})/secret/([A-Za-z0-9._-]{1,64}))",
            Wrap(tls, [secret](const httplib::Request& req, httplib::Response& res, Caller& c) {
              return secret(req.matches[1], req.matches[2], res, c, false);
            }));
      if (o_.compat_key_endpoint) {
        s.Get("/key", Wrap(tls, [secret](const httplib::Request&, httplib::Response& res, Caller& c) {
          return secret(c.device, "default", res, c, true);
        }));
      }
      s.Post("/v1/witness", Wrap(tls, [this](const httplib::Request& req, httplib::Response& res, Caller& c) {
        auto j = nlohmann::json::parse(req.body, nullptr, false);
        if (j.is_discarded() || !j.is_object() || !j.contains("volume") || !j["volume"].is_string() ||
            !j.contains("counter") || !j["counter"].is_number_unsigned() || !j.contains("root") ||
            !j["root"].is_string()) {
          JsonReply(res, 400, {{"error", "expected {\"volume\": hex, \"counter\": n, \"root\": hex}"}});
          return std::string("malformed witness report");
        }
        std::string vol = j["volume"], root = j["root"];
        Status v = ValidateHexId("volume id", vol);
        if (!v.ok()) {
          ReplyStatus(res, v);
          return v.message();
        }
        auto r = witness_->Report(c.device, vol, j["counter"].get<uint64_t>(), root);
        if (!r.ok()) {
          ReplyStatus(res, r.status());
          return r.status().message();
        }
        JsonReply(res, 200, {{"volume", vol}, {"counter", r->counter}, {"root", r->root_hex}});
        return "witness " + vol + " counter " + std::to_string(r->counter);
      }));
      s.Get(R"(/v1/witness/([0-9a-f]{1,128}))",
            Wrap(tls, [this](const httplib::Request& req, httplib::Response& res, Caller& c) {
              auto r = witness_->Latest(c.device, req.matches[1]);
              if (!r.ok()) {
                ReplyStatus(res, r.status());
                return r.status().message();
              }
              JsonReply(res, 200, {{"volume", req.matches[1]}, {"counter", r->counter}, {"root", r->root_hex}});
              return std::string();
            }));
      s.Delete(R"(/v1/witness/([0-9a-f]{1,128}))",
               Wrap(tls, [this](const httplib::Request& req, httplib::Response& res, Caller& c) {
                 Status st = witness_->Forget(c.device, req.matches[1]);
                 if (!st.ok()) {
                   ReplyStatus(res, st);
                   return st.message();
                 }
                 JsonReply(res, 200, {{"forgotten", std::string(req.matches[1])}});
                 return "witness forget " + std::string(req.matches[1]);
               }));
    }
    auto adv = [this](const httplib::Request& req, httplib::Response& res, Caller&) {
      std::string thp = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
      auto a = tang_->Advertisement(thp);
      if (!a.ok()) {
        ReplyStatus(res, a.status());
        return a.status().message();
      }
      res.status = 200;
      res.set_content(*a, "application/jose+json");
      return std::string();
    };
    s.Get(R"(/+adv/*)", Wrap(tls, adv));
    s.Get(R"(/+adv/+([0-9A-Za-z_-]+))", Wrap(tls, adv));
    s.Post(R"(/+rec/+([0-9A-Za-z_-]+))", Wrap(tls, [this](const httplib::Request& req, httplib::Response& res, Caller&) {
      auto r = tang_->Recover(req.matches[1], req.body);
      if (!r.ok()) {
        ReplyStatus(res, r.status());
        return r.status().message();
      }
      res.status = 200;
      res.set_content(*r, "application/jwk+json");
      return "tang recovery kid " + std::string(req.matches[1]);
    }));
    s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) JsonReply(res, res.status, {{"error", "not found or not allowed"}});
    });
  }

  ServerOptions o_;
  RateLimiter limiter_;
  net::CidrAllowlist allow_;
  std::unique_ptr<tang::TangKeyStore> tang_;
  std::unique_ptr<WitnessStore> witness_;
  std::unique_ptr<AuditLog> audit_;
  std::mutex crl_mu_;
  pki::RevocationList revoked_;
  long long crl_mtime_ = -2;
  std::unique_ptr<httplib::SSLServer> tls_;
  std::unique_ptr<httplib::Server> plain_;
  std::vector<std::thread> threads_;
  int port_ = -1, tang_port_ = -1;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopped_ = false;
};

}  // namespace

Result<std::unique_ptr<KeyServer>> KeyServer::Create(const ServerOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  COFFER_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<KeyServer>(std::move(impl));
}

Status EnrollDevice(const std::string& data_dir, const std::string& device, const std::string& name,
                    const std::string& secret_text, bool replace) {
  COFFER_RETURN_IF_ERROR(pki::ValidateDeviceId(device));
  if (!ValidSecretName(name)) return InvalidArgument("secret name may only use A-Z a-z 0-9 . _ -");
  if (secret_text.empty()) return InvalidArgument("secret is empty");
  for (const std::string& d : {data_dir, data_dir + "/devices", data_dir + "/devices/" + device}) {
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + d, errno);
  }
  Status s = WriteFileAtomic(data_dir + "/devices/" + device + "/" + name + ".secret", AsBytes(secret_text),
                             {0600, replace});
  if (s.code() == StatusCode::kAlreadyExists) {
    return AlreadyExists("device " + device + " already has a secret '" + name + "' (use --replace)");
  }
  return s;
}

Status RotateTangKeys(const std::string& data_dir) {
  COFFER_ASSIGN_OR_RETURN(auto store, tang::TangKeyStore::Open(data_dir + "/tang"));
  return store->Rotate();
}

}  // namespace coffer::keyserver
