#include "coffer/crypt/hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <sodium.h>

#include <cstdlib>

namespace coffer {

Hash256 Blake2b256(std::initializer_list<ByteSpan> parts) {
  Hash256 out;
  Blake2bKeyed(out, {}, parts);
  return out;
}

Hash256 Sha256(std::initializer_list<ByteSpan> parts) {
  // One fetched digest and one context per thread: EVP's per-call fetch costs as much as hashing
  // a few hundred bytes.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  struct Ctx {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Ctx() { EVP_MD_CTX_free(ctx); }
  };
  thread_local Ctx t;
  Hash256 out;
  unsigned int len = 0;
  bool ok = md && t.ctx && EVP_DigestInit_ex2(t.ctx, md, nullptr) == 1;
  for (ByteSpan p : parts) ok = ok && EVP_DigestUpdate(t.ctx, p.data(), p.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(t.ctx, out.data(), &len) == 1 && len == out.size();
  if (!ok) std::abort();  // SHA-256 is always present in OpenSSL 3; nothing sensible can follow
  return out;
}

void Blake2bKeyed(MutableByteSpan out, ByteSpan key, std::initializer_list<ByteSpan> parts) {
  crypto_generichash_state st;
  crypto_generichash_init(&st, key.empty() ? nullptr : key.data(), key.size(), out.size());
  for (ByteSpan p : parts) crypto_generichash_update(&st, p.data(), p.size());
  crypto_generichash_final(&st, out.data(), out.size());
  sodium_memzero(&st, sizeof st);
}

Result<SecretBytes> HkdfSha256(ByteSpan ikm, ByteSpan salt, std::string_view info, size_t len) {
  if (len == 0 || len > 255 * 32) return InvalidArgument("HKDF output length out of range");
  SecretBytes out(len);
  EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr);
  static const uint8_t kNoSalt[1] = {0};
  bool ok = pctx && EVP_PKEY_derive_init(pctx) > 0 && EVP_PKEY_CTX_set_hkdf_md(pctx, EVP_sha256()) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_salt(pctx, salt.empty() ? kNoSalt : salt.data(), int(salt.size())) > 0 &&
            EVP_PKEY_CTX_set1_hkdf_key(pctx, ikm.data(), int(ikm.size())) > 0 &&
            EVP_PKEY_CTX_add1_hkdf_info(pctx, reinterpret_cast<const uint8_t*>(info.data()), int(info.size())) > 0;
  size_t out_len = len;
  ok = ok && EVP_PKEY_derive(pctx, out.reveal().data(), &out_len) > 0 && out_len == len;
  EVP_PKEY_CTX_free(pctx);
  if (!ok) return Internal("HKDF-SHA256 failed");
  return out;
}

Hash256 HmacSha256(ByteSpan key, ByteSpan data) {
  Hash256 out{};
  unsigned int n = 0;
  static const uint8_t kEmpty[1] = {0};
  HMAC(EVP_sha256(), key.empty() ? kEmpty : key.data(), int(key.size()), data.empty() ? kEmpty : data.data(),
       data.size(), out.data(), &n);
  return out;
}

Result<SecretBytes> Argon2id(ByteSpan password, ByteSpan salt, const Argon2Params& params, size_t len) {
  if (salt.size() != crypto_pwhash_SALTBYTES) return InvalidArgument("Argon2id salt must be 16 bytes");
  if (params.ops < crypto_pwhash_OPSLIMIT_MIN || params.ops > crypto_pwhash_OPSLIMIT_MAX ||
      params.mem_bytes < crypto_pwhash_MEMLIMIT_MIN || params.mem_bytes > (uint64_t(1) << 42)) {
    return InvalidArgument("Argon2id parameters out of range (ops " + std::to_string(params.ops) + ", memory " +
                           std::to_string(params.mem_bytes) + " bytes)");
  }
  if (sodium_init() < 0) return Internal("libsodium failed to initialise");
  SecretBytes out(len);
  if (crypto_pwhash(out.reveal().data(), len, reinterpret_cast<const char*>(password.data()), password.size(),
                    salt.data(), params.ops, size_t(params.mem_bytes), crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return NoSpace("Argon2id could not allocate " + std::to_string(params.mem_bytes >> 20) + " MiB");
  }
  return out;
}

}  // namespace coffer
