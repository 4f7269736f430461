// ESP32 flash encryption schemes. See include/coffer/flash/flash_cipher.h and docs/format/esp_flash.md.
//
// ESP32 scheme: for each 16-byte block at flash offset o, the AES-256 key is key ^ tweak(o >> 5),
// the block is byte-reversed, run through AES *decryption* to encrypt (the hardware uses AES
// inverted), and reversed again. The key changes every 32 bytes, so the hot path expands keys with
// AES-NI directly (OpenSSL's EVP re-key costs ~10x the cipher work); other CPUs use EVP.
//
// XTS scheme: each 128-byte unit at address u is byte-reversed, XTS-encrypted with tweak
// LE32(u) || 0^12, and reversed. Reversal maps block k of the unit to XTS position 7-k with its bytes
// reversed, so every 16-byte block is independent: T = E_K2(tweak) * alpha^(7-k), and
// out = rev(E_K1(rev(in) ^ T) ^ T). We compute that with OpenSSL ECB over whole buffers.
#include "coffer/flash/flash_cipher.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#define COFFER_FLASH_AESNI 1
#endif

namespace coffer::flash {
namespace {

std::string Hex0x(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// 256-bit integers as 4 big-endian-ordered 64-bit limbs: w[0] holds key bytes 0..7.
using U256 = std::array<uint64_t, 4>;

U256 FromHex(const char* hex) {
  U256 v{};
  for (int limb = 0; limb < 4; ++limb) {
    uint64_t x = 0;
    for (int i = 0; i < 16; ++i) {
      char c = hex[limb * 16 + i];
      x = (x << 4) | uint64_t(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    v[limb] = x;
  }
  return v;
}

struct TweakConstants {
  U256 mul1, mul2, mul2_mask;
  U256 range[16];
};

const TweakConstants& Constants() {
  static const TweakConstants c = [] {
    TweakConstants t;
    // espsecure's forward bit-order masks, digit for digit.
    t.mul1 = FromHex("0000200004000080000004000080001000000200004000080000040000800010");
    t.mul2 = FromHex("0000000000000000200000000000000010000000000000002000000000000001");
    t.mul2_mask = FromHex("000000000000007FE00000000000000FF000000000000007E00000000000000F");
    const U256 r1 = FromHex("FFFFFFFFFFFFFFFFE00000000000000000000000000000000000000000000000");
    const U256 r2 = FromHex("00000000000000001FFFFFFFFFFFFFFFF0000000000000000000000000000000");
    const U256 r4 = FromHex("000000000000000000000000000000000FFFFFFFFFFFFFFFE000000000000000");
    const U256 r8 = FromHex("0000000000000000000000000000000000000000000000001FFFFFFFFFFFFFFF");
    for (uint32_t conf = 0; conf < 16; ++conf) {
      U256 r{};
      for (int i = 0; i < 4; ++i) {
        if (conf & 1) r[i] |= r1[i];
        if (conf & 2) r[i] |= r2[i];
        if (conf & 4) r[i] |= r4[i];
        if (conf & 8) r[i] |= r8[i];
      }
      t.range[conf] = r;
    }
    return t;
  }();
  return c;
}

// a * b mod 2^256 (Python's product masked by the 256-bit tweak range gives the same bits).
U256 MulSmall(const U256& a, uint64_t b) {
  U256 r{};
  unsigned __int128 carry = 0;
  for (int i = 3; i >= 0; --i) {
    unsigned __int128 p = (unsigned __int128)a[i] * b + carry;
    r[i] = uint64_t(p);
    carry = p >> 64;
  }
  return r;
}

void TweakMask(uint64_t offset, uint32_t conf, U256& mask) {
  const TweakConstants& c = Constants();
  uint64_t addr = offset >> 5;
  U256 m1 = MulSmall(c.mul1, addr);
  U256 m2 = MulSmall(c.mul2, addr);
  for (int i = 0; i < 4; ++i) mask[i] = (m1[i] | (m2[i] & c.mul2_mask[i])) & c.range[conf & 0xF][i];
}

inline void Reverse16(const uint8_t* in, uint8_t* out) {
  uint64_t lo, hi;
  std::memcpy(&lo, in, 8);
  std::memcpy(&hi, in + 8, 8);
  lo = __builtin_bswap64(lo);
  hi = __builtin_bswap64(hi);
  std::memcpy(out, &hi, 8);
  std::memcpy(out + 8, &lo, 8);
}

// Multiplies an XTS tweak by alpha (x) in GF(2^128), IEEE 1619 byte order.
inline void XtsDouble(uint8_t t[16]) {
  uint64_t lo, hi;
  std::memcpy(&lo, t, 8);
  std::memcpy(&hi, t + 8, 8);
  uint64_t carry = hi >> 63;
  hi = (hi << 1) | (lo >> 63);
  lo = (lo << 1) ^ (carry * 0x87);
  std::memcpy(t, &lo, 8);
  std::memcpy(t + 8, &hi, 8);
}

struct EvpCtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using EvpCtx = std::unique_ptr<EVP_CIPHER_CTX, EvpCtxDeleter>;

Result<EvpCtx> MakeEcb(const EVP_CIPHER* cipher, const uint8_t* key, bool encrypt) {
  EvpCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Internal("EVP_CIPHER_CTX_new failed");
  if (EVP_CipherInit_ex(ctx.get(), cipher, nullptr, key, nullptr, encrypt ? 1 : 0) != 1) {
    return Internal("AES key setup failed");
  }
  EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
  return ctx;
}

Status EcbRun(EVP_CIPHER_CTX* ctx, const uint8_t* in, uint8_t* out, size_t n) {
  int outl = 0;
  if (EVP_CipherUpdate(ctx, out, &outl, in, int(n)) != 1 || size_t(outl) != n) {
    return Internal("AES-ECB failed");
  }
  return Status::Ok();
}

#if COFFER_FLASH_AESNI
bool HaveAesNi() {
  static const bool have = __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
  return have;
}

#define AESNI_TARGET __attribute__((target("aes,sse4.1")))

AESNI_TARGET inline __m128i ExpandA(__m128i t1, __m128i t2) {
  t2 = _mm_shuffle_epi32(t2, 0xff);
  __m128i t4 = _mm_slli_si128(t1, 4);
  t1 = _mm_xor_si128(t1, t4);
  t4 = _mm_slli_si128(t4, 4);
  t1 = _mm_xor_si128(t1, t4);
  t4 = _mm_slli_si128(t4, 4);
  t1 = _mm_xor_si128(t1, t4);
  return _mm_xor_si128(t1, t2);
}

AESNI_TARGET inline __m128i ExpandB(__m128i t1, __m128i t3) {
  __m128i t4 = _mm_aeskeygenassist_si128(t1, 0x0);
  __m128i t2 = _mm_shuffle_epi32(t4, 0xaa);
  t4 = _mm_slli_si128(t3, 4);
  t3 = _mm_xor_si128(t3, t4);
  t4 = _mm_slli_si128(t4, 4);
  t3 = _mm_xor_si128(t3, t4);
  t4 = _mm_slli_si128(t4, 4);
  t3 = _mm_xor_si128(t3, t4);
  return _mm_xor_si128(t3, t2);
}

// AES-256 encryption round keys rk[0..14].
AESNI_TARGET inline void Aes256Expand(const uint8_t key[32], __m128i rk[15]) {
  __m128i t1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
  __m128i t3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16));
  rk[0] = t1;
  rk[1] = t3;
#define COFFER_EXP(i, rcon)                                   \
  t1 = ExpandA(t1, _mm_aeskeygenassist_si128(t3, rcon));      \
  rk[i] = t1;                                                 \
  if (i + 1 < 15) {                                           \
    t3 = ExpandB(t1, t3);                                     \
    rk[i + 1] = t3;                                           \
  }
  COFFER_EXP(2, 0x01) COFFER_EXP(4, 0x02) COFFER_EXP(6, 0x04) COFFER_EXP(8, 0x08)
  COFFER_EXP(10, 0x10) COFFER_EXP(12, 0x20)
  t1 = ExpandA(t1, _mm_aeskeygenassist_si128(t3, 0x40));
  rk[14] = t1;
#undef COFFER_EXP
}

// One 32-byte (or 16-byte) ESP32 flash block group with its own tweaked key. `flash_encrypt` true
// means the flash-encrypt direction, which is AES decryption.
AESNI_TARGET void Esp32GroupAesNi(const uint8_t key[32], const uint8_t* in, uint8_t* out, size_t nblocks,
                                  bool flash_encrypt) {
  __m128i rk[15];
  Aes256Expand(key, rk);
  const __m128i rev = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  if (flash_encrypt) {
    __m128i dk[15];
    dk[0] = rk[14];
    for (int i = 1; i < 14; ++i) dk[i] = _mm_aesimc_si128(rk[14 - i]);
    dk[14] = rk[0];
    for (size_t b = 0; b < nblocks; ++b) {
      __m128i x = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * b)), rev);
      x = _mm_xor_si128(x, dk[0]);
      for (int i = 1; i < 14; ++i) x = _mm_aesdec_si128(x, dk[i]);
      x = _mm_aesdeclast_si128(x, dk[14]);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * b), _mm_shuffle_epi8(x, rev));
    }
  } else {
    for (size_t b = 0; b < nblocks; ++b) {
      __m128i x = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * b)), rev);
      x = _mm_xor_si128(x, rk[0]);
      for (int i = 1; i < 14; ++i) x = _mm_aesenc_si128(x, rk[i]);
      x = _mm_aesenclast_si128(x, rk[14]);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * b), _mm_shuffle_epi8(x, rev));
    }
  }
}
#endif

}  // namespace

std::string_view SchemeName(Scheme scheme) { return scheme == Scheme::kEsp32 ? "esp32" : "xts"; }

Result<Scheme> ParseScheme(std::string_view name) {
  if (name == "esp32") return Scheme::kEsp32;
  if (name == "xts" || name == "aes-xts" || name == "aes_xts") return Scheme::kXts;
  return InvalidArgument("unknown flash encryption scheme '" + std::string(name) + "' (use esp32 or xts)");
}

std::string FlashKey::Describe() const {
  switch (file_length) {
    case 16: return "Using 128-bit key (extended).";
    case 24: return "Using 192-bit key (extended).";
    case 32: return "Using 256-bit key.";
    default: return "Using 512-bit key.";
  }
}

Result<FlashKey> PrepareFlashKey(Scheme scheme, const SecretBytes& raw) {
  const size_t n = raw.size();
  if (n != 16 && n != 24 && n != 32 && n != 64) {
    return InvalidArgument("Key file contains wrong length (" + std::to_string(n) +
                           " bytes), 16, 24, 32 or 64 expected.");
  }
  if (scheme == Scheme::kXts && n == 24) {
    return InvalidArgument("AES_XTS supports only 128, 256, and 512-bit keys. Provided key is " +
                           std::to_string(n * 8) + " bits.");
  }
  if (scheme == Scheme::kEsp32 && n != 24 && n != 32) {
    return InvalidArgument("ESP32 supports only 192 and 256-bit keys. Provided key is " + std::to_string(n * 8) +
                           " bits. Use --aes_xts for other chips.");
  }
  FlashKey out;
  out.scheme = scheme;
  out.file_length = n;
  auto in = raw.reveal();
  if (n == 16) {
    out.key = SecretBytes(32);
    SHA256(in.data(), 16, out.key.reveal().data());
  } else if (n == 24) {
    out.key = SecretBytes(32);
    std::memcpy(out.key.reveal().data(), in.data(), 24);
    std::memcpy(out.key.reveal().data() + 24, in.data() + 8, 8);
  } else {
    out.key = raw.Clone();
  }
  if (scheme == Scheme::kXts) {
    auto k = out.key.reveal();
    size_t half = k.size() / 2;
    if (ConstantTimeEquals(k.subspan(0, half), k.subspan(half, half))) {
      return InvalidArgument("the two halves of the " + std::to_string(k.size() * 8) +
                             "-bit XTS key are identical; XTS needs two independent keys (espsecure fails "
                             "here with 'In XTS mode duplicated keys are not allowed')");
    }
  }
  return out;
}

Status CheckOperation(Scheme scheme, uint64_t address, uint64_t length, bool decrypt) {
  if (address % 16 != 0) {
    return InvalidArgument("Starting flash address " + Hex0x(address) + " must be a multiple of 16.");
  }
  if (scheme == Scheme::kXts) {
    if (length % 16 != 0) {
      return InvalidArgument("Input data length (" + std::to_string(length) + ") must be a multiple of 16.");
    }
    if (length == 0) return InvalidArgument("Input data must be longer than 0.");
  } else if (decrypt && length % 16 != 0) {
    return InvalidArgument("Data length is not a multiple of 16 bytes.");
  }
  uint64_t padded = (length + 15) / 16 * 16;
  if (address >= kFlashAddressLimit || padded > kFlashAddressLimit - address) {
    return InvalidArgument("data at " + Hex0x(address) + " (" + std::to_string(length) +
                           " bytes) runs past the 4 GiB flash address space (flash addresses are 32-bit)");
  }
  return Status::Ok();
}

void Esp32TweakKey(const uint8_t key[32], uint64_t offset, uint32_t flash_crypt_conf, uint8_t out[32]) {
  U256 mask;
  TweakMask(offset, flash_crypt_conf, mask);
  for (int i = 0; i < 4; ++i) {
    uint64_t k = GetBe64(key + 8 * i) ^ mask[i];
    PutBe64(out + 8 * i, k);
  }
}

struct FlashCipher::Impl {
  Scheme scheme;
  uint32_t conf = 0xF;
  SecretBytes key;  // 32 (ESP32, XTS-128) or 64 (XTS-256) bytes
  // XTS: K1 data contexts and the K2 tweak context.
  EvpCtx k1_enc, k1_dec, k2_enc;
  // ESP32 fallback (no AES-NI): one ECB context per direction, re-keyed per 32 bytes.
  EvpCtx esp_enc, esp_dec;
  Bytes tweaks, table, work;  // XTS per-call scratch (no secrets: tweaks and ciphertext-side data)
  SecretBytes tweaked{32};
};

FlashCipher::FlashCipher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FlashCipher::FlashCipher(FlashCipher&&) noexcept = default;
FlashCipher& FlashCipher::operator=(FlashCipher&&) noexcept = default;
FlashCipher::~FlashCipher() = default;

Scheme FlashCipher::scheme() const { return impl_->scheme; }

Result<FlashCipher> FlashCipher::Create(const FlashKey& key, uint32_t flash_crypt_conf) {
  auto impl = std::make_unique<Impl>();
  impl->scheme = key.scheme;
  impl->key = key.key.Clone();
  if (flash_crypt_conf > 0xF) {
    return InvalidArgument("FLASH_CRYPT_CONF is a 4-bit eFuse value (0x0..0xf); got " + Hex0x(flash_crypt_conf));
  }
  impl->conf = flash_crypt_conf;
  const uint8_t* k = impl->key.reveal().data();
  if (key.scheme == Scheme::kXts) {
    size_t half = impl->key.size() / 2;
    if (half != 16 && half != 32) return InvalidArgument("XTS key must be 32 or 64 bytes after extension");
    const EVP_CIPHER* c = half == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb();
    COFFER_ASSIGN_OR_RETURN(impl->k1_enc, MakeEcb(c, k, true));
    COFFER_ASSIGN_OR_RETURN(impl->k1_dec, MakeEcb(c, k, false));
    COFFER_ASSIGN_OR_RETURN(impl->k2_enc, MakeEcb(c, k + half, true));
  } else {
    if (impl->key.size() != 32) return InvalidArgument("ESP32 flash key must be 32 bytes after extension");
    COFFER_ASSIGN_OR_RETURN(impl->esp_enc, MakeEcb(EVP_aes_256_ecb(), k, true));
    COFFER_ASSIGN_OR_RETURN(impl->esp_dec, MakeEcb(EVP_aes_256_ecb(), k, false));
  }
  return FlashCipher(std::move(impl));
}

Status FlashCipher::Encrypt(uint64_t address, ByteSpan in, MutableByteSpan out) {
  return Transform(address, in, out, false);
}
Status FlashCipher::Decrypt(uint64_t address, ByteSpan in, MutableByteSpan out) {
  return Transform(address, in, out, true);
}

Status FlashCipher::Transform(uint64_t address, ByteSpan in, MutableByteSpan out, bool decrypt) {
  if (in.size() != out.size()) return Internal("flash transform: output size differs from input");
  if (in.size() % 16 != 0 || address % 16 != 0) {
    return Internal("flash transform: address and length must be multiples of 16");
  }
  if (address >= kFlashAddressLimit || in.size() > kFlashAddressLimit - address) {
    return InvalidArgument("data runs past the 4 GiB flash address space");
  }
  Impl& m = *impl_;
  const uint8_t* src = in.data();
  uint8_t* dst = out.data();
  size_t n = in.size();
  if (m.scheme == Scheme::kEsp32) {
    const uint8_t* key = m.key.reveal().data();
    uint8_t* tk = m.tweaked.reveal().data();
    size_t pos = 0;
    while (pos < n) {
      uint64_t off = address + pos;
      // Blocks sharing offset >> 5 share a key: one or two 16-byte blocks.
      size_t group = (off % 32 == 0 && n - pos >= 32) ? 32 : 16;
      Esp32TweakKey(key, off, m.conf, tk);
#if COFFER_FLASH_AESNI
      if (HaveAesNi()) {
        Esp32GroupAesNi(tk, src + pos, dst + pos, group / 16, !decrypt);
        pos += group;
        continue;
      }
#endif
      // Flash encryption is AES decryption and vice versa.
      EVP_CIPHER_CTX* ctx = decrypt ? m.esp_enc.get() : m.esp_dec.get();
      if (EVP_CipherInit_ex(ctx, nullptr, nullptr, tk, nullptr, -1) != 1) return Internal("AES re-key failed");
      uint8_t buf[32];
      for (size_t b = 0; b < group; b += 16) Reverse16(src + pos + b, buf + b);
      COFFER_RETURN_IF_ERROR(EcbRun(ctx, buf, buf, group));
      for (size_t b = 0; b < group; b += 16) Reverse16(buf + b, dst + pos + b);
      pos += group;
    }
    std::memset(tk, 0, 32);
    return Status::Ok();
  }

  // XTS, in slices so the tweak tables stay small.
  constexpr size_t kSlice = 64 * 1024;
  for (size_t pos = 0; pos < n; pos += kSlice) {
    size_t len = std::min(kSlice, n - pos);
    uint64_t a0 = address + pos;
    uint64_t first_unit = a0 & ~uint64_t(0x7F);
    uint64_t last_unit = (a0 + len - 1) & ~uint64_t(0x7F);
    size_t units = size_t((last_unit - first_unit) / 128 + 1);
    // Encrypt every unit's tweak with K2 in one call, then expand to all 8 block tweaks:
    // block k of a unit sits at XTS position 7-k.
    m.tweaks.assign(units * 16, 0);
    for (size_t u = 0; u < units; ++u) PutLe32(m.tweaks.data() + 16 * u, uint32_t(first_unit + 128 * u));
    COFFER_RETURN_IF_ERROR(EcbRun(m.k2_enc.get(), m.tweaks.data(), m.tweaks.data(), m.tweaks.size()));
    m.table.resize(units * 128);
    for (size_t u = 0; u < units; ++u) {
      uint8_t t[16];
      std::memcpy(t, m.tweaks.data() + 16 * u, 16);
      for (int j = 0; j < 8; ++j) {
        std::memcpy(m.table.data() + 128 * u + 16 * (7 - j), t, 16);
        XtsDouble(t);
      }
    }
    const uint8_t* tab = m.table.data() + (a0 - first_unit);
    m.work.resize(len);
    uint8_t* w = m.work.data();
    for (size_t b = 0; b < len; b += 16) {
      uint8_t r[16];
      Reverse16(src + pos + b, r);
      for (int i = 0; i < 16; ++i) w[b + i] = r[i] ^ tab[b + i];
    }
    COFFER_RETURN_IF_ERROR(EcbRun(decrypt ? m.k1_dec.get() : m.k1_enc.get(), w, w, len));
    for (size_t b = 0; b < len; b += 16) {
      uint8_t t[16];
      for (int i = 0; i < 16; ++i) t[i] = w[b + i] ^ tab[b + i];
      Reverse16(t, dst + pos + b);
    }
  }
  return Status::Ok();
}

}  // namespace coffer::flash
