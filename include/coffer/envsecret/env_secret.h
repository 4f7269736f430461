// Encrypted environment variables: `ENCRYPTED_X=<value>` where the value is either
//  - secure-store's format: hex(nonce(12) || AES-256-GCM ciphertext || tag(16)), key SHA-256(password),
//    no associated data (read and written for compatibility only: an unsalted hash is a weak KDF), or
//  - coffer's versioned format "CENV1." + base64url(header || nonce || ciphertext || tag), keyed by a
//    passphrase (Argon2id, salt and cost in the header) or a 32-byte key, with the header and the
//    variable name as associated data (docs/format/env_secret.md).
// Pure functions; thread-safe. Decrypt results live in SecretBytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer::envsecret {

inline constexpr std::string_view kEncryptedPrefix = "ENCRYPTED_";
inline constexpr std::string_view kCofferPrefix = "CENV1.";

// ---- secure-store format ----
// Key = SHA-256(password bytes).
SecretBytes SecureStoreKey(ByteSpan password);
// Errors: kInvalidArgument for malformed hex or a value shorter than nonce+tag (names no secret);
// kUnauthenticated when the tag does not verify (wrong password, or the value was changed: the
// format cannot tell these apart).
Result<SecretBytes> DecryptSecureStore(std::string_view hex, const SecretBytes& key);
std::string EncryptSecureStore(ByteSpan plaintext, const SecretBytes& key);

// ---- coffer format ----
enum class Kdf : uint8_t { kRawKey = 1, kArgon2id = 2 };
enum class Aead : uint8_t { kXChaCha20Poly1305 = 1, kAes256Gcm = 2 };

// Where the 32-byte AEAD key comes from. A passphrase is stretched with Argon2id per value (fresh salt);
// a raw key (key file, key server secret) is used through a keyed BLAKE2b subkey.
struct KeySource {
  Kdf kdf = Kdf::kArgon2id;
  SecretBytes secret;  // passphrase bytes (kArgon2id) or exactly 32 key bytes (kRawKey)
};

struct EncryptOptions {
  Aead aead = Aead::kXChaCha20Poly1305;
  // Argon2id cost (libsodium units); defaults are crypto_pwhash's INTERACTIVE limits.
  uint32_t ops_limit = 2;
  uint32_t mem_limit_kib = 64 * 1024;
};

// Encrypts value for variable `name` (the name without ENCRYPTED_ is bound as associated data).
Result<std::string> EncryptCoffer(std::string_view name, ByteSpan plaintext, const KeySource& key,
                                  const EncryptOptions& options = {});
// Errors: kInvalidArgument (not this format, truncated, bad base64), kUnsupported (unknown version,
// KDF or AEAD), kUnauthenticated (key check fails: wrong passphrase or key, or a KDF mismatch),
// kDataLoss (the key is right but the value or its name was changed: tampering).
Result<SecretBytes> DecryptCoffer(std::string_view name, std::string_view value, const KeySource& key);

// True if value looks like coffer's format (prefix check only).
bool IsCofferFormat(std::string_view value);

// Parsed header, for `coffer env inspect` and fuzzing. Never needs the key.
struct CofferHeader {
  uint8_t version = 0;
  Kdf kdf = Kdf::kRawKey;
  Aead aead = Aead::kXChaCha20Poly1305;
  uint32_t ops_limit = 0;
  uint32_t mem_limit_kib = 0;
  size_t ciphertext_size = 0;  // plaintext size + 16
};
Result<CofferHeader> ParseCofferHeader(std::string_view value);

}  // namespace coffer::envsecret
