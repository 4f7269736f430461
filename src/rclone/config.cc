#include "coffer/rclone/config.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <cctype>

#include "coffer/base/random.h"
#include "coffer/rclone/encoding.h"

namespace coffer::rclone {
namespace {

// rclone's fixed obscure key (fs/config/obscure): public, so obscured passwords are only hidden
// from casual eyes.
constexpr uint8_t kObscureKey[32] = {0x9c, 0x93, 0x5b, 0x48, 0x73, 0x0a, 0x55, 0x4d, 0x6b, 0xfd, 0x7c,
                                     0x63, 0xc8, 0x86, 0xa9, 0x2b, 0xd3, 0x90, 0x19, 0x8e, 0xb8, 0x12,
                                     0x8a, 0xfb, 0xf4, 0xde, 0x16, 0x2b, 0x8b, 0x95, 0xf6, 0x38};
constexpr std::string_view kEncryptedHeader = "RCLONE_ENCRYPT_V0:";

void AesCtr(const uint8_t* iv, const uint8_t* in, size_t len, uint8_t* out) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, EVP_aes_256_ctr(), nullptr, kObscureKey, iv);
  int n = 0;
  if (len) EVP_EncryptUpdate(ctx, out, &n, in, int(len));
  EVP_CIPHER_CTX_free(ctx);
}

std::string Trim(std::string_view s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(uint8_t(s[a]))) ++a;
  while (b > a && std::isspace(uint8_t(s[b - 1]))) --b;
  return std::string(s.substr(a, b - a));
}

void ConfigKey(std::string_view password, uint8_t key[32]) {
  std::string material = "[" + std::string(password) + "][rclone-config]";
  crypto_hash_sha256(key, reinterpret_cast<const uint8_t*>(material.data()), material.size());
  sodium_memzero(material.data(), material.size());
}

}  // namespace

Result<SecretBytes> RevealObscured(std::string_view obscured) {
  auto raw = Base64UrlDecode(Trim(obscured));
  if (!raw.ok()) return InvalidArgument("obscured password is not base64url (is it obscured? use `rclone obscure`)");
  if (raw->size() < 16) return InvalidArgument("obscured password is too short (is it obscured?)");
  SecretBytes out(raw->size() - 16);
  AesCtr(raw->data(), raw->data() + 16, raw->size() - 16, out.reveal().data());
  sodium_memzero(raw->data(), raw->size());
  return out;
}

std::string Obscure(std::string_view plain) {
  Bytes buf(16 + plain.size());
  FillRandom(std::span<uint8_t>(buf.data(), 16));
  AesCtr(buf.data(), reinterpret_cast<const uint8_t*>(plain.data()), plain.size(), buf.data() + 16);
  return Base64UrlEncode(buf);
}

bool IsEncryptedConfig(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = Trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    return line.starts_with("RCLONE_ENCRYPT_V");
  }
  return false;
}

Result<SecretBytes> DecryptConfig(std::string_view text, std::string_view password) {
  size_t pos = 0;
  bool found = false;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = Trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line == kEncryptedHeader) { found = true; break; }
    if (line.starts_with("RCLONE_ENCRYPT_V"))
      return Unsupported("unsupported rclone config encryption '" + line + "' (only RCLONE_ENCRYPT_V0 is known)");
    return InvalidArgument("config is not encrypted");
  }
  if (!found) return InvalidArgument("config is not encrypted");
  auto box = Base64StdDecode(text.substr(pos));
  if (!box.ok()) return Corrupt("encrypted rclone config: bad base64 (" + box.status().message() + ")");
  if (box->size() < 24 + crypto_secretbox_MACBYTES) return Corrupt("encrypted rclone config is too short");
  uint8_t key[32];
  ConfigKey(password, key);
  SecretBytes out(box->size() - 24 - crypto_secretbox_MACBYTES);
  int rc = crypto_secretbox_open_easy(out.reveal().data(), box->data() + 24, box->size() - 24, box->data(), key);
  sodium_memzero(key, sizeof key);
  if (rc != 0) return Unauthenticated("could not decrypt the rclone config: wrong config password");
  return out;
}

std::string EncryptConfig(std::string_view plain, std::string_view password) {
  uint8_t key[32];
  ConfigKey(password, key);
  Bytes box(24 + crypto_secretbox_MACBYTES + plain.size());
  FillRandom(std::span<uint8_t>(box.data(), 24));
  crypto_secretbox_easy(box.data() + 24, reinterpret_cast<const uint8_t*>(plain.data()), plain.size(), box.data(), key);
  sodium_memzero(key, sizeof key);
  std::string b64 = Base64StdEncode(box);
  std::string out = "# Encrypted rclone configuration File\n\nRCLONE_ENCRYPT_V0:\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  return out;
}

Result<std::map<std::string, ConfigSection>> ParseConfig(std::string_view text) {
  std::map<std::string, ConfigSection> out;
  std::string current;
  bool in_section = false;
  size_t pos = 0;
  int lineno = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = Trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++lineno;
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[') {
      if (line.back() != ']') return InvalidArgument("rclone config line " + std::to_string(lineno) + ": bad section header");
      current = Trim(std::string_view(line).substr(1, line.size() - 2));
      out[current];
      in_section = true;
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string::npos || !in_section)
      return InvalidArgument("rclone config line " + std::to_string(lineno) + ": expected 'key = value'");
    out[current][Trim(std::string_view(line).substr(0, eq))] = Trim(std::string_view(line).substr(eq + 1));
  }
  return out;
}

Result<CryptRemote> CryptRemoteFromSection(const ConfigSection& section, std::string_view name) {
  auto get = [&](const char* k) -> std::string {
    auto it = section.find(k);
    return it == section.end() ? std::string() : it->second;
  };
  std::string where = "rclone remote [" + std::string(name) + "]";
  if (get("type") != "crypt") return InvalidArgument(where + " is not a crypt remote (type = " + get("type") + ")");
  CryptRemote r;
  r.remote = get("remote");
  std::string pw = get("password");
  if (pw.empty()) return InvalidArgument(where + " has no password");
  auto p = RevealObscured(pw);
  if (!p.ok()) return p.status().WithContext(where + " password");
  r.password = std::move(*p);
  if (std::string pw2 = get("password2"); !pw2.empty()) {
    auto p2 = RevealObscured(pw2);
    if (!p2.ok()) return p2.status().WithContext(where + " password2");
    r.password2 = std::move(*p2);
  }
  if (std::string m = get("filename_encryption"); !m.empty()) {
    auto mode = ParseNameMode(m);
    if (!mode.ok()) return mode.status().WithContext(where);
    r.names.mode = *mode;
  }
  if (std::string e = get("filename_encoding"); !e.empty()) {
    auto enc = ParseNameEncoding(e);
    if (!enc.ok()) return enc.status().WithContext(where);
    r.names.encoding = *enc;
  }
  if (std::string d = get("directory_name_encryption"); !d.empty()) {
    std::string lower;
    for (char c : d) lower.push_back(char(std::tolower(uint8_t(c))));
    if (lower == "false" || lower == "0" || lower == "no") r.names.directory_name_encryption = false;
    else if (lower == "true" || lower == "1" || lower == "yes") r.names.directory_name_encryption = true;
    else return InvalidArgument(where + ": bad directory_name_encryption '" + d + "'");
  }
  if (std::string s = get("suffix"); !s.empty()) {
    std::string lower;
    for (char c : s) lower.push_back(char(std::tolower(uint8_t(c))));
    if (lower == "none") r.names.suffix = "";
    else r.names.suffix = s[0] == '.' ? s : "." + s;
  }
  return r;
}

}  // namespace coffer::rclone
