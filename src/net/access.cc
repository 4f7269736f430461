// CIDR allowlist and bearer-token table.
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "coffer/base/file_util.h"
#include "coffer/net/net.h"

namespace coffer::net {
namespace {

bool ParseAddress(std::string_view text, int& family, std::array<uint8_t, 16>& out) {
  std::string s(text);
  // IPv4-mapped IPv6 ("::ffff:1.2.3.4", as some stacks report peers) compares as IPv4.
  if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) s = s.substr(7);
  out.fill(0);
  if (inet_pton(AF_INET, s.c_str(), out.data()) == 1) {
    family = 4;
    return true;
  }
  if (inet_pton(AF_INET6, s.c_str(), out.data()) == 1) {
    family = 6;
    return true;
  }
  return false;
}

std::array<uint8_t, 32> Sha256(std::string_view data) {
  std::array<uint8_t, 32> d{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr);
  return d;
}

}  // namespace

Result<CidrAllowlist> CidrAllowlist::Parse(const std::vector<std::string>& entries) {
  CidrAllowlist list;
  for (const std::string& e : entries) {
    Net n;
    std::string_view addr = e;
    size_t slash = e.find('/');
    if (slash != std::string::npos) addr = std::string_view(e).substr(0, slash);
    if (!ParseAddress(addr, n.family, n.addr)) return InvalidArgument("--allow '" + e + "' is not an IP address or CIDR");
    int max = n.family == 4 ? 32 : 128;
    n.prefix = max;
    if (slash != std::string::npos) {
      std::string_view p = std::string_view(e).substr(slash + 1);
      auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), n.prefix);
      if (ec != std::errc() || end != p.data() + p.size() || n.prefix < 0 || n.prefix > max) {
        return InvalidArgument("--allow '" + e + "' has a bad prefix length (0.." + std::to_string(max) + ")");
      }
    }
    list.nets_.push_back(n);
  }
  return list;
}

bool CidrAllowlist::Allows(std::string_view address) const {
  if (nets_.empty()) return true;
  int family;
  std::array<uint8_t, 16> a;
  if (!ParseAddress(address, family, a)) return false;
  for (const Net& n : nets_) {
    if (n.family != family) continue;
    int full = n.prefix / 8, bits = n.prefix % 8;
    if (std::equal(a.begin(), a.begin() + full, n.addr.begin()) &&
        (bits == 0 || ((a[full] ^ n.addr[full]) & uint8_t(0xff << (8 - bits))) == 0)) {
      return true;
    }
  }
  return false;
}

Result<TokenTable> TokenTable::Parse(std::string_view text) {
  TokenTable table;
  std::istringstream in{std::string(text)};
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::istringstream fields(line);
    std::string device, token, extra;
    fields >> device >> token;
    if (device.empty() || token.empty() || (fields >> extra)) {
      return InvalidArgument("token file line " + std::to_string(lineno) + ": want '<device-id> <token>'");
    }
    if (token.size() < 16) {
      return InvalidArgument("token file line " + std::to_string(lineno) + ": token for '" + device +
                             "' is shorter than 16 characters");
    }
    table.entries_.push_back({device, Sha256(token)});
  }
  if (table.entries_.empty()) return InvalidArgument("token file has no '<device-id> <token>' lines");
  return table;
}

Result<TokenTable> TokenTable::Load(const std::string& path) {
  COFFER_ASSIGN_OR_RETURN(SecretBytes text, ReadSecretFile(path));
  auto r = Parse(std::string_view(reinterpret_cast<const char*>(text.reveal().data()), text.reveal().size()));
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

Result<std::string> TokenTable::Identify(std::string_view token) const {
  auto digest = Sha256(token);
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {  // no early exit: time does not depend on which entry matches
    if (CRYPTO_memcmp(e.digest.data(), digest.data(), digest.size()) == 0) found = &e;
  }
  if (!found) return Unauthenticated("unknown bearer token");
  return found->device;
}

std::string_view BearerToken(std::string_view h) {
  constexpr std::string_view kPrefix = "Bearer ";
  if (h.size() <= kPrefix.size()) return {};
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(h[i])) != std::tolower(static_cast<unsigned char>(kPrefix[i]))) return {};
  }
  return h.substr(kPrefix.size());
}

}  // namespace coffer::net
