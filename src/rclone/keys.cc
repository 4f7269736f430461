#include "coffer/rclone/keys.h"

#include <sodium.h>

namespace coffer::rclone {
namespace {
// rclone's built-in salt, used when no password2 is configured (backend/crypt/cipher.go).
constexpr uint8_t kDefaultSalt[16] = {0xA8, 0x0D, 0xF4, 0x3A, 0x8F, 0xBD, 0x03, 0x08,
                                      0xA7, 0xCA, 0xB8, 0x3E, 0x58, 0x1F, 0x86, 0xB1};
}  // namespace

Result<RcloneKeys> DeriveKeys(std::string_view password, std::string_view password2) {
  constexpr size_t kTotal = kDataKeySize + kNameKeySize + kNameTweakSize;
  SecretBytes key(kTotal);  // all zero: rclone's empty-password keys
  if (!password.empty()) {
    if (sodium_init() < 0) return Internal("libsodium failed to initialise");
    const uint8_t* salt = kDefaultSalt;
    size_t salt_len = sizeof(kDefaultSalt);
    if (!password2.empty()) {
      salt = reinterpret_cast<const uint8_t*>(password2.data());
      salt_len = password2.size();
    }
    if (crypto_pwhash_scryptsalsa208sha256_ll(reinterpret_cast<const uint8_t*>(password.data()),
                                              password.size(), salt, salt_len, 16384, 8, 1,
                                              key.reveal().data(), kTotal) != 0) {
      return Internal("scrypt key derivation failed (out of memory?)");
    }
  }
  auto k = key.reveal();
  RcloneKeys keys;
  keys.data_key = SecretBytes::CopyOf(k.subspan(0, kDataKeySize));
  keys.name_key = SecretBytes::CopyOf(k.subspan(kDataKeySize, kNameKeySize));
  keys.name_tweak = SecretBytes::CopyOf(k.subspan(kDataKeySize + kNameKeySize, kNameTweakSize));
  return keys;
}

}  // namespace coffer::rclone
