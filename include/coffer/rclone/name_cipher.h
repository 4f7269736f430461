// File and directory name encryption of rclone crypt: "standard" (PKCS#7 + EME/AES-256 + an
// encoding), "obfuscate" (rclone's keyed rotation) and "off" (names kept, files get a suffix,
// ".bin" by default), with directory name encryption on or off. Paths are '/'-separated and
// relative. Immutable after construction; safe to use from many threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"
#include "coffer/rclone/encoding.h"
#include "coffer/rclone/keys.h"

namespace coffer::rclone {

enum class NameMode { kOff, kStandard, kObfuscate };
Result<NameMode> ParseNameMode(std::string_view name);
std::string_view NameModeName(NameMode mode);

struct NameOptions {
  NameMode mode = NameMode::kStandard;
  NameEncoding encoding = NameEncoding::kBase32;
  bool directory_name_encryption = true;
  std::string suffix = ".bin";  // only for kOff; "" means none
};

// EME (Halevi-Rogaway ECB-Mix-ECB) wide-block transform with AES-256, as rfjakob/eme does.
// data.size() must be a non-zero multiple of 16 and at most 2048.
Result<Bytes> EmeTransform(ByteSpan key, ByteSpan tweak, ByteSpan data, bool encrypt);

class NameCipher {
 public:
  NameCipher(const RcloneKeys& keys, NameOptions options);
  ~NameCipher();
  NameCipher(const NameCipher&) = delete;
  NameCipher& operator=(const NameCipher&) = delete;

  const NameOptions& options() const { return options_; }

  // One path segment (no '/').
  std::string EncryptSegment(std::string_view plain) const;
  Result<std::string> DecryptSegment(std::string_view encrypted) const;
  std::string ObfuscateSegment(std::string_view plain) const;
  Result<std::string> DeobfuscateSegment(std::string_view encrypted) const;

  // Whole relative paths, as rclone's EncryptFileName / EncryptDirName.
  std::string EncryptFileName(std::string_view path) const;
  std::string EncryptDirName(std::string_view path) const;
  Result<std::string> DecryptFileName(std::string_view path) const;
  Result<std::string> DecryptDirName(std::string_view path) const;

  // The longest plaintext segment (in bytes) whose encrypted form stays within max_bytes
  // (255 on Linux) for this mode and encoding.
  size_t MaxPlainSegmentBytes(size_t max_bytes = 255) const;

 private:
  std::string TransformPath(std::string_view path, bool encrypt_last_only, bool encrypt) const;
  NameOptions options_;
  SecretBytes name_key_;
  SecretBytes name_tweak_;
  int key_sum_ = 0;  // sum of name key bytes (obfuscate)
};

}  // namespace coffer::rclone
