// Hashes, keyed hashes and key derivation used across coffer: BLAKE2b (libsodium) for checksums,
// key ids and version-1 hash trees; SHA-256 (OpenSSL: SHA-NI where the CPU has it, several times
// faster than libsodium's BLAKE2b) for version-2 hash trees; HKDF-SHA256 (OpenSSL) for subkeys; Argon2id (libsodium) for passphrases.
// All functions are pure and thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer {

using Hash256 = std::array<uint8_t, 32>;

// BLAKE2b-256 over the concatenation of parts (unkeyed).
Hash256 Blake2b256(std::initializer_list<ByteSpan> parts);
// BLAKE2b with a key (1..64 bytes) and out.size() in 16..64 over the concatenation of parts: a MAC
// / PRF. Empty key = unkeyed.
void Blake2bKeyed(MutableByteSpan out, ByteSpan key, std::initializer_list<ByteSpan> parts);

// SHA-256 over the concatenation of parts.
Hash256 Sha256(std::initializer_list<ByteSpan> parts);

// HKDF-SHA256 (RFC 5869) extract+expand. len <= 255*32.
Result<SecretBytes> HkdfSha256(ByteSpan ikm, ByteSpan salt, std::string_view info, size_t len);
// HMAC-SHA256 (RFC 2104).
Hash256 HmacSha256(ByteSpan key, ByteSpan data);

// Argon2id (RFC 9106) as libsodium's crypto_pwhash: salt is 16 bytes, ops >= 1, mem in bytes
// (>= 8 KiB). kInvalidArgument for parameters outside libsodium's limits; kNoSpace if the memory
// cannot be allocated.
struct Argon2Params {
  uint64_t ops = 3;                    // passes (libsodium "moderate" is 3)
  uint64_t mem_bytes = 256ull << 20;   // 256 MiB
};
Result<SecretBytes> Argon2id(ByteSpan password, ByteSpan salt, const Argon2Params& params, size_t len);

}  // namespace coffer
