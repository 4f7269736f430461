#include "coffer/keyserver/client.h"

#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "coffer/base/random.h"

namespace coffer::keyserver {
namespace {

struct Url {
  bool tls = true;
  std::string host;
  int port = 0;
};

Result<Url> ParseUrl(const std::string& s) {
  Url u;
  std::string rest;
  if (s.rfind("https://", 0) == 0) {
    rest = s.substr(8);
  } else if (s.rfind("http://", 0) == 0) {
    u.tls = false;
    rest = s.substr(7);
  } else {
    return InvalidArgument("key server URL '" + s + "' must start with https:// (or http:// for tang)");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) return InvalidArgument("key server URL '" + s + "' must not have a path");
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || (rest.find(']') != std::string::npos && colon < rest.find(']'))) {
    u.host = rest;
    u.port = u.tls ? 8443 : 80;
  } else {
    u.host = rest.substr(0, colon);
    std::string p = rest.substr(colon + 1);
    if (p.empty() || p.find_first_not_of("0123456789") != std::string::npos || p.size() > 5 || std::stoi(p) > 65535) {
      return InvalidArgument("key server URL '" + s + "' has a bad port");
    }
    u.port = std::stoi(p);
  }
  if (u.host.size() > 2 && u.host.front() == '[' && u.host.back() == ']') u.host = u.host.substr(1, u.host.size() - 2);
  if (u.host.empty()) return InvalidArgument("key server URL '" + s + "' has no host");
  return u;
}

Status RefusalFor(int status, const std::string& url, const std::string& body) {
  std::string why;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()) why = j["error"];
  std::string msg = url + " refused the request (HTTP " + std::to_string(status) + (why.empty() ? "" : ": " + why) + ")";
  if (status == 404) return NotFound(msg);
  if (status == 409) return DataLoss(msg);
  if (status == 400) return InvalidArgument(msg);
  return PermissionDenied(msg);
}

// A TLS alert from the peer that means "your certificate was not accepted", or empty.
std::string PeerCertificateAlert() {
  unsigned long e;
  std::string found;
  while ((e = ERR_get_error()) != 0) {
    if (ERR_GET_LIB(e) != ERR_LIB_SSL) continue;
    switch (ERR_GET_REASON(e)) {
      case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
      case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
      case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
      case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      case SSL_R_TLSV1_ALERT_DECRYPT_ERROR: {
        const char* r = ERR_reason_error_string(e);
        found = r ? r : "certificate alert";
        break;
      }
      default: break;
    }
  }
  return found;
}

}  // namespace

struct KeyServerClient::Conn {
  std::string url;
  Url parsed;
  std::unique_ptr<httplib::ClientImpl> client;
  Status bad;  // a configuration error for this URL (reported if no server works)
};

KeyServerClient::KeyServerClient(ClientOptions options) : o_(std::move(options)) {
  for (const auto& u : o_.urls) {
    auto c = std::make_unique<Conn>();
    c->url = u;
    auto p = ParseUrl(u);
    if (!p.ok()) {
      c->bad = p.status();
    } else {
      c->parsed = *p;
      if (p->tls) {
        auto ssl = o_.cert.empty() ? std::make_unique<httplib::SSLClient>(p->host, p->port)
                                   : std::make_unique<httplib::SSLClient>(p->host, p->port, o_.cert, o_.key);
        if (!o_.ca.empty()) ssl->set_ca_cert_path(o_.ca.c_str());
        ssl->enable_server_certificate_verification(true);
        // TLS 1.2 makes the server's verdict on our certificate part of the handshake, so a refusal is
        // told apart from an unreachable server every time (in TLS 1.3 it arrives after, as a racy alert).
        SSL_CTX_set_max_proto_version(ssl->ssl_context(), TLS1_2_VERSION);
        c->client = std::move(ssl);
      } else {
        c->client = std::make_unique<httplib::ClientImpl>(p->host, p->port);
      }
      auto t = o_.attempt_timeout.count();
      c->client->set_connection_timeout(t / 1000, (t % 1000) * 1000);
      c->client->set_read_timeout(t / 1000, (t % 1000) * 1000);
      c->client->set_write_timeout(t / 1000, (t % 1000) * 1000);
      c->client->set_keep_alive(true);
      c->client->set_tcp_nodelay(true);  // small request writes must not wait for delayed ACKs
    }
    conns_.push_back(std::move(c));
  }
}

KeyServerClient::~KeyServerClient() = default;

Result<HttpReply> KeyServerClient::Request(const std::string& method, const std::string& path, const std::string& body) {
  if (conns_.empty()) return InvalidArgument("no key server URL given");
  auto start = std::chrono::steady_clock::now();
  auto backoff = o_.initial_backoff;
  std::string last_error;
  for (int round = 0;; ++round) {
    for (auto& c : conns_) {
      if (!c->bad.ok()) {
        if (conns_.size() == 1) return c->bad;
        last_error = c->bad.message();
        continue;
      }
      ERR_clear_error();
      httplib::Result r = method == "POST"     ? c->client->Post(path.c_str(), body, "application/json")
                          : method == "DELETE" ? c->client->Delete(path.c_str())
                                               : c->client->Get(path.c_str());
      if (!r) {
        httplib::Error e = r.error();
        if (e == httplib::Error::SSLServerVerification) {
          return PermissionDenied(c->url + ": the server's certificate is not signed by --ca (or names another host)");
        }
        if (e == httplib::Error::SSLLoadingCerts) {
          return InvalidArgument("cannot load the client certificate/key or CA for " + c->url);
        }
        if (e == httplib::Error::SSLConnection && c->parsed.tls) {
          // The TCP connection worked but the handshake was refused: certificate not accepted.
          return PermissionDenied(c->url + " refused the TLS handshake: this device's certificate was not accepted "
                                  "(none, expired, or from another CA)");
        }
        // TLS 1.3 finishes the client's handshake before the server checks the client certificate, so
        // the refusal arrives as an alert on the first read: look for it in OpenSSL's error queue.
        if (c->parsed.tls) {
          std::string alert = PeerCertificateAlert();
          if (!alert.empty()) {
            return PermissionDenied(c->url + " refused this device's certificate (" + alert +
                                    "): none, expired, revoked at the TLS layer, or from another CA");
          }
        }
        last_error = c->url + ": " + httplib::to_string(e);
        continue;
      }
      if (r->status >= 200 && r->status < 300) return HttpReply{r->status, r->body};
      if (r->status == 429 || r->status >= 500) {
        last_error = c->url + ": HTTP " + std::to_string(r->status);
        continue;
      }
      return RefusalFor(r->status, c->url, r->body);
    }
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (elapsed >= o_.deadline) {
      return Unavailable("no key server reachable within " + std::to_string(o_.deadline.count() / 1000.0).substr(0, 5) +
                         " s (last: " + last_error + ")");
    }
    // Full jitter: sleep uniformly in [0, backoff], never past the deadline.
    auto sleep = std::chrono::milliseconds(RandomBelow(uint64_t(backoff.count()) + 1));
    sleep = std::min(sleep, o_.deadline - elapsed);
    if (o_.on_retry) o_.on_retry("key server unreachable (" + last_error + "); retrying in " +
                                 std::to_string(sleep.count()) + " ms");
    std::this_thread::sleep_for(sleep);
    backoff = std::min(o_.max_backoff, backoff * 2);
  }
}

Result<SecretBytes> KeyServerClient::GetSecret(const std::string& name) {
  COFFER_ASSIGN_OR_RETURN(HttpReply r, Request("GET", "/v1/secret/" + name));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  std::fill(r.body.begin(), r.body.end(), '\0');
  if (j.is_discarded() || !j.is_object() || !j.contains("secret") || !j["secret"].is_string()) {
    return Corrupt("key server reply has no secret");
  }
  std::string s = j["secret"];
  SecretBytes out = SecretBytes::CopyOf(AsBytes(s));
  std::fill(s.begin(), s.end(), '\0');
  return out;
}

Result<WitnessRecord> KeyServerClient::ReportWitness(const std::string& volume_hex, uint64_t counter,
                                                     const std::string& root_hex) {
  nlohmann::json body = {{"volume", volume_hex}, {"counter", counter}, {"root", root_hex}};
  COFFER_ASSIGN_OR_RETURN(HttpReply r, Request("POST", "/v1/witness", body.dump()));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("counter") || !j["counter"].is_number_unsigned()) {
    return Corrupt("bad witness reply");
  }
  return WitnessRecord{j["counter"].get<uint64_t>(), j.value("root", "")};
}

Result<WitnessRecord> KeyServerClient::LatestWitness(const std::string& volume_hex) {
  COFFER_ASSIGN_OR_RETURN(HttpReply r, Request("GET", "/v1/witness/" + volume_hex));
  auto j = nlohmann::json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("counter") || !j["counter"].is_number_unsigned()) {
    return Corrupt("bad witness reply");
  }
  return WitnessRecord{j["counter"].get<uint64_t>(), j.value("root", "")};
}

Result<std::string> KeyServerClient::TangAdvertisement() {
  COFFER_ASSIGN_OR_RETURN(HttpReply r, Request("GET", "/adv"));
  return r.body;
}

Result<SecretBytes> KeyServerClient::TangRecover(const tang::TangBinding& binding) {
  return tang::Recover(binding, [this](const std::string& kid, const std::string& body) -> Result<std::string> {
    COFFER_ASSIGN_OR_RETURN(HttpReply r, Request("POST", "/rec/" + kid, body));
    return r.body;
  });
}

}  // namespace coffer::keyserver
