#include "remote/transport.h"

#include <nlohmann/json.hpp>
#include <thread>

#include "coffer/base/file_util.h"

namespace coffer::remote {

Result<std::unique_ptr<HttpTransport>> HttpTransport::Create(const net::Url& url, const RemoteOptions& options) {
  auto t = std::unique_ptr<HttpTransport>(new HttpTransport);
  t->options_ = options;
  std::string scheme = url.scheme == "diskhost" ? "http" : url.scheme;
  if (scheme != "http" && scheme != "https") return InvalidArgument("unsupported URL scheme '" + url.scheme + "'");
  t->origin_ = scheme + "://" + url.HostPort();
  if (scheme == "https" && !options.tls.cert_file.empty()) {
    if (options.tls.key_file.empty()) return InvalidArgument("a client certificate needs its key (key=)");
    t->client_ = std::make_unique<httplib::Client>(t->origin_, options.tls.cert_file, options.tls.key_file);
  } else {
    t->client_ = std::make_unique<httplib::Client>(t->origin_);
  }
  if (!t->client_->is_valid()) return InvalidArgument("could not set up a client for " + t->origin_);
  if (scheme == "https") {
    t->client_->enable_server_certificate_verification(true);
    if (!options.tls.ca_file.empty()) t->client_->set_ca_cert_path(options.tls.ca_file);
  }
  if (!options.token_file.empty()) {
    COFFER_ASSIGN_OR_RETURN(SecretBytes token, ReadSecretFile(options.token_file, 4096));
    std::string_view tv = token.reveal_string();
    while (!tv.empty() && (tv.back() == '\n' || tv.back() == '\r' || tv.back() == ' ')) tv.remove_suffix(1);
    if (tv.empty()) return InvalidArgument("token file " + options.token_file + " is empty");
    t->client_->set_bearer_token_auth(std::string(tv));
  }
  t->client_->set_keep_alive(true);
  t->client_->set_tcp_nodelay(true);
  t->client_->set_connection_timeout(options.connect_timeout.count(), 0);
  t->client_->set_read_timeout(options.io_timeout.count(), 0);
  t->client_->set_write_timeout(options.io_timeout.count(), 0);
  return t;
}

Result<HttpReply> HttpTransport::Send(const std::string& method, const std::string& target, const std::string& body,
                                      const std::string& content_type) {
  std::lock_guard lock(mu_);
  std::string last;
  int attempts = std::max(1, options_.retry.max_attempts);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(net::BackoffDelay(options_.retry, attempt - 1));
    auto send = [&]() -> httplib::Result {
      if (method == "POST") return client_->Post(target, body, content_type);
      if (method == "PUT") return client_->Put(target, body, content_type);
      if (method == "DELETE") return client_->Delete(target);
      return client_->Get(target);
    };
    httplib::Result r = send();
    if (!r) {
      last = httplib::to_string(r.error());
      if (r.error() == httplib::Error::SSLServerVerification || r.error() == httplib::Error::SSLLoadingCerts) {
        return PermissionDenied(origin_ + ": TLS verification failed (" + last + ")");
      }
      continue;  // transport error: retry
    }
    if (r->status == 503) {
      last = "HTTP 503";
      continue;
    }
    return HttpReply{r->status, std::move(r->body), r->get_header_value("Content-Type")};
  }
  return Unavailable(origin_ + ": " + method + " " + target + " failed after " + std::to_string(attempts) +
                     " attempts: " + last);
}

Status StatusFromReply(const HttpReply& reply, const std::string& what) {
  std::string message = reply.body.substr(0, 300);
  auto j = nlohmann::json::parse(reply.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) message = j["error"].get<std::string>();
  std::string text = what + ": host answered " + std::to_string(reply.status) + (message.empty() ? "" : ": " + message);
  switch (reply.status) {
    case 400: case 413: return InvalidArgument(text);
    case 401: case 403: return PermissionDenied(text);
    case 404: return NotFound(text);
    case 409: return FailedPrecondition(text);
    case 507: return NoSpace(text);
    default: return IoError(text);
  }
}

}  // namespace coffer::remote
