#include "coffer/rclone/name_cipher.h"

#include <openssl/evp.h>

#include <cctype>
#include <cstring>

namespace coffer::rclone {
namespace {

constexpr size_t kBlock = 16;
constexpr size_t kMaxEmeBytes = 2048;  // rclone refuses longer names (128 blocks)

using Block = std::array<uint8_t, kBlock>;

// Multiplication by 2 in GF(2^128) with EME's little-endian byte order.
Block MultByTwo(const Block& in) {
  Block out;
  out[0] = uint8_t(in[0] << 1);
  if (in[15] & 0x80) out[0] ^= 135;
  for (size_t j = 1; j < kBlock; ++j) out[j] = uint8_t((in[j] << 1) | (in[j - 1] >> 7));
  return out;
}

void XorInto(uint8_t* dst, const uint8_t* a, const uint8_t* b) {
  for (size_t i = 0; i < kBlock; ++i) dst[i] = a[i] ^ b[i];
}

class Aes {
 public:
  Aes(ByteSpan key, bool encrypt) : ctx_(EVP_CIPHER_CTX_new()) {
    if (encrypt) EVP_EncryptInit_ex(ctx_, EVP_aes_256_ecb(), nullptr, key.data(), nullptr);
    else EVP_DecryptInit_ex(ctx_, EVP_aes_256_ecb(), nullptr, key.data(), nullptr);
    EVP_CIPHER_CTX_set_padding(ctx_, 0);
  }
  ~Aes() { EVP_CIPHER_CTX_free(ctx_); }
  void Block16(uint8_t* out, const uint8_t* in) {
    int len = 0;
    EVP_CipherUpdate(ctx_, out, &len, in, int(kBlock));
  }
 private:
  EVP_CIPHER_CTX* ctx_;
};

std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(path.substr(start));
      return out;
    }
    out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
}

// rclone's lib/version: a last segment carrying "-vYYYY-MM-DD-HHMMSS-mmm" before its extension
// (as b2 --b2-versions writes) keeps the version in clear; only the rest is encrypted.
void SplitExt(std::string_view name, std::string_view* base, std::string_view* ext) {
  size_t dot = name.rfind('.');
  *ext = dot == std::string_view::npos ? std::string_view() : name.substr(dot);
  *base = name.substr(0, name.size() - ext->size());
  if (!ext->empty() && base->empty()) std::swap(*base, *ext);
}

bool HasVersionPattern(std::string_view s) {
  // -v\d{4}-\d{2}-\d{2}-\d{6}-\d{3} anywhere
  constexpr std::string_view kShape = "-v0000-00-00-000000-000";
  for (size_t i = 0; i + kShape.size() <= s.size(); ++i) {
    bool ok = true;
    for (size_t k = 0; k < kShape.size() && ok; ++k) {
      char c = s[i + k];
      ok = kShape[k] == '0' ? (c >= '0' && c <= '9') : c == kShape[k];
    }
    if (ok) return true;
  }
  return false;
}

int Num(std::string_view s) {
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

// On success sets *without (name minus version) and *version ("-v...-mmm").
bool RemoveVersion(std::string_view name, std::string* without, std::string* version) {
  if (!HasVersionPattern(name)) return false;
  std::string_view base, ext;
  SplitExt(name, &base, &ext);
  constexpr size_t kLen = 23;  // len("-v2006-01-02-150405.000")
  if (base.size() < kLen || base[base.size() - 4] != '-') return false;
  std::string_view v = base.substr(base.size() - kLen);
  if (v[0] != '-' || v[1] != 'v' || v[6] != '-' || v[9] != '-' || v[12] != '-') return false;
  int year = Num(v.substr(2, 4)), month = Num(v.substr(7, 2)), day = Num(v.substr(10, 2));
  int hh = Num(v.substr(13, 2)), mm = Num(v.substr(15, 2)), ss = Num(v.substr(17, 2)), ms = Num(v.substr(20, 3));
  if (year < 0 || month < 1 || month > 12 || day < 1 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 ||
      ss > 59 || ms < 0)
    return false;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  int max_day = month == 2 ? (leap ? 29 : 28) : kDays[month - 1];
  if (day > max_day) return false;
  *version = std::string(v);
  *without = std::string(base.substr(0, base.size() - kLen)) + std::string(ext);
  return true;
}

std::string AddVersion(std::string_view name, std::string_view version) {
  std::string_view base, ext;
  SplitExt(name, &base, &ext);
  return std::string(base) + std::string(version) + std::string(ext);
}

}  // namespace

Result<NameMode> ParseNameMode(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower) c = char(std::tolower(uint8_t(c)));
  if (lower == "standard") return NameMode::kStandard;
  if (lower == "obfuscate") return NameMode::kObfuscate;
  if (lower == "off") return NameMode::kOff;
  return InvalidArgument("unknown file name encryption '" + std::string(name) + "' (use standard, obfuscate or off)");
}

std::string_view NameModeName(NameMode mode) {
  switch (mode) {
    case NameMode::kOff: return "off";
    case NameMode::kStandard: return "standard";
    case NameMode::kObfuscate: return "obfuscate";
  }
  return "?";
}

Result<Bytes> EmeTransform(ByteSpan key, ByteSpan tweak, ByteSpan data, bool encrypt) {
  if (key.size() != 32 || tweak.size() != kBlock) return InvalidArgument("EME needs a 32-byte key and 16-byte tweak");
  if (data.empty() || data.size() % kBlock != 0 || data.size() > kMaxEmeBytes)
    return InvalidArgument("EME input must be 16..2048 bytes in whole blocks");
  const size_t m = data.size() / kBlock;
  Aes enc(key, true);
  Aes dir(key, encrypt);
  // L table: L_0 = 2 * E(0), L_i = 2 * L_{i-1}.
  std::vector<Block> l(m);
  Block li{};
  Block zero{};
  enc.Block16(li.data(), zero.data());
  for (size_t i = 0; i < m; ++i) {
    li = MultByTwo(li);
    l[i] = li;
  }
  Bytes c(data.size());
  Block pp;
  for (size_t j = 0; j < m; ++j) {
    XorInto(pp.data(), &data[j * kBlock], l[j].data());
    dir.Block16(&c[j * kBlock], pp.data());
  }
  Block mp;
  XorInto(mp.data(), &c[0], tweak.data());
  for (size_t j = 1; j < m; ++j) XorInto(mp.data(), mp.data(), &c[j * kBlock]);
  Block mc;
  dir.Block16(mc.data(), mp.data());
  Block mm;
  XorInto(mm.data(), mp.data(), mc.data());
  for (size_t j = 1; j < m; ++j) {
    mm = MultByTwo(mm);
    XorInto(&c[j * kBlock], &c[j * kBlock], mm.data());
  }
  Block ccc1;
  XorInto(ccc1.data(), mc.data(), tweak.data());
  for (size_t j = 1; j < m; ++j) XorInto(ccc1.data(), ccc1.data(), &c[j * kBlock]);
  std::memcpy(&c[0], ccc1.data(), kBlock);
  for (size_t j = 0; j < m; ++j) {
    dir.Block16(&c[j * kBlock], &c[j * kBlock]);
    XorInto(&c[j * kBlock], &c[j * kBlock], l[j].data());
  }
  return c;
}

NameCipher::NameCipher(const RcloneKeys& keys, NameOptions options)
    : options_(std::move(options)), name_key_(keys.name_key.Clone()), name_tweak_(keys.name_tweak.Clone()) {
  for (uint8_t b : name_key_.reveal()) key_sum_ += b;
}

NameCipher::~NameCipher() = default;

std::string NameCipher::EncryptSegment(std::string_view plain) const {
  if (plain.empty()) return {};
  Bytes padded(plain.begin(), plain.end());
  size_t pad = kBlock - padded.size() % kBlock;
  padded.insert(padded.end(), pad, uint8_t(pad));
  if (padded.size() > kMaxEmeBytes) {
    // rclone would write a name it cannot read back; encrypt-dir checks lengths before this.
    padded.resize(kMaxEmeBytes);
  }
  auto c = EmeTransform(name_key_.reveal(), name_tweak_.reveal(), padded, true);
  return EncodeName(options_.encoding, *c);
}

Result<std::string> NameCipher::DecryptSegment(std::string_view encrypted) const {
  if (encrypted.empty()) return std::string();
  auto raw = DecodeName(options_.encoding, encrypted);
  if (!raw.ok()) return raw.status();
  if (raw->empty() || raw->size() % kBlock != 0) return InvalidArgument("encrypted name is not a whole number of blocks");
  if (raw->size() > kMaxEmeBytes) return InvalidArgument("encrypted name is too long");
  auto p = EmeTransform(name_key_.reveal(), name_tweak_.reveal(), *raw, false);
  if (!p.ok()) return p.status();
  Bytes& b = *p;
  uint8_t pad = b.back();
  if (pad == 0 || pad > kBlock) return InvalidArgument("name did not decrypt (bad padding: wrong password or not an encrypted name)");
  for (size_t i = 0; i < pad; ++i)
    if (b[b.size() - 1 - i] != pad) return InvalidArgument("name did not decrypt (bad padding: wrong password or not an encrypted name)");
  b.resize(b.size() - pad);
  return std::string(b.begin(), b.end());
}

std::string NameCipher::ObfuscateSegment(std::string_view plain) const {
  if (plain.empty()) return {};
  if (!IsValidUtf8(plain)) return "!." + std::string(plain);
  std::u32string cps = Utf8ToCodePoints(plain);
  long dir = 0;
  for (char32_t r : cps) dir += long(r);
  dir %= 256;
  std::string out = std::to_string(dir) + ".";
  dir += key_sum_;
  for (char32_t r : cps) {
    if (r == '!') {
      out += "!!";
    } else if (r >= '0' && r <= '9') {
      long thisdir = dir % 9 + 1;
      out.push_back(char('0' + (long(r) - '0' + thisdir) % 10));
    } else if ((r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z')) {
      long thisdir = dir % 25 + 1;
      long pos = long(r) - 'A';
      if (pos >= 26) pos -= 6;
      pos = (pos + thisdir) % 52;
      if (pos >= 26) pos += 6;
      out.push_back(char('A' + pos));
    } else if (r >= 0xA0 && r <= 0xFF) {
      long thisdir = dir % 95 + 1;
      AppendUtf8(out, char32_t(0xA0 + (long(r) - 0xA0 + thisdir) % 96));
    } else if (r >= 0x100) {
      long thisdir = dir % 127 + 1;
      long base = long(r) - long(r) % 256;
      char32_t nr = char32_t(base + (long(r) - base + thisdir) % 256);
      if (nr > 0x10FFFF || (nr >= 0xD800 && nr <= 0xDFFF)) {
        out.push_back('!');
        AppendUtf8(out, r);
      } else {
        AppendUtf8(out, nr);
      }
    } else {
      AppendUtf8(out, r);
    }
  }
  return out;
}

Result<std::string> NameCipher::DeobfuscateSegment(std::string_view encrypted) const {
  if (encrypted.empty()) return std::string();
  size_t dot = encrypted.find('.');
  if (dot == std::string_view::npos) return InvalidArgument("not an obfuscated name (no '.')");
  std::string_view num = encrypted.substr(0, dot);
  std::string_view rest = encrypted.substr(dot + 1);
  if (num == "!") return std::string(rest);
  if (num.empty() || num.size() > 9) return InvalidArgument("not an obfuscated name (bad rotation number)");
  long dir = 0;
  size_t k = 0;
  if (num[0] == '-' || num[0] == '+') k = 1;  // Go's Atoi accepts a sign
  if (k == num.size()) return InvalidArgument("not an obfuscated name (bad rotation number)");
  for (; k < num.size(); ++k) {
    if (num[k] < '0' || num[k] > '9') return InvalidArgument("not an obfuscated name (bad rotation number)");
    dir = dir * 10 + (num[k] - '0');
  }
  if (num[0] == '-') dir = -dir;
  if (!IsValidUtf8(rest)) return InvalidArgument("obfuscated name is not valid UTF-8");
  dir += key_sum_;
  // Go's % keeps the sign of the dividend; rclone names never carry negative numbers, but stay
  // faithful so a hostile name cannot produce out-of-range code points.
  auto gomod = [](long a, long b) { return a % b; };
  std::string out;
  bool in_quote = false;
  for (char32_t r : Utf8ToCodePoints(rest)) {
    if (in_quote) {
      AppendUtf8(out, r);
      in_quote = false;
    } else if (r == '!') {
      in_quote = true;
    } else if (r >= '0' && r <= '9') {
      long thisdir = gomod(dir, 9) + 1;
      long nr = long(r) - thisdir;
      if (nr < '0') nr += 10;
      if (nr < 0 || nr > 0x7F) return InvalidArgument("not an obfuscated name");
      out.push_back(char(nr));
    } else if ((r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z')) {
      long thisdir = gomod(dir, 25) + 1;
      long pos = long(r) - 'A';
      if (pos >= 26) pos -= 6;
      pos -= thisdir;
      if (pos < 0) pos += 52;
      if (pos >= 26) pos += 6;
      if (pos < 0 || pos > 63) return InvalidArgument("not an obfuscated name");
      out.push_back(char('A' + pos));
    } else if (r >= 0xA0 && r <= 0xFF) {
      long thisdir = gomod(dir, 95) + 1;
      long nr = long(r) - thisdir;
      if (nr < 0xA0) nr += 96;
      if (nr < 0 || nr > 0x10FFFF) return InvalidArgument("not an obfuscated name");
      AppendUtf8(out, char32_t(nr));
    } else if (r >= 0x100) {
      long thisdir = gomod(dir, 127) + 1;
      long base = long(r) - long(r) % 256;
      long nr = long(r) - thisdir;
      if (nr < base) nr += 256;
      if (nr < 0 || nr > 0x10FFFF || (nr >= 0xD800 && nr <= 0xDFFF)) return InvalidArgument("not an obfuscated name");
      AppendUtf8(out, char32_t(nr));
    } else {
      AppendUtf8(out, r);
    }
  }
  return out;
}

std::string NameCipher::EncryptFileName(std::string_view path) const {
  if (options_.mode == NameMode::kOff) return std::string(path) + options_.suffix;
  auto segs = Split(path);
  std::string out;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (i) out.push_back('/');
    bool last = i + 1 == segs.size();
    if (!options_.directory_name_encryption && !last) { out += segs[i]; continue; }
    std::string seg(segs[i]), version;
    bool versioned = last && RemoveVersion(segs[i], &seg, &version);
    std::string enc = options_.mode == NameMode::kStandard ? EncryptSegment(seg) : ObfuscateSegment(seg);
    out += versioned ? AddVersion(enc, version) : enc;
  }
  return out;
}

std::string NameCipher::EncryptDirName(std::string_view path) const {
  if (options_.mode == NameMode::kOff || !options_.directory_name_encryption) return std::string(path);
  auto segs = Split(path);
  std::string out;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (i) out.push_back('/');
    out += options_.mode == NameMode::kStandard ? EncryptSegment(segs[i]) : ObfuscateSegment(segs[i]);
  }
  return out;
}

Result<std::string> NameCipher::DecryptFileName(std::string_view path) const {
  if (options_.mode == NameMode::kOff) {
    const std::string& sfx = options_.suffix;
    if (path.size() <= sfx.size() || path.substr(path.size() - sfx.size()) != sfx ||
        path[path.size() - sfx.size() - 1] == '/')
      return InvalidArgument("not an encrypted file name (no '" + sfx + "' suffix)");
    return std::string(path.substr(0, path.size() - sfx.size()));
  }
  auto segs = Split(path);
  std::string out;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (i) out.push_back('/');
    bool last = i + 1 == segs.size();
    if (!options_.directory_name_encryption && !last) { out += segs[i]; continue; }
    std::string seg(segs[i]), version;
    bool versioned = last && RemoveVersion(segs[i], &seg, &version);
    auto s = options_.mode == NameMode::kStandard ? DecryptSegment(seg) : DeobfuscateSegment(seg);
    if (!s.ok()) return s.status();
    if (versioned) *s = AddVersion(*s, version);
    if (s->find('/') != std::string::npos || s->find('\0') != std::string::npos || *s == "." || *s == "..")
      return InvalidArgument("decrypted name is not a safe path segment");
    out += *s;
  }
  return out;
}

Result<std::string> NameCipher::DecryptDirName(std::string_view path) const {
  if (options_.mode == NameMode::kOff || !options_.directory_name_encryption) return std::string(path);
  auto segs = Split(path);
  std::string out;
  for (size_t i = 0; i < segs.size(); ++i) {
    if (i) out.push_back('/');
    auto s = options_.mode == NameMode::kStandard ? DecryptSegment(segs[i]) : DeobfuscateSegment(segs[i]);
    if (!s.ok()) return s.status();
    if (s->find('/') != std::string::npos || s->find('\0') != std::string::npos || *s == "." || *s == "..")
      return InvalidArgument("decrypted name is not a safe path segment");
    out += *s;
  }
  return out;
}

size_t NameCipher::MaxPlainSegmentBytes(size_t max_bytes) const {
  switch (options_.mode) {
    case NameMode::kOff: return max_bytes - options_.suffix.size();
    case NameMode::kObfuscate: return max_bytes - 4;  // "NNN." prefix, ASCII without '!'
    case NameMode::kStandard: break;
  }
  // Largest n such that the encoding of pad16(n) fits.
  size_t best = 0;
  for (size_t n = 1; n < 2048; ++n) {
    size_t padded = (n / kBlock + 1) * kBlock;
    size_t enc;
    switch (options_.encoding) {
      case NameEncoding::kBase32: enc = (padded * 8 + 4) / 5; break;
      case NameEncoding::kBase64: enc = (padded * 8 + 5) / 6; break;
      default: enc = (padded * 8 + 14) / 15 * 3; break;  // 3 UTF-8 bytes per character at most
    }
    if (enc <= max_bytes) best = n; else break;
  }
  return best;
}

}  // namespace coffer::rclone
