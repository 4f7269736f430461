// ESP-IDF's pre-encrypted OTA container (esp_encrypted_img, idf-extra-components): a 512-byte
// header (magic 0x0788b6cf, the wrapped AES-256-GCM key, IV, size, tag) and the AES-256-GCM
// ciphertext of the app. Address-independent: the device decrypts it while writing the OTA slot,
// which flash encryption then encrypts for whatever slot it lands in. Key wrap: RSA-3072 PKCS#1
// v1.5 (what the device's esp_encrypted_img decrypts), or ECIES-P256 (ECDH with the device key,
// HKDF-SHA256 with info "_esp_enc_img_ecc"). Streams in bounded memory. Functions are thread-safe.
#pragma once

#include <string>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"
#include "coffer/flash/flash_io.h"

namespace coffer::flash {

inline constexpr uint32_t kEncImgMagic = 0x0788b6cf;
inline constexpr size_t kEncImgHeaderSize = 512;

enum class KeyWrap { kRsa3072, kEciesP256 };

struct EncImgInfo {
  KeyWrap wrap = KeyWrap::kRsa3072;
  uint32_t bin_size = 0;
  std::string iv_hex, tag_hex;
};

// Encrypts in_path with the public key in key_pem_path (a PEM public key, or a private key whose
// public half is used): RSA-3072 or EC P-256 selects the wrap. Nothing is left at out_path on failure.
Result<EncImgInfo> EncryptImg(const std::string& key_pem_path, const std::string& in_path, const std::string& out_path,
                              const ProgressFn& progress = nullptr);

// Decrypts with the private key PEM (RSA-3072 or EC P-256). A wrong key or any changed byte fails
// the GCM tag: kDataLoss (or kUnauthenticated when the key unwrap itself fails), and no output.
Result<EncImgInfo> DecryptImg(const std::string& key_pem_path, const std::string& in_path, const std::string& out_path,
                              const ProgressFn& progress = nullptr);

}  // namespace coffer::flash
