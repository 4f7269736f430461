// HttpTransport: one keep-alive HTTP(S) connection to a host with the client policy shared by the
// remote stores: TLS trust and client certificate, bearer token, timeouts, and retries with
// exponential backoff + jitter on transport errors and 503 (never on other statuses). Internal to
// src/remote. Serialised by an internal mutex.
#pragma once

#include <httplib.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "coffer/remote/remote_store.h"

namespace coffer::remote {

struct HttpReply {
  int status = 0;
  std::string body;
  std::string content_type;
};

class HttpTransport {
 public:
  static Result<std::unique_ptr<HttpTransport>> Create(const net::Url& url, const RemoteOptions& options);
  // Sends with retries; a reply with any status other than 503 is returned as is.
  Result<HttpReply> Send(const std::string& method, const std::string& target, const std::string& body = {},
                         const std::string& content_type = "application/octet-stream");
  const std::string& origin() const { return origin_; }

 private:
  HttpTransport() = default;
  std::string origin_;
  RemoteOptions options_;
  std::unique_ptr<httplib::Client> client_;
  std::mutex mu_;
};

// Status for a non-2xx reply: the server's JSON "error" text when there is one.
Status StatusFromReply(const HttpReply& reply, const std::string& what);

}  // namespace coffer::remote
