#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>

#include "coffer/net/net.h"

namespace coffer::net {

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

std::string Url::HostPort() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

Result<std::pair<std::string, int>> ParseHostPort(std::string_view text) {
  std::string host;
  std::string_view rest;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return InvalidArgument("unclosed '[' in address '" + std::string(text) + "'");
    host = std::string(text.substr(1, close - 1));
    rest = text.substr(close + 1);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return InvalidArgument("address '" + std::string(text) + "' has no :PORT");
    host = std::string(text.substr(0, colon));
    rest = text.substr(colon);
  }
  if (rest.size() < 2 || rest[0] != ':') return InvalidArgument("address '" + std::string(text) + "' has no :PORT");
  int port = 0;
  auto digits = rest.substr(1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || p != digits.data() + digits.size() || port < 0 || port > 65535) {
    return InvalidArgument("bad port '" + std::string(digits) + "' in address '" + std::string(text) + "'");
  }
  if (host.empty()) return InvalidArgument("address '" + std::string(text) + "' has no host");
  return std::make_pair(host, port);
}

Result<Url> ParseUrl(std::string_view text) {
  size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return InvalidArgument("'" + std::string(text) + "' is not a URL (scheme://host:port/...)");
  Url url;
  url.scheme = std::string(text.substr(0, sep));
  std::string_view rest = text.substr(sep + 3);
  size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    url.query = std::string(rest.substr(q + 1));
    rest = rest.substr(0, q);
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) url.path = std::string(rest.substr(slash));
  bool has_port = authority.rfind(':') != std::string_view::npos &&
                  (authority.empty() || authority[0] != '[' || authority.find("]:") != std::string_view::npos);
  if (has_port) {
    COFFER_ASSIGN_OR_RETURN(auto hp, ParseHostPort(authority));
    url.host = hp.first;
    url.port = hp.second;
  } else {
    url.host = std::string(authority);
    if (!url.host.empty() && url.host[0] == '[') url.host = url.host.substr(1, url.host.size() - 2);
    if (url.scheme == "https") url.port = 443;
    else if (url.scheme == "http") url.port = 80;
    else return InvalidArgument("URL '" + std::string(text) + "' needs an explicit :PORT");
  }
  if (url.host.empty()) return InvalidArgument("URL '" + std::string(text) + "' has no host");
  return url;
}

bool IsLoopbackHost(std::string_view host) {
  if (host == "localhost") return true;
  std::string h(host);
  in_addr a4;
  if (inet_pton(AF_INET, h.c_str(), &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
  in6_addr a6;
  if (inet_pton(AF_INET6, h.c_str(), &a6) == 1) return IN6_IS_ADDR_LOOPBACK(&a6);
  return false;
}

}  // namespace coffer::net
