// libFuzzer target: rclone crypt name decoders (base32, base64, base32768, EME standard names,
// obfuscated names, "off" suffixes, whole paths) and obscured passwords / config files. Never
// crash; a name that decodes must encode back to the same text (decoders are canonical).
#include <cstdint>
#include <cstdlib>
#include <string>

#include "coffer/rclone/config.h"
#include "coffer/rclone/encoding.h"
#include "coffer/rclone/name_cipher.h"

using namespace coffer;
using namespace coffer::rclone;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static RcloneKeys keys = std::move(DeriveKeys("", "").value());
  static NameCipher b32(keys, NameOptions{NameMode::kStandard, NameEncoding::kBase32});
  static NameCipher b64(keys, NameOptions{NameMode::kStandard, NameEncoding::kBase64, false});
  static NameCipher b32768(keys, NameOptions{NameMode::kStandard, NameEncoding::kBase32768});
  static NameCipher obf(keys, NameOptions{NameMode::kObfuscate});
  static NameCipher off(keys, NameOptions{NameMode::kOff});
  std::string s(reinterpret_cast<const char*>(data), size);
  if (auto d = Base64UrlDecode(s); d.ok() && Base64UrlEncode(*d) != s) std::abort();
  if (auto d = Base32768Decode(s); d.ok() && Base32768Encode(*d) != s) std::abort();
  (void)Base32Decode(s);
  for (const NameCipher* c : {&b32, &b64, &b32768, &obf, &off}) {
    auto f = c->DecryptFileName(s);
    // rclone maps the empty name to itself, so only non-empty names must round-trip non-empty.
    if (f.ok() && !s.empty() && c->options().mode == NameMode::kStandard && s.find('/') == std::string::npos &&
        c->EncryptFileName(*f).size() == 0)
      std::abort();
    (void)c->DecryptDirName(s);
  }
  if (auto d = obf.DeobfuscateSegment(s); d.ok()) (void)obf.ObfuscateSegment(*d);
  (void)RevealObscured(s);
  (void)ParseConfig(s);
  if (IsEncryptedConfig(s)) (void)DecryptConfig(s, "pw");
  return 0;
}
