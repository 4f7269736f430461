#include "coffer/envsecret/env_secret.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <memory>

#include "coffer/base/random.h"

namespace coffer::envsecret {
namespace {

constexpr size_t kGcmNonce = 12;
constexpr size_t kTag = 16;
constexpr size_t kHeaderSize = 48;  // magic..key check (docs/format/env_secret.md)
constexpr size_t kSaltSize = 16;
constexpr size_t kCheckSize = 16;
constexpr uint32_t kMaxOps = 16;
constexpr uint32_t kMaxMemKib = 1024 * 1024;  // 1 GiB: a hostile header cannot ask for more
constexpr uint32_t kMinMemKib = 8;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

// AES-256-GCM with OpenSSL (libsodium's needs AES-NI). out = ciphertext || tag.
Bytes AesGcmSeal(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) {
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  Bytes out(plaintext.size() + kTag);
  int len = 0;
  EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(nonce.size()), nullptr);
  EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data());
  if (!aad.empty()) EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), int(aad.size()));
  EVP_EncryptUpdate(ctx.get(), out.data(), &len, plaintext.data(), int(plaintext.size()));
  EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, out.data() + plaintext.size());
  return out;
}

// Returns false when the tag does not verify; out is wiped then.
bool AesGcmOpen(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan sealed, SecretBytes& out) {
  if (sealed.size() < kTag) return false;
  size_t n = sealed.size() - kTag;
  out = SecretBytes(n);
  CipherCtx ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0;
  bool ok = EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, int(nonce.size()), nullptr) == 1 &&
            EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key.data(), nonce.data()) == 1;
  if (ok && !aad.empty()) ok = EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), int(aad.size())) == 1;
  if (ok) ok = EVP_DecryptUpdate(ctx.get(), out.reveal().data(), &len, sealed.data(), int(n)) == 1;
  if (ok) {
    ok = EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag,
                             const_cast<uint8_t*>(sealed.data() + n)) == 1;
  }
  int fin = 0;
  if (ok) ok = EVP_DecryptFinal_ex(ctx.get(), out.reveal().data() + len, &fin) == 1;
  if (!ok) out = SecretBytes();
  return ok;
}

size_t NonceSize(Aead aead) { return aead == Aead::kAes256Gcm ? kGcmNonce : 24; }

// Master key K for one value: Argon2id(passphrase, salt) or BLAKE2b-256(key=raw, "coffer env v1" || salt).
Result<SecretBytes> DeriveMaster(const KeySource& key, ByteSpan salt, uint32_t ops, uint32_t mem_kib) {
  SecretBytes k(32);
  if (key.kdf == Kdf::kArgon2id) {
    if (crypto_pwhash(k.reveal().data(), 32, reinterpret_cast<const char*>(key.secret.reveal().data()),
                      key.secret.size(), salt.data(), ops, size_t(mem_kib) * 1024,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
      return NoSpace("Argon2id could not allocate " + std::to_string(mem_kib) + " KiB");
    }
    return k;
  }
  if (key.secret.size() != 32) return InvalidArgument("a raw env key must be exactly 32 bytes");
  static constexpr std::string_view kLabel = "coffer env v1";
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.secret.reveal().data(), 32, 32);
  crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kLabel.data()), kLabel.size());
  crypto_generichash_update(&st, salt.data(), salt.size());
  crypto_generichash_final(&st, k.reveal().data(), 32);
  return k;
}

void Subkey(const SecretBytes& master, std::string_view label, std::span<uint8_t> out) {
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const uint8_t*>(label.data()), label.size(),
                     master.reveal().data(), master.size());
}

Bytes Aad(ByteSpan header, std::string_view name) {
  Bytes aad(header.begin(), header.end());
  Append(aad, AsBytes(name));
  return aad;
}

Result<Bytes> DecodeText(std::string_view value) {
  if (!IsCofferFormat(value)) return InvalidArgument("not coffer's env format (no CENV1. prefix)");
  std::string_view b64 = value.substr(kCofferPrefix.size());
  if (b64.empty()) return InvalidArgument("value is empty after the CENV1. prefix");
  Bytes bin(b64.size());
  size_t bin_len = 0;
  if (sodium_base642bin(bin.data(), bin.size(), b64.data(), b64.size(), nullptr, &bin_len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
    return InvalidArgument("value is not valid base64url");
  }
  bin.resize(bin_len);
  return bin;
}

}  // namespace

SecretBytes SecureStoreKey(ByteSpan password) {
  SecretBytes key(32);
  unsigned int len = 32;
  EVP_Digest(password.data(), password.size(), key.reveal().data(), &len, EVP_sha256(), nullptr);
  return key;
}

Result<SecretBytes> DecryptSecureStore(std::string_view hex, const SecretBytes& key) {
  if (hex.size() % 2 != 0) return InvalidArgument("value has an odd number of hex digits");
  auto raw = HexDecode(hex);
  if (!raw.ok()) return InvalidArgument("value is not hex");
  if (raw->size() < kGcmNonce + kTag) {
    return InvalidArgument("value is " + std::to_string(raw->size()) + " bytes, shorter than nonce(12)+tag(16)");
  }
  ByteSpan all(*raw);
  SecretBytes out;
  if (!AesGcmOpen(key.reveal(), all.first(kGcmNonce), {}, all.subspan(kGcmNonce), out)) {
    return Unauthenticated("value failed authentication (wrong password, or the value was changed)");
  }
  return out;
}

std::string EncryptSecureStore(ByteSpan plaintext, const SecretBytes& key) {
  Bytes nonce = RandomBytes(kGcmNonce);
  Bytes sealed = AesGcmSeal(key.reveal(), nonce, {}, plaintext);
  Bytes all = nonce;
  Append(all, sealed);
  return HexEncode(all);
}

bool IsCofferFormat(std::string_view value) { return value.substr(0, kCofferPrefix.size()) == kCofferPrefix; }

Result<CofferHeader> ParseCofferHeader(std::string_view value) {
  COFFER_ASSIGN_OR_RETURN(Bytes bin, DecodeText(value));
  if (bin.size() < kHeaderSize) return InvalidArgument("value is truncated (no complete header)");
  if (std::string_view(reinterpret_cast<const char*>(bin.data()), 4) != "CENV") {
    return InvalidArgument("bad magic (expected CENV)");
  }
  CofferHeader h;
  h.version = bin[4];
  if (h.version != 1) return Unsupported("env format version " + std::to_string(h.version) + " (this coffer reads 1)");
  if (bin[5] != uint8_t(Kdf::kRawKey) && bin[5] != uint8_t(Kdf::kArgon2id)) {
    return Unsupported("unknown KDF id " + std::to_string(bin[5]));
  }
  if (bin[6] != uint8_t(Aead::kXChaCha20Poly1305) && bin[6] != uint8_t(Aead::kAes256Gcm)) {
    return Unsupported("unknown AEAD id " + std::to_string(bin[6]));
  }
  if (bin[7] != 0) return Unsupported("unknown flags " + std::to_string(bin[7]));
  h.kdf = Kdf(bin[5]);
  h.aead = Aead(bin[6]);
  h.ops_limit = GetLe32(&bin[8]);
  h.mem_limit_kib = GetLe32(&bin[12]);
  if (h.kdf == Kdf::kArgon2id) {
    if (h.ops_limit < 1 || h.ops_limit > kMaxOps || h.mem_limit_kib < kMinMemKib || h.mem_limit_kib > kMaxMemKib) {
      return InvalidArgument("Argon2id cost out of range (ops 1.." + std::to_string(kMaxOps) + ", memory 8 KiB..1 GiB)");
    }
  } else if (h.ops_limit != 0 || h.mem_limit_kib != 0) {
    return InvalidArgument("raw-key value carries KDF cost fields");
  }
  size_t nonce = NonceSize(h.aead);
  if (bin.size() < kHeaderSize + nonce + kTag) return InvalidArgument("value is truncated (no nonce and tag)");
  h.ciphertext_size = bin.size() - kHeaderSize - nonce;
  return h;
}

Result<std::string> EncryptCoffer(std::string_view name, ByteSpan plaintext, const KeySource& key,
                                  const EncryptOptions& options) {
  Bytes bin(kHeaderSize);
  std::memcpy(bin.data(), "CENV", 4);
  bin[4] = 1;
  bin[5] = uint8_t(key.kdf);
  bin[6] = uint8_t(options.aead);
  bin[7] = 0;
  if (key.kdf == Kdf::kArgon2id) {
    if (options.ops_limit < 1 || options.ops_limit > kMaxOps || options.mem_limit_kib < kMinMemKib ||
        options.mem_limit_kib > kMaxMemKib) {
      return InvalidArgument("Argon2id cost out of range");
    }
    PutLe32(&bin[8], options.ops_limit);
    PutLe32(&bin[12], options.mem_limit_kib);
  }
  FillRandom(std::span<uint8_t>(bin.data() + 16, kSaltSize));
  COFFER_ASSIGN_OR_RETURN(SecretBytes master, DeriveMaster(key, ByteSpan(bin).subspan(16, kSaltSize),
                                                           GetLe32(&bin[8]), GetLe32(&bin[12])));
  Subkey(master, "coffer-env-check", std::span<uint8_t>(bin.data() + 32, kCheckSize));
  SecretBytes aead_key(32);
  Subkey(master, "coffer-env-aead", aead_key.reveal());
  Bytes aad = Aad(ByteSpan(bin).first(kHeaderSize), name);
  Bytes nonce = RandomBytes(NonceSize(options.aead));
  Append(bin, nonce);
  if (options.aead == Aead::kAes256Gcm) {
    Append(bin, AesGcmSeal(aead_key.reveal(), nonce, aad, plaintext));
  } else {
    size_t off = bin.size();
    bin.resize(off + plaintext.size() + kTag);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(&bin[off], &clen, plaintext.data(), plaintext.size(), aad.data(),
                                               aad.size(), nullptr, nonce.data(), aead_key.reveal().data());
  }
  std::string text(kCofferPrefix);
  std::string b64(sodium_base64_ENCODED_LEN(bin.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(b64.data(), b64.size(), bin.data(), bin.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  b64.resize(std::strlen(b64.c_str()));
  return text + b64;
}

Result<SecretBytes> DecryptCoffer(std::string_view name, std::string_view value, const KeySource& key) {
  COFFER_ASSIGN_OR_RETURN(CofferHeader h, ParseCofferHeader(value));
  if (h.kdf != key.kdf) {
    return Unauthenticated(std::string("value was encrypted with ") +
                           (h.kdf == Kdf::kArgon2id ? "a passphrase" : "a key file or key server secret") +
                           ", not the kind of key given");
  }
  COFFER_ASSIGN_OR_RETURN(Bytes bin, DecodeText(value));
  ByteSpan all(bin);
  COFFER_ASSIGN_OR_RETURN(SecretBytes master,
                          DeriveMaster(key, all.subspan(16, kSaltSize), h.ops_limit, h.mem_limit_kib));
  uint8_t check[kCheckSize];
  Subkey(master, "coffer-env-check", check);
  if (!ConstantTimeEquals(check, all.subspan(32, kCheckSize))) {
    return Unauthenticated("wrong passphrase or key");
  }
  SecretBytes aead_key(32);
  Subkey(master, "coffer-env-aead", aead_key.reveal());
  Bytes aad = Aad(all.first(kHeaderSize), name);
  size_t nlen = NonceSize(h.aead);
  ByteSpan nonce = all.subspan(kHeaderSize, nlen);
  ByteSpan sealed = all.subspan(kHeaderSize + nlen);
  SecretBytes out;
  bool ok;
  if (h.aead == Aead::kAes256Gcm) {
    ok = AesGcmOpen(aead_key.reveal(), nonce, aad, sealed, out);
  } else {
    out = SecretBytes(sealed.size() - kTag);
    unsigned long long mlen = 0;
    ok = crypto_aead_xchacha20poly1305_ietf_decrypt(out.reveal().data(), &mlen, nullptr, sealed.data(),
                                                    sealed.size(), aad.data(), aad.size(), nonce.data(),
                                                    aead_key.reveal().data()) == 0;
  }
  if (!ok) return DataLoss("value failed authentication with the right key: it was changed or renamed");
  return out;
}

}  // namespace coffer::envsecret
