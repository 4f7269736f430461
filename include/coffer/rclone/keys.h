// The three keys of an rclone crypt remote, derived from its password and optional password2
// (salt) with scrypt N=16384 r=8 p=1 exactly as rclone does (an empty password gives all-zero
// keys, as in rclone). Keys live in SecretBytes; a RcloneKeys value is move-only and may be read
// from many threads at once.
#pragma once

#include <string_view>

#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer::rclone {

inline constexpr size_t kDataKeySize = 32;
inline constexpr size_t kNameKeySize = 32;
inline constexpr size_t kNameTweakSize = 16;

struct RcloneKeys {
  SecretBytes data_key;    // XSalsa20-Poly1305 (secretbox) key for file contents
  SecretBytes name_key;    // AES-256 key for EME name encryption
  SecretBytes name_tweak;  // EME tweak
};

// password2 empty means rclone's built-in default salt.
Result<RcloneKeys> DeriveKeys(std::string_view password, std::string_view password2);

}  // namespace coffer::rclone
