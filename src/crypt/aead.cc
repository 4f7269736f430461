#include "coffer/crypt/aead.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sodium.h>

#include <climits>
#include <cstring>

namespace coffer {
namespace {

constexpr size_t kKeySize = 32;
constexpr size_t kTagSize = 16;

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

// One EVP-backed AEAD with a 12-byte nonce; the key may be fixed (set once, so AES key expansion
// happens once) or supplied per call (XChaCha's per-nonce subkey).
class EvpAead {
 public:
  explicit EvpAead(const EVP_CIPHER* cipher) : enc_(EVP_CIPHER_CTX_new()), dec_(EVP_CIPHER_CTX_new()) {
    ok_ = enc_ && dec_ && EVP_CipherInit_ex(enc_.get(), cipher, nullptr, nullptr, nullptr, 1) == 1 &&
          EVP_CipherInit_ex(dec_.get(), cipher, nullptr, nullptr, nullptr, 0) == 1;
  }
  bool ok() const { return ok_; }
  bool SetKey(const uint8_t* key) {
    return EVP_CipherInit_ex(enc_.get(), nullptr, nullptr, key, nullptr, 1) == 1 &&
           EVP_CipherInit_ex(dec_.get(), nullptr, nullptr, key, nullptr, 0) == 1;
  }

  // key == nullptr: keep the key set by SetKey.
  Status Seal(const uint8_t* key, const uint8_t* iv, ByteSpan ad, ByteSpan pt, MutableByteSpan out) {
    EVP_CIPHER_CTX* c = enc_.get();
    int len = 0;
    if (EVP_CipherInit_ex(c, nullptr, nullptr, key, iv, 1) != 1) return Internal("AEAD seal init failed");
    if (!ad.empty() && EVP_CipherUpdate(c, nullptr, &len, ad.data(), int(ad.size())) != 1) {
      return Internal("AEAD seal: associated data rejected");
    }
    int n = 0;
    if (!pt.empty() && EVP_CipherUpdate(c, out.data(), &n, pt.data(), int(pt.size())) != 1) {
      return Internal("AEAD seal failed");
    }
    int fin = 0;
    if (EVP_CipherFinal_ex(c, out.data() + n, &fin) != 1) return Internal("AEAD seal final failed");
    if (size_t(n + fin) != pt.size()) return Internal("AEAD seal produced a short ciphertext");
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kTagSize, out.data() + pt.size()) != 1) {
      return Internal("AEAD seal: no tag");
    }
    return Status::Ok();
  }

  Status Open(const uint8_t* key, const uint8_t* iv, ByteSpan ad, ByteSpan sealed, MutableByteSpan out) {
    EVP_CIPHER_CTX* c = dec_.get();
    size_t ct_len = sealed.size() - kTagSize;
    uint8_t tag[kTagSize];
    std::memcpy(tag, sealed.data() + ct_len, kTagSize);  // before out (which may alias) is written
    int len = 0;
    if (EVP_CipherInit_ex(c, nullptr, nullptr, key, iv, 0) != 1) return Internal("AEAD open init failed");
    if (!ad.empty() && EVP_CipherUpdate(c, nullptr, &len, ad.data(), int(ad.size())) != 1) {
      return Internal("AEAD open: associated data rejected");
    }
    int n = 0;
    if (ct_len > 0 && EVP_CipherUpdate(c, out.data(), &n, sealed.data(), int(ct_len)) != 1) {
      return Internal("AEAD open failed");
    }
    if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kTagSize, tag) != 1) return Internal("AEAD open: tag");
    int fin = 0;
    if (EVP_CipherFinal_ex(c, out.data() + n, &fin) != 1) {
      if (!out.empty()) OPENSSL_cleanse(out.data(), out.size());
      return DataLoss("authentication tag mismatch: the data was modified or the key is wrong");
    }
    return Status::Ok();
  }

 private:
  CtxPtr enc_, dec_;
  bool ok_ = false;
};

Status CheckSizes(size_t nonce, size_t want_nonce, size_t in, size_t out, bool seal) {
  if (nonce != want_nonce) {
    return InvalidArgument("AEAD nonce is " + std::to_string(nonce) + " bytes, want " + std::to_string(want_nonce));
  }
  if (in > size_t(INT_MAX) - 64) return InvalidArgument("AEAD message too large");
  if (seal ? out != in + kTagSize : (in < kTagSize || out != in - kTagSize)) {
    return InvalidArgument("AEAD buffer sizes do not match (input " + std::to_string(in) + ", output " +
                           std::to_string(out) + ", tag " + std::to_string(kTagSize) + ")");
  }
  return Status::Ok();
}

class FixedKeyAead : public Aead {
 public:
  FixedKeyAead(AeadAlgorithm algorithm, const EVP_CIPHER* cipher) : algorithm_(algorithm), evp_(cipher) {}
  bool Init(const SecretBytes& key) { return evp_.ok() && evp_.SetKey(key.reveal().data()); }

  AeadAlgorithm algorithm() const override { return algorithm_; }
  size_t key_size() const override { return kKeySize; }
  size_t nonce_size() const override { return 12; }
  size_t tag_size() const override { return kTagSize; }
  Status Seal(ByteSpan nonce, ByteSpan ad, ByteSpan pt, MutableByteSpan out) override {
    COFFER_RETURN_IF_ERROR(CheckSizes(nonce.size(), 12, pt.size(), out.size(), true));
    return evp_.Seal(nullptr, nonce.data(), ad, pt, out);
  }
  Status Open(ByteSpan nonce, ByteSpan ad, ByteSpan sealed, MutableByteSpan out) override {
    COFFER_RETURN_IF_ERROR(CheckSizes(nonce.size(), 12, sealed.size(), out.size(), false));
    return evp_.Open(nullptr, nonce.data(), ad, sealed, out);
  }

 private:
  AeadAlgorithm algorithm_;
  EvpAead evp_;
};

// XChaCha20-Poly1305: subkey = HChaCha20(key, nonce[0..16)), then ChaCha20-Poly1305 (IETF) under the
// subkey with nonce 0x00000000 || nonce[16..24). Same output as libsodium's
// crypto_aead_xchacha20poly1305_ietf_*, but the bulk work runs in OpenSSL's vectorised code.
// Each direction keeps its context keyed with the subkey of the last nonce prefix it saw: callers
// that draw nonces as (prefix per batch || counter), like the sealed volume, pay HChaCha20 and the
// re-key once per batch instead of once per message. (The subkey lives only inside the OpenSSL
// context, as a fixed key does for the other algorithms.)
class XChaChaAead : public Aead {
 public:
  XChaChaAead() : evp_(EVP_chacha20_poly1305()), subkey_(kKeySize) {}
  bool Init(const SecretBytes& key) {
    key_ = key.Clone();
    return evp_.ok();
  }
  AeadAlgorithm algorithm() const override { return AeadAlgorithm::kXChaCha20Poly1305; }
  size_t key_size() const override { return kKeySize; }
  size_t nonce_size() const override { return 24; }
  size_t tag_size() const override { return kTagSize; }
  Status Seal(ByteSpan nonce, ByteSpan ad, ByteSpan pt, MutableByteSpan out) override {
    COFFER_RETURN_IF_ERROR(CheckSizes(nonce.size(), 24, pt.size(), out.size(), true));
    uint8_t iv[12];
    const uint8_t* key = Derive(nonce, iv, enc_prefix_);
    Status s = evp_.Seal(key, iv, ad, pt, out);
    Finish(key, s.ok(), enc_prefix_);
    return s;
  }
  Status Open(ByteSpan nonce, ByteSpan ad, ByteSpan sealed, MutableByteSpan out) override {
    COFFER_RETURN_IF_ERROR(CheckSizes(nonce.size(), 24, sealed.size(), out.size(), false));
    uint8_t iv[12];
    const uint8_t* key = Derive(nonce, iv, dec_prefix_);
    Status s = evp_.Open(key, iv, ad, sealed, out);
    Finish(key, s.ok() || s.code() == StatusCode::kDataLoss, dec_prefix_);  // a bad tag keeps the key
    return s;
  }

 private:
  struct Prefix {
    bool valid = false;
    uint8_t bytes[16];
  };
  // The subkey to key the context with, or nullptr when it is already keyed for this prefix.
  const uint8_t* Derive(ByteSpan nonce, uint8_t iv[12], Prefix& keyed) {
    std::memset(iv, 0, 4);
    std::memcpy(iv + 4, nonce.data() + 16, 8);
    if (keyed.valid && std::memcmp(keyed.bytes, nonce.data(), 16) == 0) return nullptr;
    crypto_core_hchacha20(subkey_.reveal().data(), nonce.data(), key_.reveal().data(), nullptr);
    std::memcpy(keyed.bytes, nonce.data(), 16);
    keyed.valid = false;  // until the context has taken the subkey
    return subkey_.reveal().data();
  }
  // After the EVP call: wipe the subkey copy; the prefix counts as keyed only if the call got as far
  // as keying the context.
  void Finish(const uint8_t* key, bool keyed_now, Prefix& keyed) {
    if (key) sodium_memzero(subkey_.reveal().data(), kKeySize);
    keyed.valid = keyed_now;
  }
  EvpAead evp_;
  SecretBytes key_;
  SecretBytes subkey_;
  Prefix enc_prefix_, dec_prefix_;
};

}  // namespace

std::string_view AeadAlgorithmName(AeadAlgorithm algorithm) {
  switch (algorithm) {
    case AeadAlgorithm::kChaCha20Poly1305: return "chacha20-poly1305";
    case AeadAlgorithm::kXChaCha20Poly1305: return "xchacha20-poly1305";
    case AeadAlgorithm::kAes256Gcm: return "aes-256-gcm";
  }
  return "unknown";
}

Result<std::unique_ptr<Aead>> NewAead(AeadAlgorithm algorithm, const SecretBytes& key) {
  if (key.size() != kKeySize) {
    return InvalidArgument("AEAD key is " + std::to_string(key.size()) + " bytes, want 32");
  }
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  switch (algorithm) {
    case AeadAlgorithm::kChaCha20Poly1305: {
      auto a = std::make_unique<FixedKeyAead>(algorithm, EVP_chacha20_poly1305());
      if (!a->Init(key)) return Internal("OpenSSL ChaCha20-Poly1305 is unavailable");
      return std::unique_ptr<Aead>(std::move(a));
    }
    case AeadAlgorithm::kAes256Gcm: {
      auto a = std::make_unique<FixedKeyAead>(algorithm, EVP_aes_256_gcm());
      if (!a->Init(key)) return Internal("OpenSSL AES-256-GCM is unavailable");
      return std::unique_ptr<Aead>(std::move(a));
    }
    case AeadAlgorithm::kXChaCha20Poly1305: {
      auto a = std::make_unique<XChaChaAead>();
      if (!a->Init(key)) return Internal("OpenSSL ChaCha20-Poly1305 is unavailable");
      return std::unique_ptr<Aead>(std::move(a));
    }
  }
  return InvalidArgument("unknown AEAD algorithm");
}

}  // namespace coffer
