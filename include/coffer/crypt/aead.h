// Aead: a tiny Tink-style authenticated-encryption interface (seal/open with associated data).
// Callers pass the nonce explicitly because the sealed volume stores it beside each sector; the
// caller is responsible for never repeating a (key, nonce) pair (the volume's nonce scheme is in
// docs/security.md). XChaCha20-Poly1305 objects re-derive their subkey only when the nonce's first
// 16 bytes change, so nonces that share a prefix are cheaper. An Aead object owns its key (SecretBytes) and reuses its OpenSSL contexts, so it
// is NOT thread-safe: one thread at a time per object (make one object per thread if needed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer {

enum class AeadAlgorithm {
  kChaCha20Poly1305,   // RFC 8439: 32-byte key, 12-byte nonce, 16-byte tag (OpenSSL EVP)
  kXChaCha20Poly1305,  // draft-irtf-cfrg-xchacha: 24-byte nonce; HChaCha20 (libsodium) + EVP
  kAes256Gcm,          // NIST SP 800-38D: 32-byte key, 12-byte nonce, 16-byte tag (OpenSSL EVP)
};

std::string_view AeadAlgorithmName(AeadAlgorithm algorithm);

class Aead {
 public:
  virtual ~Aead() = default;
  virtual AeadAlgorithm algorithm() const = 0;
  virtual size_t key_size() const = 0;
  virtual size_t nonce_size() const = 0;
  virtual size_t tag_size() const = 0;

  // Encrypts plaintext into out = ciphertext || tag (out.size() == plaintext.size() + tag_size()).
  // out may alias plaintext exactly (in place). kInvalidArgument on wrong sizes.
  virtual Status Seal(ByteSpan nonce, ByteSpan associated_data, ByteSpan plaintext,
                      MutableByteSpan out) = 0;
  // Verifies and decrypts sealed = ciphertext || tag into out (out.size() == sealed.size() -
  // tag_size()). kDataLoss when the tag does not verify (out is then wiped to zeros, never returned
  // as data). out may alias the start of sealed.
  virtual Status Open(ByteSpan nonce, ByteSpan associated_data, ByteSpan sealed, MutableByteSpan out) = 0;
};

// key.size() must equal the algorithm's key size (32 for all three). The key is copied into the
// returned object's locked memory.
Result<std::unique_ptr<Aead>> NewAead(AeadAlgorithm algorithm, const SecretBytes& key);

}  // namespace coffer
