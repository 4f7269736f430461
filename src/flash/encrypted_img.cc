// esp_encrypted_img writer and reader. Byte layout: docs/format/esp_encrypted_img.md.
#include "coffer/flash/encrypted_img.h"

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>
#include <memory>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"
#include "coffer/base/secret.h"

namespace coffer::flash {
namespace {

constexpr size_t kWrapOffset = 4, kWrapSize = 384, kIvOffset = 388, kIvSize = 16, kSizeOffset = 404, kTagOffset = 408,
                 kTagSize = 16;
constexpr size_t kChunk = 1 << 20;
constexpr char kEccInfo[] = "_esp_enc_img_ecc";

struct PkeyDel { void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); } };
struct PctxDel { void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); } };
struct CctxDel { void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDel>;
using Pctx = std::unique_ptr<EVP_PKEY_CTX, PctxDel>;
using Cctx = std::unique_ptr<EVP_CIPHER_CTX, CctxDel>;

Result<Pkey> LoadKey(const std::string& path, bool want_private) {
  COFFER_ASSIGN_OR_RETURN(SecretBytes pem, ReadSecretFile(path));
  BIO* bio = BIO_new_mem_buf(pem.reveal().data(), int(pem.size()));
  EVP_PKEY* k = nullptr;
  if (!want_private) k = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  if (!k) {
    BIO_free(bio);
    bio = BIO_new_mem_buf(pem.reveal().data(), int(pem.size()));
    k = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  }
  BIO_free(bio);
  if (!k) {
    return InvalidArgument(path + " is not a PEM " + std::string(want_private ? "private" : "public or private") +
                           " key (RSA-3072 or EC P-256)");
  }
  return Pkey(k);
}

Result<KeyWrap> WrapOf(EVP_PKEY* k, const std::string& path) {
  if (EVP_PKEY_is_a(k, "RSA")) {
    if (EVP_PKEY_get_bits(k) != 3072) {
      return InvalidArgument(path + " is a " + std::to_string(EVP_PKEY_get_bits(k)) +
                             "-bit RSA key; esp_encrypted_img uses RSA-3072");
    }
    return KeyWrap::kRsa3072;
  }
  if (EVP_PKEY_is_a(k, "EC")) {
    char group[64] = {0};
    size_t len = 0;
    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len);
    if (std::string(group) != "prime256v1" && std::string(group) != "P-256") {
      return InvalidArgument(path + " is an EC key on " + std::string(group) + "; esp_encrypted_img uses P-256");
    }
    return KeyWrap::kEciesP256;
  }
  return InvalidArgument(path + " is neither an RSA-3072 nor an EC P-256 key");
}

Result<SecretBytes> Ecdh(EVP_PKEY* mine, EVP_PKEY* peer) {
  Pctx ctx(EVP_PKEY_CTX_new(mine, nullptr));
  size_t len = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &len) != 1 || len != 32) {
    return Unauthenticated("ECDH with the image's public key failed");
  }
  SecretBytes secret(32);
  if (EVP_PKEY_derive(ctx.get(), secret.reveal().data(), &len) != 1) return Unauthenticated("ECDH failed");
  return secret;
}

Result<SecretBytes> Hkdf(const SecretBytes& ikm, ByteSpan salt) {
  Pctx ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr));
  SecretBytes out(32);
  size_t len = 32;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), salt.data(), int(salt.size())) != 1 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), ikm.reveal().data(), int(ikm.size())) != 1 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), reinterpret_cast<const unsigned char*>(kEccInfo), int(strlen(kEccInfo))) != 1 ||
      EVP_PKEY_derive(ctx.get(), out.reveal().data(), &len) != 1) {
    return Internal("HKDF failed");
  }
  return out;
}

Result<Pkey> PointToKey(ByteSpan xy) {
  uint8_t pt[65];
  pt[0] = 0x04;
  std::memcpy(pt + 1, xy.data(), 64);
  Pctx ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                         OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof pt), OSSL_PARAM_construct_end()};
  EVP_PKEY* k = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 || EVP_PKEY_fromdata(ctx.get(), &k, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return DataLoss("the image's server public key is not a valid P-256 point");
  }
  Pkey key(k);
  // fromdata does not check the point is on the curve; a public-key check does.
  Pctx check(EVP_PKEY_CTX_new(key.get(), nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) return DataLoss("the image's server public key is not on P-256");
  return key;
}

Result<Cctx> Gcm(const SecretBytes& key, ByteSpan iv, bool encrypt) {
  Cctx c(EVP_CIPHER_CTX_new());
  if (!c || EVP_CipherInit_ex(c.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr, encrypt) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.get(), EVP_CTRL_GCM_SET_IVLEN, int(iv.size()), nullptr) != 1 ||
      EVP_CipherInit_ex(c.get(), nullptr, nullptr, key.reveal().data(), iv.data(), encrypt) != 1) {
    return Internal("AES-256-GCM setup failed");
  }
  return c;
}

}  // namespace

Result<EncImgInfo> EncryptImg(const std::string& key_pem_path, const std::string& in_path, const std::string& out_path,
                              const ProgressFn& progress) {
  if (SameFile(in_path, out_path)) return InvalidArgument("input and output are the same file");
  COFFER_ASSIGN_OR_RETURN(Pkey pub, LoadKey(key_pem_path, false));
  COFFER_ASSIGN_OR_RETURN(KeyWrap wrap, WrapOf(pub.get(), key_pem_path));
  COFFER_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(in_path));
  if (in.size() > 0xFFFFFFFFull) return InvalidArgument(in_path + " is larger than the format's 32-bit size field");
  Bytes header(kEncImgHeaderSize, 0);
  PutLe32(header.data(), kEncImgMagic);
  SecretBytes gcm_key;
  if (wrap == KeyWrap::kRsa3072) {
    gcm_key = SecretBytes::Random(32);
    Pctx ctx(EVP_PKEY_CTX_new(pub.get(), nullptr));
    size_t outlen = kWrapSize;
    if (!ctx || EVP_PKEY_encrypt_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_encrypt(ctx.get(), header.data() + kWrapOffset, &outlen, gcm_key.reveal().data(), 32) != 1 ||
        outlen != kWrapSize) {
      return Internal("RSA key wrap failed");
    }
  } else {
    EVP_PKEY* eph_raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    if (!eph_raw) return Internal("P-256 key generation failed");
    Pkey eph(eph_raw);
    COFFER_ASSIGN_OR_RETURN(SecretBytes shared, Ecdh(eph.get(), pub.get()));
    uint8_t pt[65];
    size_t len = 0;
    if (EVP_PKEY_get_octet_string_param(eph.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt, &len) != 1 || len != 65) {
      return Internal("could not encode the ephemeral public key");
    }
    std::memcpy(header.data() + kWrapOffset, pt + 1, 64);
    FillRandom(MutableByteSpan(header.data() + kWrapOffset + 64, 32));  // HKDF salt
    COFFER_ASSIGN_OR_RETURN(gcm_key, Hkdf(shared, ByteSpan(header.data() + kWrapOffset + 64, 32)));
  }
  FillRandom(MutableByteSpan(header.data() + kIvOffset, kIvSize));
  PutLe32(header.data() + kSizeOffset, uint32_t(in.size()));
  COFFER_ASSIGN_OR_RETURN(Cctx gcm, Gcm(gcm_key, ByteSpan(header.data() + kIvOffset, kIvSize), true));
  COFFER_ASSIGN_OR_RETURN(AtomicOutput out, AtomicOutput::Create(out_path, 0644));
  COFFER_RETURN_IF_ERROR(out.Write(header));
  Bytes buf(kChunk), ct(kChunk + 16);
  for (uint64_t pos = 0; pos < in.size(); pos += kChunk) {
    size_t n = size_t(std::min<uint64_t>(kChunk, in.size() - pos));
    COFFER_RETURN_IF_ERROR(in.ReadAt(pos, MutableByteSpan(buf.data(), n)));
    int outl = 0;
    if (EVP_EncryptUpdate(gcm.get(), ct.data(), &outl, buf.data(), int(n)) != 1) return Internal("AES-GCM failed");
    COFFER_RETURN_IF_ERROR(out.Write(ByteSpan(ct.data(), size_t(outl))));
    if (progress) progress(pos + n, in.size());
  }
  int outl = 0;
  if (EVP_EncryptFinal_ex(gcm.get(), ct.data(), &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(gcm.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, header.data() + kTagOffset) != 1) {
    return Internal("AES-GCM finish failed");
  }
  COFFER_RETURN_IF_ERROR(out.WriteAt(kTagOffset, ByteSpan(header.data() + kTagOffset, kTagSize)));
  COFFER_RETURN_IF_ERROR(out.Commit());
  EncImgInfo info;
  info.wrap = wrap;
  info.bin_size = uint32_t(in.size());
  info.iv_hex = HexEncode(ByteSpan(header.data() + kIvOffset, kIvSize));
  info.tag_hex = HexEncode(ByteSpan(header.data() + kTagOffset, kTagSize));
  return info;
}

Result<EncImgInfo> DecryptImg(const std::string& key_pem_path, const std::string& in_path, const std::string& out_path,
                              const ProgressFn& progress) {
  if (SameFile(in_path, out_path)) return InvalidArgument("input and output are the same file");
  COFFER_ASSIGN_OR_RETURN(Pkey priv, LoadKey(key_pem_path, true));
  COFFER_ASSIGN_OR_RETURN(KeyWrap wrap, WrapOf(priv.get(), key_pem_path));
  COFFER_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(in_path));
  if (in.size() < kEncImgHeaderSize) {
    return DataLoss(in_path + " is " + std::to_string(in.size()) + " bytes, shorter than the 512-byte esp_encrypted_img header");
  }
  Bytes header(kEncImgHeaderSize);
  COFFER_RETURN_IF_ERROR(in.ReadAt(0, header));
  if (GetLe32(header.data()) != kEncImgMagic) {
    return InvalidArgument(in_path + " is not an esp_encrypted_img (magic " + HexEncode(ByteSpan(header.data(), 4)) +
                           ", expected cfb68807)");
  }
  uint32_t bin_size = GetLe32(header.data() + kSizeOffset);
  if (uint64_t(bin_size) + kEncImgHeaderSize != in.size()) {
    return DataLoss(in_path + " holds " + std::to_string(in.size() - kEncImgHeaderSize) +
                    " bytes of ciphertext but its header says " + std::to_string(bin_size) + " (truncated or extended)");
  }
  SecretBytes gcm_key;
  if (wrap == KeyWrap::kRsa3072) {
    Pctx ctx(EVP_PKEY_CTX_new(priv.get(), nullptr));
    SecretBytes plain(kWrapSize);
    size_t outlen = plain.size();
    if (!ctx || EVP_PKEY_decrypt_init(ctx.get()) != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_PADDING) != 1 ||
        EVP_PKEY_decrypt(ctx.get(), plain.reveal().data(), &outlen, header.data() + kWrapOffset, kWrapSize) != 1 ||
        outlen != 32) {
      return Unauthenticated("the image's AES key does not unwrap with " + key_pem_path + " (wrong RSA key?)");
    }
    gcm_key = SecretBytes::CopyOf(plain.reveal().subspan(0, 32));
  } else {
    COFFER_ASSIGN_OR_RETURN(Pkey server, PointToKey(ByteSpan(header.data() + kWrapOffset, 64)));
    COFFER_ASSIGN_OR_RETURN(SecretBytes shared, Ecdh(priv.get(), server.get()));
    COFFER_ASSIGN_OR_RETURN(gcm_key, Hkdf(shared, ByteSpan(header.data() + kWrapOffset + 64, 32)));
  }
  COFFER_ASSIGN_OR_RETURN(Cctx gcm, Gcm(gcm_key, ByteSpan(header.data() + kIvOffset, kIvSize), false));
  COFFER_ASSIGN_OR_RETURN(AtomicOutput out, AtomicOutput::Create(out_path, 0600));
  Bytes buf(kChunk), pt(kChunk + 16);
  for (uint64_t pos = 0; pos < bin_size; pos += kChunk) {
    size_t n = size_t(std::min<uint64_t>(kChunk, bin_size - pos));
    COFFER_RETURN_IF_ERROR(in.ReadAt(kEncImgHeaderSize + pos, MutableByteSpan(buf.data(), n)));
    int outl = 0;
    if (EVP_DecryptUpdate(gcm.get(), pt.data(), &outl, buf.data(), int(n)) != 1) return Internal("AES-GCM failed");
    COFFER_RETURN_IF_ERROR(out.Write(ByteSpan(pt.data(), size_t(outl))));
    if (progress) progress(pos + n, bin_size);
  }
  int outl = 0;
  if (EVP_CIPHER_CTX_ctrl(gcm.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, header.data() + kTagOffset) != 1 ||
      EVP_DecryptFinal_ex(gcm.get(), pt.data(), &outl) != 1) {
    // The temporary output is removed: unauthenticated plaintext never reaches out_path.
    return DataLoss(in_path + " failed AES-GCM authentication: the image was changed or the key is wrong");
  }
  COFFER_RETURN_IF_ERROR(out.Commit());
  EncImgInfo info;
  info.wrap = wrap;
  info.bin_size = bin_size;
  info.iv_hex = HexEncode(ByteSpan(header.data() + kIvOffset, kIvSize));
  info.tag_hex = HexEncode(ByteSpan(header.data() + kTagOffset, kTagSize));
  return info;
}

}  // namespace coffer::flash
