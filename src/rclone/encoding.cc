#include "coffer/rclone/encoding.h"

#include <array>
#include <cctype>

namespace coffer::rclone {
namespace {

constexpr char kBase32Hex[] = "0123456789abcdefghijklmnopqrstuv";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr char kBase64Std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// base32768 "safe" alphabet (github.com/Max-Sum/base32768, used by rclone): 1028 code points,
// all multiples of 32, as runs with step 32. Sorted ascending: the first 4 encode the final
// 7-bit group, the other 1024 encode 15-bit groups (high 10 bits; the low 5 bits are added).
constexpr std::array<std::pair<uint16_t, uint16_t>, 54> kSafeRuns = {{
    {0x0180, 0x0180}, {0x0240, 0x0280}, {0x04A0, 0x04A0}, {0x0500, 0x0500}, {0x0680, 0x06A0},
    {0x0760, 0x0780}, {0x07C0, 0x07C0}, {0x1000, 0x1000}, {0x10A0, 0x10A0}, {0x1100, 0x1140},
    {0x1180, 0x1180}, {0x11E0, 0x1220}, {0x1260, 0x1260}, {0x12E0, 0x12E0}, {0x1320, 0x1320},
    {0x13A0, 0x13C0}, {0x1420, 0x1640}, {0x16A0, 0x16C0}, {0x1780, 0x1780}, {0x1820, 0x1840},
    {0x18C0, 0x18C0}, {0x1980, 0x1980}, {0x19E0, 0x19E0}, {0x1A20, 0x1A20}, {0x1BC0, 0x1BC0},
    {0x1C00, 0x1C00}, {0x1D00, 0x1D00}, {0x21E0, 0x21E0}, {0x22C0, 0x22C0}, {0x2340, 0x23C0},
    {0x2400, 0x2400}, {0x2500, 0x2740}, {0x2780, 0x27A0}, {0x2800, 0x2960}, {0x29A0, 0x29A0},
    {0x2A20, 0x2A40}, {0x2A80, 0x2AA0}, {0x2AE0, 0x2B40}, {0x2C00, 0x2C00}, {0x2C80, 0x2CC0},
    {0x2D00, 0x2D00}, {0x2D40, 0x2D40}, {0x2EA0, 0x2EC0}, {0x31C0, 0x31C0}, {0x3400, 0x4D80},
    {0x4DC0, 0x9FA0}, {0xA000, 0xA460}, {0xA4A0, 0xA4A0}, {0xA500, 0xA5E0}, {0xA640, 0xA640},
    {0xA6A0, 0xA6C0}, {0xA700, 0xA740}, {0xA780, 0xA780}, {0xA840, 0xA840},
}};

struct Base32768Tables {
  uint16_t encode_a[1024];
  uint16_t encode_b[4];
  int16_t decode[2048];  // code point >> 5 -> group index, -1 if not in the alphabet
  uint16_t splitter;
  Base32768Tables() {
    uint16_t all[1028];
    size_t n = 0;
    for (auto [lo, hi] : kSafeRuns)
      for (uint32_t c = lo; c <= hi; c += 32) all[n++] = uint16_t(c);
    for (int i = 0; i < 4; ++i) encode_b[i] = all[i];
    for (int i = 0; i < 1024; ++i) encode_a[i] = all[4 + i];
    splitter = all[4];
    for (auto& d : decode) d = -1;
    for (int i = 0; i < 1024; ++i) decode[encode_a[i] >> 5] = int16_t(i);
    for (int i = 0; i < 4; ++i) decode[encode_b[i] >> 5] = int16_t(i);
  }
};

const Base32768Tables& Tables() {
  static const Base32768Tables tables;
  return tables;
}

Result<Bytes> DecodeBase64With(std::string_view text, const char* alphabet, bool padded, bool skip_space) {
  int8_t rev[256];
  for (auto& r : rev) r = -1;
  for (int i = 0; i < 64; ++i) rev[uint8_t(alphabet[i])] = int8_t(i);
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    if (skip_space && std::isspace(uint8_t(c))) continue;
    clean.push_back(c);
  }
  if (padded) {
    if (clean.size() % 4 != 0) return InvalidArgument("base64 text length is not a multiple of 4");
    size_t pad = 0;
    while (!clean.empty() && clean.back() == '=' && pad < 2) { clean.pop_back(); ++pad; }
  }
  if (clean.size() % 4 == 1) return InvalidArgument("base64 text has an impossible length");
  Bytes out;
  out.reserve(clean.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : clean) {
    int v = rev[uint8_t(c)];
    if (v < 0) return InvalidArgument("invalid base64 character");
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t(acc >> bits));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return InvalidArgument("base64 text is not canonical");
  return out;
}

std::string EncodeBase64With(ByteSpan data, const char* alphabet, bool pad) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : data) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 63]);
  if (pad) while (out.size() % 4) out.push_back('=');
  return out;
}

}  // namespace

std::string Base32Encode(ByteSpan data) {
  std::string out;
  out.reserve((data.size() * 8 + 4) / 5);
  uint64_t acc = 0;
  int bits = 0;
  for (uint8_t b : data) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kBase32Hex[(acc >> bits) & 31]);
    }
  }
  if (bits > 0) out.push_back(kBase32Hex[(acc << (5 - bits)) & 31]);
  return out;
}

Result<Bytes> Base32Decode(std::string_view text) {
  // Valid unpadded lengths mod 8: 0, 2, 4, 5, 7.
  size_t rem = text.size() % 8;
  if (rem == 1 || rem == 3 || rem == 6) return InvalidArgument("base32 name has an impossible length");
  Bytes out;
  out.reserve(text.size() * 5 / 8);
  uint64_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'v') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'V') v = c - 'A' + 10;
    else return InvalidArgument("invalid base32 character in name");
    acc = (acc << 5) | uint64_t(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(uint8_t(acc >> bits));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return InvalidArgument("base32 name is not canonical");
  return out;
}

std::string Base64UrlEncode(ByteSpan data) { return EncodeBase64With(data, kBase64Url, false); }
Result<Bytes> Base64UrlDecode(std::string_view text) {
  if (text.find('=') != std::string_view::npos) return InvalidArgument("base64 name must not be padded");
  return DecodeBase64With(text, kBase64Url, false, false);
}
std::string Base64StdEncode(ByteSpan data) { return EncodeBase64With(data, kBase64Std, true); }
Result<Bytes> Base64StdDecode(std::string_view text) { return DecodeBase64With(text, kBase64Std, true, true); }

std::string Base32768Encode(ByteSpan data) {
  const auto& t = Tables();
  std::string out;
  out.reserve(data.size() * 3 / 2 + 4);
  uint8_t left = 0;
  int leftn = 0;
  size_t i = 0;
  while (i < data.size()) {
    uint16_t chunk = uint16_t(uint16_t(left) << (15 - leftn));
    chunk |= uint16_t(uint16_t(data[i]) << (7 - leftn));
    if (leftn < 7 && i + 1 < data.size()) {
      chunk |= uint16_t(data[i + 1] >> (1 + leftn));
      left = uint8_t(data[i + 1] & ((1 << (1 + leftn)) - 1));
      ++leftn;
      i += 2;
    } else {
      chunk |= uint16_t((1 << (7 - leftn)) - 1);  // pad with ones
      left = 0;
      leftn = 0;
      i += 1;
    }
    chunk &= 0x7FFF;
    AppendUtf8(out, char32_t(t.encode_a[chunk >> 5] | (chunk & 31)));
  }
  if (leftn > 0) {
    uint8_t last = uint8_t((left << (7 - leftn)) | ((1 << (7 - leftn)) - 1)) & 0x7F;
    AppendUtf8(out, char32_t(t.encode_b[last >> 5] | (last & 31)));
  }
  return out;
}

Result<Bytes> Base32768Decode(std::string_view utf8_text) {
  if (!IsValidUtf8(utf8_text)) return InvalidArgument("base32768 name is not valid UTF-8");
  const auto& t = Tables();
  std::u32string cps = Utf8ToCodePoints(utf8_text);
  Bytes out;
  out.reserve(cps.size() * 15 / 8 + 1);
  uint8_t left = 0;
  int leftn = 0;
  for (size_t k = 0; k < cps.size(); ++k) {
    char32_t c = cps[k];
    if (c > 0xFFFF || t.decode[c >> 5] < 0) return InvalidArgument("invalid base32768 character in name");
    uint16_t d = uint16_t((t.decode[c >> 5] << 5) | (c & 31));
    bool trailing = c < t.splitter;
    if (trailing) {
      if (k + 1 != cps.size()) return InvalidArgument("base32768 name has data after its final character");
      if (leftn > 0) out.push_back(uint8_t((left << (8 - leftn)) | (d >> (leftn - 1))));
      break;
    }
    if (leftn > 0) {
      out.push_back(uint8_t((left << (8 - leftn)) | (d >> (7 + leftn))));
      out.push_back(uint8_t(d >> (leftn - 1)));
      left = uint8_t(d & ((1 << (leftn - 1)) - 1));
      --leftn;
    } else {
      out.push_back(uint8_t(d >> 7));
      left = uint8_t(d & 0x7F);
      leftn = 7;
    }
  }
  // Canonical form only: re-encoding must give the same text.
  if (Base32768Encode(out) != utf8_text) return InvalidArgument("base32768 name is not canonical");
  return out;
}

std::string EncodeName(NameEncoding encoding, ByteSpan data) {
  switch (encoding) {
    case NameEncoding::kBase32: return Base32Encode(data);
    case NameEncoding::kBase64: return Base64UrlEncode(data);
    case NameEncoding::kBase32768: return Base32768Encode(data);
  }
  return {};
}

Result<Bytes> DecodeName(NameEncoding encoding, std::string_view text) {
  switch (encoding) {
    case NameEncoding::kBase32: return Base32Decode(text);
    case NameEncoding::kBase64: return Base64UrlDecode(text);
    case NameEncoding::kBase32768: return Base32768Decode(text);
  }
  return InvalidArgument("unknown name encoding");
}

Result<NameEncoding> ParseNameEncoding(std::string_view name) {
  std::string lower(name);
  for (auto& c : lower) c = char(std::tolower(uint8_t(c)));
  if (lower == "base32") return NameEncoding::kBase32;
  if (lower == "base64") return NameEncoding::kBase64;
  if (lower == "base32768") return NameEncoding::kBase32768;
  return InvalidArgument("unknown file name encoding '" + std::string(name) + "' (use base32, base64 or base32768)");
}

std::string_view NameEncodingName(NameEncoding encoding) {
  switch (encoding) {
    case NameEncoding::kBase32: return "base32";
    case NameEncoding::kBase64: return "base64";
    case NameEncoding::kBase32768: return "base32768";
  }
  return "?";
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = uint8_t(s[i]);
    size_t n;
    char32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      uint8_t cc = uint8_t(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

std::u32string Utf8ToCodePoints(std::string_view s) {
  std::u32string out;
  size_t i = 0;
  while (i < s.size()) {
    uint8_t c = uint8_t(s[i]);
    char32_t cp;
    size_t n;
    if (c < 0x80) { cp = c; n = 0; }
    else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; n = 1; }
    else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; n = 2; }
    else { cp = c & 0x07; n = 3; }
    for (size_t k = 1; k <= n && i + k < s.size(); ++k) cp = (cp << 6) | (uint8_t(s[i + k]) & 0x3F);
    out.push_back(cp);
    i += n + 1;
  }
  return out;
}

void AppendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

}  // namespace coffer::rclone
