#include "coffer/blockhost/server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "coffer/blockhost/protocol.h"
#include "coffer/blockhost/volume_store.h"

namespace coffer::blockhost {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// The original host's error bodies are Python-style JSON: {"error": "<message>"}.
std::string ErrorBody(std::string_view message) {
  return "{\"error\": " + json(std::string(message)).dump() + "}";
}

void SetError(httplib::Response& res, int status, std::string_view message) {
  res.status = status;
  res.set_content(ErrorBody(message), "application/json");
}

int HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kUnsupported:
      return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kNoSpace: return 507;
    case StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

void SetStatusError(httplib::Response& res, const Status& s) { SetError(res, HttpStatusFor(s), s.message()); }

std::string Printable(std::string_view s, size_t max = 200) {
  std::string o;
  for (char c : s.substr(0, max)) o += (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
  return o;
}

struct Route {
  std::regex pattern;
  std::string allowed;  // "GET, PUT, DELETE"
};

}  // namespace

struct BlockHostServer::Impl {
  ServerOptions opt;
  std::unique_ptr<VolumeStore> store;
  std::unique_ptr<httplib::Server> http;
  // httplib's stop() does nothing until listen has started, and the socket is already listening
  // after Start(); so Stop() waits (bounded) for Run() to be listening, else a Stop right after
  // Start would be lost and Run would serve forever.
  bool bound = false;
  std::atomic<bool> run_returned{false};
  net::CidrAllowlist allow;
  std::optional<net::TokenTable> tokens;
  net::Metrics metrics{"coffer_blockhost"};
  std::mutex log_mu;
  std::vector<Route> routes;
  int port = 0;
  bool ready = false;

  using Fn = std::function<void(const httplib::Request&, httplib::Response&, const std::string& identity)>;

  // Every request goes through here: allowlist, authentication, errors, metrics, access log.
  void Handle(const httplib::Request& req, httplib::Response& res, std::string_view route, bool authenticate,
              const Fn& fn) {
    auto t0 = Clock::now();
    std::string identity;
    std::string error_class;
    if (!allow.Allows(req.remote_addr)) {
      SetError(res, 403, "address " + req.remote_addr + " is not in the allowlist");
      error_class = "forbidden";
    } else if (authenticate && tokens) {
      std::string authorization = req.get_header_value("Authorization");
      std::string_view token = net::BearerToken(authorization);
      auto who = token.empty() ? Result<std::string>(Unauthenticated("missing bearer token")) : tokens->Identify(token);
      if (!who.ok()) {
        SetError(res, 401, who.status().message());
        res.set_header("WWW-Authenticate", "Bearer");
        error_class = "auth";
      } else {
        identity = "token:" + *who;
      }
    } else if (authenticate && opt.tls && !opt.tls->client_ca_file.empty()) {
      identity = net::PeerCertificateIdentity(req.ssl);
      if (identity.empty()) {
        SetError(res, 401, "no verified client certificate");
        error_class = "auth";
      }
    }
    if (error_class.empty()) {
      try {
        fn(req, res, identity);
      } catch (const std::exception& e) {
        SetError(res, 500, std::string("internal error: ") + e.what());
      }
      if (res.status == -1) res.status = 200;
      if (res.status >= 500) error_class = "server";
      else if (res.status >= 400) error_class = "client";
    }
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!error_class.empty()) metrics.CountError(error_class);
    metrics.CountRequest(route, res.status, secs, req.body.size(), res.body.size());
    Log(req, res, identity, secs);
  }

  void Log(const httplib::Request& req, const httplib::Response& res, const std::string& identity, double secs) {
    if (!opt.access_log) return;
    // Method, path and numeric parameters only: never bodies or record bytes.
    std::string query;
    for (const auto& [k, v] : req.params) query += (query.empty() ? "?" : "&") + Printable(k, 32) + "=" + Printable(v, 32);
    char when[32];
    std::time_t now = std::time(nullptr);
    std::tm tm;
    gmtime_r(&now, &tm);
    std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char tail[96];
    std::snprintf(tail, sizeof(tail), " %d in=%zu out=%zu %.3fms", res.status, req.body.size(), res.body.size(),
                  secs * 1000);
    std::lock_guard lock(log_mu);
    *opt.access_log << when << " " << req.remote_addr << " " << (identity.empty() ? "-" : Printable(identity, 80))
                    << " " << Printable(req.method, 10) << " " << Printable(req.path) << query << tail << "\n";
    opt.access_log->flush();
  }

  // The volume named in the path, if `identity` owns it. Others' volumes look absent (no existence leak).
  Result<VolumeInfo> Owned(const std::string& name, const std::string& identity) {
    auto info = store->Info(name);
    if (!info.ok()) return info.status();
    if (info->owner != identity) return NotFound("no volume '" + name + "'");
    return info;
  }

  static json InfoJson(const VolumeInfo& i) {
    return {{"format_version", kProtocolVersion}, {"name", i.name},     {"record_size", i.record_size},
            {"record_count", i.record_count},     {"generation", i.generation}};
  }

  void V1Create(const httplib::Request& req, httplib::Response& res, const std::string& identity) {
    std::string name = req.matches[1];
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object()) return SetError(res, 400, "body must be a JSON object");
    auto field = [&](const char* key, uint64_t& out) {
      auto it = body.find(key);
      if (it == body.end() || !it->is_number_unsigned()) return false;
      out = it->get<uint64_t>();
      return true;
    };
    uint64_t rs = 0, rc = 0;
    if (!field("record_size", rs) || !field("record_count", rc)) {
      return SetError(res, 400, "body needs unsigned integers record_size and record_count");
    }
    if (rs > kMaxRecordSize) return SetError(res, 400, "record_size above " + std::to_string(kMaxRecordSize));
    auto info = store->Create(name, uint32_t(rs), rc, identity);
    if (!info.ok()) {
      // Do not tell a device whether another device's volume of that name exists.
      if (info.status().code() == StatusCode::kAlreadyExists) {
        auto mine = Owned(name, identity);
        if (!mine.ok()) return SetError(res, 403, "volume name '" + name + "' is taken");
      }
      return SetStatusError(res, info.status());
    }
    res.status = 201;
    res.set_content(InfoJson(*info).dump(), "application/json");
  }

  void V1Info(const httplib::Request& req, httplib::Response& res, const std::string& identity) {
    auto info = Owned(req.matches[1], identity);
    if (!info.ok()) return SetStatusError(res, info.status());
    res.set_content(InfoJson(*info).dump(), "application/json");
  }

  void V1Delete(const httplib::Request& req, httplib::Response& res, const std::string& identity) {
    std::string name = req.matches[1];
    auto info = Owned(name, identity);
    if (!info.ok()) return SetStatusError(res, info.status());
    Status s = store->Delete(name);
    if (!s.ok()) return SetStatusError(res, s);
    res.status = 204;
  }

  void V1Open(const httplib::Request& req, httplib::Response& res, const std::string& identity) {
    std::string name = req.matches[1];
    auto info = Owned(name, identity);
    if (!info.ok()) return SetStatusError(res, info.status());
    auto gen = store->OpenForWrite(name);
    if (!gen.ok()) return SetStatusError(res, gen.status());
    info->generation = *gen;
    res.set_content(InfoJson(*info).dump(), "application/json");
  }

  void V1Read(const httplib::Request& req, httplib::Response& res, const std::string& identity) {
    std::string name = req.matches[1];
    auto info = Owned(name, identity);
    if (!info.ok()) return SetStatusError(res, info.status());
    uint64_t first = 0, count = 0;
    if (!ParseDecimal(req.get_param_value("first"), first) || !ParseDecimal(req.get_param_value("count"), count)) {
      return SetError(res, 400, "need decimal query parameters first and count");
    }
    if (count == 0) return SetError(res, 400, "count must be at least 1");
    if (count > opt.max_range_bytes / info->record_size) {
      return SetError(res, 400, "range of " + std::to_string(count) + " records exceeds the host limit of " +
                                    std::to_string(opt.max_range_bytes / info->record_size) + " per request");
    }
    std::string out(count * info->record_size, '\0');
    Status s = store->Read(name, first, count,
                           std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
    if (!s.ok()) return SetStatusError(res, s);
    res.set_content(std::move(out), "application/octet-stream");
  }

  void V1Batch(const httplib::Request& req, httplib::Response& res, const std::string& identity) {
    std::string name = req.matches[1];
    auto info = Owned(name, identity);
    if (!info.ok()) return SetStatusError(res, info.status());
    auto batch = ParseBatch(AsBytes(req.body));
    if (!batch.ok()) return SetStatusError(res, batch.status());
    auto r = store->ApplyBatch(name, *batch, true);
    if (!r.ok()) return SetStatusError(res, r.status());
    res.set_content(json{{"applied", r->records}, {"duplicate", r->duplicate}}.dump(), "application/json");
  }

  // ---- The original disk host protocol (DESIGN 1.1), with its input bugs fixed. ----
  bool CompatBlock(const httplib::Request& req, httplib::Response& res, const char* op, uint64_t& block) {
    std::string arg = req.get_param_value("block");
    if (arg.empty()) {
      SetError(res, 400, std::string("Missing block arg in block ") + op);
      return false;
    }
    return true;
  }
  bool CompatIndex(const httplib::Request& req, httplib::Response& res, const char* op, uint64_t& block) {
    std::string arg = req.get_param_value("block");
    if (!ParseDecimal(arg, block)) {
      SetError(res, 400, "Invalid block arg '" + Printable(arg, 32) + "' in block " + op + " (want 0.." +
                             std::to_string(kCompatRecordCount - 1) + ")");
      return false;
    }
    if (block >= kCompatRecordCount) {
      SetError(res, 400, "Block " + std::to_string(block) + " out of range in block " + op + " (want 0.." +
                             std::to_string(kCompatRecordCount - 1) + ")");
      return false;
    }
    return true;
  }

  void CompatRead(const httplib::Request& req, httplib::Response& res, const std::string&) {
    uint64_t block = 0;
    if (!CompatBlock(req, res, "read", block) || !CompatIndex(req, res, "read", block)) return;
    std::string out(kCompatRecordSize, '\0');
    Status s = store->Read(opt.compat_volume, block, 1,
                           std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
    if (!s.ok()) return SetStatusError(res, s);
    res.set_content(std::move(out), "application/octet-stream");
  }

  void CompatWrite(const httplib::Request& req, httplib::Response& res, const std::string&) {
    uint64_t block = 0;
    if (!CompatBlock(req, res, "write", block)) return;
    if (req.body.size() != kCompatRecordSize) {
      return SetError(res, 400, "Incorrect data size " + std::to_string(req.body.size()) + " bytes for block write");
    }
    if (!CompatIndex(req, res, "write", block)) return;
    BatchView b;
    b.record_size = kCompatRecordSize;
    b.writes.push_back({block, AsBytes(req.body)});
    auto r = store->ApplyBatch(opt.compat_volume, b, false);
    if (!r.ok()) return SetStatusError(res, r.status());
    res.set_content("OK", "text/html; charset=utf-8");  // what the original (Flask) answers
  }

  void AddRoutes() {
    using H = httplib::Server::Handler;
    auto wrap = [this](const char* route, bool auth, void (Impl::*m)(const httplib::Request&, httplib::Response&,
                                                                      const std::string&)) -> H {
      return [this, route, auth, m](const httplib::Request& req, httplib::Response& res) {
        Handle(req, res, route, auth, [this, m](const auto& q, auto& r, const std::string& id) { (this->*m)(q, r, id); });
      };
    };
    const std::string vol = "/v1/volumes/([A-Za-z0-9._-]{1,64})";
    http->Get("/healthz", [this](const httplib::Request& req, httplib::Response& res) {
      Handle(req, res, "healthz", false, [](const auto&, auto& r, const std::string&) {
        r.set_content("{\"status\": \"ok\"}", "application/json");
      });
    });
    http->Get("/metrics", [this](const httplib::Request& req, httplib::Response& res) {
      Handle(req, res, "metrics", true, [this](const auto&, auto& r, const std::string&) {
        r.set_content(metrics.Render(), "text/plain; version=0.0.4");
      });
    });
    routes.push_back({std::regex("/healthz|/metrics"), "GET"});
    if (!opt.compat_volume.empty()) {
      http->Get("/ReadBlock", wrap("compat_read", true, &Impl::CompatRead));
      http->Post("/WriteBlock", wrap("compat_write", true, &Impl::CompatWrite));
      routes.push_back({std::regex("/ReadBlock"), "GET"});
      routes.push_back({std::regex("/WriteBlock"), "POST"});
    }
    http->Put(vol, wrap("create", true, &Impl::V1Create));
    http->Get(vol, wrap("info", true, &Impl::V1Info));
    http->Delete(vol, wrap("delete", true, &Impl::V1Delete));
    http->Post(vol + "/open", wrap("open", true, &Impl::V1Open));
    http->Get(vol + "/records", wrap("read", true, &Impl::V1Read));
    http->Post(vol + "/batch", wrap("batch", true, &Impl::V1Batch));
    routes.push_back({std::regex(vol), "GET, PUT, DELETE"});
    routes.push_back({std::regex(vol + "/open"), "POST"});
    routes.push_back({std::regex(vol + "/records"), "GET"});
    routes.push_back({std::regex(vol + "/batch"), "POST"});
    // Anything else: 405 with Allow for a known path, else 404 — always a JSON body.
    auto fallback = [this](const httplib::Request& req, httplib::Response& res) {
      Handle(req, res, "other", false, [this](const httplib::Request& q, httplib::Response& r, const std::string&) {
        for (const Route& route : routes) {
          if (std::regex_match(q.path, route.pattern)) {
            r.set_header("Allow", route.allowed);
            return SetError(r, 405, "method " + Printable(q.method, 10) + " not allowed for " + Printable(q.path) +
                                        " (allowed: " + route.allowed + ")");
          }
        }
        SetError(r, 404, "no such endpoint " + Printable(q.path));
      });
    };
    http->Get(".*", fallback);
    http->Post(".*", fallback);
    http->Put(".*", fallback);
    http->Delete(".*", fallback);
    http->Patch(".*", fallback);
    http->Options(".*", fallback);
    http->set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
      SetError(res, res.status, res.status == 413 ? "request body too large" : "bad request");
      return httplib::Server::HandlerResponse::Handled;
    }));
  }
};

Result<std::unique_ptr<BlockHostServer>> BlockHostServer::Create(ServerOptions opt) {
  auto impl = std::make_unique<Impl>();
  if (opt.data_dir.empty()) return InvalidArgument("--data DIR is required");
  if (!opt.tls) {
    if (!opt.insecure_plaintext) {
      return InvalidArgument("no TLS certificate given: pass --tls-cert and --tls-key, or --insecure-plaintext on a "
                             "loopback address for local testing");
    }
    if (!net::IsLoopbackHost(opt.listen_host)) {
      return InvalidArgument("--insecure-plaintext is allowed only on a loopback listen address, not " +
                             opt.listen_host);
    }
  } else if (opt.insecure_plaintext) {
    return InvalidArgument("--insecure-plaintext conflicts with --tls-cert/--tls-key");
  }
  if (opt.max_connections < 1 || opt.max_connections > 4096) {
    return InvalidArgument("--max-connections must be 1..4096");
  }
  COFFER_ASSIGN_OR_RETURN(impl->allow, net::CidrAllowlist::Parse(opt.allow));
  if (!opt.token_file.empty()) {
    COFFER_ASSIGN_OR_RETURN(auto t, net::TokenTable::Load(opt.token_file));
    impl->tokens = std::move(t);
  }
  VolumeStore::Limits limits;
  limits.max_volume_bytes = opt.max_volume_bytes;
  COFFER_ASSIGN_OR_RETURN(impl->store, VolumeStore::Open(opt.data_dir, limits));
  if (!opt.compat_volume.empty()) {
    if (!IsValidVolumeName(opt.compat_volume)) {
      return InvalidArgument("--compat-disk-host '" + opt.compat_volume + "' is not a valid volume name");
    }
    auto info = impl->store->Ensure(opt.compat_volume, kCompatRecordSize, kCompatRecordCount, "");
    if (!info.ok()) return info.status().WithContext("--compat-disk-host");
  }
  if (opt.tls) {
    Status tls_status;
    auto config = *opt.tls;
    auto ssl = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      tls_status = net::ConfigureServerContext(&ctx, config);
      return tls_status.ok();
    });
    if (!tls_status.ok()) return tls_status;
    if (!ssl->is_valid()) return InvalidArgument("could not set up TLS");
    impl->http = std::move(ssl);
  } else {
    impl->http = std::make_unique<httplib::Server>();
  }
  int threads = opt.max_connections;
  impl->http->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  impl->http->set_tcp_nodelay(true);
  impl->http->set_keep_alive_max_count(1u << 30);
  impl->http->set_keep_alive_timeout(opt.keep_alive_seconds);
  impl->http->set_read_timeout(opt.read_timeout_seconds, 0);
  impl->http->set_write_timeout(opt.read_timeout_seconds, 0);
  impl->http->set_payload_max_length(opt.max_body_bytes);
  impl->opt = std::move(opt);
  impl->AddRoutes();
  return std::unique_ptr<BlockHostServer>(new BlockHostServer(std::move(impl)));
}

BlockHostServer::BlockHostServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BlockHostServer::~BlockHostServer() { Stop(); }

Status BlockHostServer::Start() {
  const auto& o = impl_->opt;
  if (o.listen_port == 0) {
    impl_->port = impl_->http->bind_to_any_port(o.listen_host);
    if (impl_->port <= 0) return IoError("could not bind " + o.listen_host);
  } else {
    if (!impl_->http->bind_to_port(o.listen_host, o.listen_port)) {
      return IoError("could not listen on " + o.listen_host + ":" + std::to_string(o.listen_port) +
                     " (address in use or not local)");
    }
    impl_->port = o.listen_port;
  }
  impl_->bound = true;
  return Status::Ok();
}

Status BlockHostServer::Run() {
  bool ok = impl_->http->listen_after_bind();
  impl_->run_returned = true;
  if (!ok) return IoError("listener failed");
  return Status::Ok();
}

void BlockHostServer::Stop() {
  if (!impl_ || !impl_->http) return;
  if (impl_->bound) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!impl_->http->is_running() && !impl_->run_returned && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  impl_->http->stop();
}

int BlockHostServer::port() const { return impl_->port; }

}  // namespace coffer::blockhost
