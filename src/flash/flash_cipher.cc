// ESP32 flash encryption schemes. See include/coffer/flash/flash_cipher.h and docs/format/esp_flash.md.
//
// ESP32 scheme: for each 16-byte block at flash offset o, the AES-256 key is key ^ tweak(o >> 5),
// the block is byte-reversed, run through AES *decryption* to encrypt (the hardware uses AES
// inverted), and reversed again. The key changes every 32 bytes, so the fast paths never re-key
// OpenSSL (its EVP re-key costs ~10x the cipher work): tweaked keys are derived incrementally (products
// carried forward by addition, or below 16 MiB combined bitwise from a per-256-byte base and eight
// fixed low masks) and expanded by the kernels in flash_cipher_x86.cc, four schedules per VAES
// instruction. CPUs without AES-NI use EVP re-keyed per 32 bytes.
//
// XTS scheme: each 128-byte unit at address u is byte-reversed, XTS-encrypted with tweak
// LE32(u) || 0^12, and reversed. Reversal maps block k of the unit to XTS position 7-k with its bytes
// reversed, so every 16-byte block is independent: T = E_K2(tweak) * alpha^(7-k), and
// out = rev(E_K1(rev(in) ^ T) ^ T). The VAES kernel does exactly that per unit in registers (no
// reversal passes); the generic path builds a tweak table and runs OpenSSL ECB over whole buffers.
#include "coffer/flash/flash_cipher.h"

#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <array>
#include <cstring>

#include "flash_cipher_x86.h"

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

namespace {

// 256-bit add mod 2^256 (limb 3 least significant).
inline void Add256(U256& a, const U256& b) {
  unsigned __int128 carry = 0;
  for (int i = 3; i >= 0; --i) {
    unsigned __int128 s = (unsigned __int128)a[i] + b[i] + carry;
    a[i] = uint64_t(s);
    carry = s >> 64;
  }
}

// Tweaked keys of `count` consecutive 32-byte groups from `offset` (a multiple of 32), exactly as
// Esp32TweakKey computes each: the two products are carried forward by addition (addr -> addr + 1
// adds the multiplier), so no multiplication per group and still exact at every address.
void Esp32TweakKeys(const uint8_t key[32], uint64_t offset, uint32_t conf, size_t count, uint8_t* out) {
  const TweakConstants& c = Constants();
  const uint64_t addr = offset >> 5;
  U256 m1 = MulSmall(c.mul1, addr), m2 = MulSmall(c.mul2, addr);
  const U256& range = c.range[conf & 0xF];
  uint64_t k[4];
  for (int i = 0; i < 4; ++i) k[i] = GetBe64(key + 8 * i);
  for (size_t g = 0; g < count; ++g) {
    for (int i = 0; i < 4; ++i) PutBe64(out + 32 * g + 8 * i, k[i] ^ ((m1[i] | (m2[i] & c.mul2_mask[i])) & range[i]));
    Add256(m1, c.mul1);
    Add256(m2, c.mul2);
  }
  OPENSSL_cleanse(k, sizeof k);
}

// espsecure's tweak mask for the group at `offset`, in key byte order.
void Esp32Mask(uint64_t offset, uint32_t conf, uint8_t out[32]) {
  U256 mask;
  TweakMask(offset, conf, mask);
  for (int i = 0; i < 4; ++i) PutBe64(out + 8 * i, mask[i]);
}

// Below this offset the tweak's multiplications cannot carry, so masks combine bitwise
// (see Esp32GroupsVaes512Linear).
constexpr uint64_t kEsp32LinearLimit = uint64_t(16) << 20;

// Groups whose tweaked keys are derived per kernel call (keys live in locked memory meanwhile).
constexpr size_t kKeyBatchGroups = 64;

}  // namespace

bool CipherPathAvailable(CipherPath path) {
  switch (path) {
    case CipherPath::kAuto:
    case CipherPath::kGeneric: return true;
    case CipherPath::kAesNi: return internal::CpuHasAesNi();
    case CipherPath::kVaes512: return internal::CpuHasVaes512();
  }
  return false;
}

std::string_view CipherPathName(CipherPath path) {
  switch (path) {
    case CipherPath::kAuto: return "auto";
    case CipherPath::kGeneric: return "generic";
    case CipherPath::kAesNi: return "aes-ni";
    case CipherPath::kVaes512: return "vaes-512";
  }
  return "?";
}

struct FlashCipher::Impl {
  Scheme scheme;
  CipherPath path = CipherPath::kGeneric;
  uint32_t conf = 0xF;
  SecretBytes key;  // 32 (ESP32, XTS-128) or 64 (XTS-256) bytes
  // XTS: K1 data contexts and the K2 tweak context (generic path and unaligned edges).
  EvpCtx k1_enc, k1_dec, k2_enc;
  // XTS VAES path: round keys of K1 (encrypt, inverse) and K2 (encrypt); rounds 10 or 14.
  SecretBytes xts_round_keys{3 * 15 * 16};
  int xts_rounds = 0;
  // ESP32 generic path: one ECB context per direction, re-keyed per 32 bytes.
  EvpCtx esp_enc, esp_dec;
  Bytes tweaks, table, work;  // XTS per-call scratch (no secrets: tweaks and ciphertext-side data)
  SecretBytes tweaked{32 * kKeyBatchGroups};
  // ESP32 VAES path below 16 MiB: the tweak masks of groups 0..7 and, per call, of each 8-group
  // batch base (masks depend on the address only and are not secret).
  uint8_t low_masks[256] = {};
  uint8_t base_masks[4 * kKeyBatchGroups] = {};

  Status XtsGeneric(uint64_t address, const uint8_t* src, uint8_t* dst, size_t n, bool decrypt);
  Status Esp32Single(uint64_t off, const uint8_t* src, uint8_t* dst, size_t len, bool decrypt);
};

FlashCipher::FlashCipher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FlashCipher::FlashCipher(FlashCipher&&) noexcept = default;
FlashCipher& FlashCipher::operator=(FlashCipher&&) noexcept = default;
FlashCipher::~FlashCipher() = default;

Scheme FlashCipher::scheme() const { return impl_->scheme; }
CipherPath FlashCipher::path() const { return impl_->path; }

Result<FlashCipher> FlashCipher::Create(const FlashKey& key, uint32_t flash_crypt_conf, CipherPath path) {
  auto impl = std::make_unique<Impl>();
  impl->scheme = key.scheme;
  impl->key = key.key.Clone();
  if (flash_crypt_conf > 0xF) {
    return InvalidArgument("FLASH_CRYPT_CONF is a 4-bit eFuse value (0x0..0xf); got " + Hex0x(flash_crypt_conf));
  }
  if (path == CipherPath::kAuto) {
    path = internal::CpuHasVaes512() ? CipherPath::kVaes512
           : internal::CpuHasAesNi() ? CipherPath::kAesNi
                                     : CipherPath::kGeneric;
  } else if (!CipherPathAvailable(path)) {
    return FailedPrecondition("this CPU lacks the instructions of the " + std::string(CipherPathName(path)) +
                              " flash cipher path");
  }
  // XTS has no separate AES-NI kernel: OpenSSL's ECB (AES-NI inside) with the tweak table is it.
  if (key.scheme == Scheme::kXts && path == CipherPath::kAesNi) path = CipherPath::kGeneric;
  impl->path = path;
  impl->conf = flash_crypt_conf;
  const uint8_t* k = impl->key.reveal().data();
  if (key.scheme == Scheme::kXts) {
    size_t half = impl->key.size() / 2;
    if (half != 16 && half != 32) return InvalidArgument("XTS key must be 32 or 64 bytes after extension");
    const EVP_CIPHER* c = half == 16 ? EVP_aes_128_ecb() : EVP_aes_256_ecb();
    COFFER_ASSIGN_OR_RETURN(impl->k1_enc, MakeEcb(c, k, true));
    COFFER_ASSIGN_OR_RETURN(impl->k1_dec, MakeEcb(c, k, false));
    COFFER_ASSIGN_OR_RETURN(impl->k2_enc, MakeEcb(c, k + half, true));
    if (path == CipherPath::kVaes512) {
      impl->xts_rounds = half == 16 ? 10 : 14;
      uint8_t* rk = impl->xts_round_keys.reveal().data();
      internal::AesExpandEncrypt(k, half, rk);
      internal::AesInvertRoundKeys(rk, impl->xts_rounds, rk + 240);
      internal::AesExpandEncrypt(k + half, half, rk + 480);
    }
  } else {
    if (impl->key.size() != 32) return InvalidArgument("ESP32 flash key must be 32 bytes after extension");
    for (int j = 0; j < 8; ++j) Esp32Mask(32 * j, flash_crypt_conf, impl->low_masks + 32 * j);
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

// One or two 16-byte blocks sharing offset >> 5, through OpenSSL re-keyed with the tweaked key.
Status FlashCipher::Impl::Esp32Single(uint64_t off, const uint8_t* src, uint8_t* dst, size_t len, bool decrypt) {
  uint8_t* tk = tweaked.reveal().data();
  Esp32TweakKey(key.reveal().data(), off, conf, tk);
  // Flash encryption is AES decryption and vice versa.
  EVP_CIPHER_CTX* ctx = decrypt ? esp_enc.get() : esp_dec.get();
  Status st = Status::Ok();
  if (EVP_CipherInit_ex(ctx, nullptr, nullptr, tk, nullptr, -1) != 1) st = Internal("AES re-key failed");
  explicit_bzero(tk, 32);
  COFFER_RETURN_IF_ERROR(st);
  uint8_t buf[32];
  for (size_t b = 0; b < len; b += 16) Reverse16(src + b, buf + b);
  COFFER_RETURN_IF_ERROR(EcbRun(ctx, buf, buf, len));
  for (size_t b = 0; b < len; b += 16) Reverse16(buf + b, dst + b);
  return Status::Ok();
}

// Tweak table + OpenSSL ECB: any 16-byte-aligned range.
Status FlashCipher::Impl::XtsGeneric(uint64_t address, const uint8_t* src, uint8_t* dst, size_t n, bool decrypt) {
  // In slices so the tweak tables stay small.
  constexpr size_t kSlice = 64 * 1024;
  for (size_t pos = 0; pos < n; pos += kSlice) {
    size_t len = std::min(kSlice, n - pos);
    uint64_t a0 = address + pos;
    uint64_t first_unit = a0 & ~uint64_t(0x7F);
    uint64_t last_unit = (a0 + len - 1) & ~uint64_t(0x7F);
    size_t units = size_t((last_unit - first_unit) / 128 + 1);
    // Encrypt every unit's tweak with K2 in one call, then expand to all 8 block tweaks:
    // block k of a unit sits at XTS position 7-k.
    tweaks.assign(units * 16, 0);
    for (size_t u = 0; u < units; ++u) PutLe32(tweaks.data() + 16 * u, uint32_t(first_unit + 128 * u));
    COFFER_RETURN_IF_ERROR(EcbRun(k2_enc.get(), tweaks.data(), tweaks.data(), tweaks.size()));
    table.resize(units * 128);
    for (size_t u = 0; u < units; ++u) {
      uint8_t t[16];
      std::memcpy(t, tweaks.data() + 16 * u, 16);
      for (int j = 0; j < 8; ++j) {
        std::memcpy(table.data() + 128 * u + 16 * (7 - j), t, 16);
        XtsDouble(t);
      }
    }
    const uint8_t* tab = table.data() + (a0 - first_unit);
    work.resize(len);
    uint8_t* w = work.data();
    for (size_t b = 0; b < len; b += 16) {
      uint8_t r[16];
      Reverse16(src + pos + b, r);
      for (int i = 0; i < 16; ++i) w[b + i] = r[i] ^ tab[b + i];
    }
    COFFER_RETURN_IF_ERROR(EcbRun(decrypt ? k1_dec.get() : k1_enc.get(), w, w, len));
    for (size_t b = 0; b < len; b += 16) {
      uint8_t t[16];
      for (int i = 0; i < 16; ++i) t[i] = w[b + i] ^ tab[b + i];
      Reverse16(t, dst + pos + b);
    }
  }
  return Status::Ok();
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
  const size_t n = in.size();
  if (m.scheme == Scheme::kEsp32) {
    const uint8_t* key = m.key.reveal().data();
    size_t pos = 0;
    while (pos < n) {
      const uint64_t off = address + pos;
      if (m.path != CipherPath::kGeneric && off % 32 == 0 && n - pos >= 32) {
        size_t groups = std::min((n - pos) / 32, kKeyBatchGroups);
        bool vaes = m.path == CipherPath::kVaes512 && groups >= 8;
        if (vaes && off % 256 != 0) {
          // AES-NI up to the next 256-byte boundary, where the VAES batches of 8 groups start.
          groups = std::min<size_t>(groups, (256 - off % 256) / 32);
          vaes = false;
        }
        if (vaes) groups -= groups % 8;
        if (vaes && off + 32 * groups <= kEsp32LinearLimit) {
          for (size_t b = 0; b < groups / 8; ++b) Esp32Mask(off + 256 * b, m.conf, m.base_masks + 32 * b);
          internal::Esp32GroupsVaes512Linear(key, m.base_masks, m.low_masks, src + pos, dst + pos, groups, !decrypt);
          pos += 32 * groups;
          continue;
        }
        uint8_t* keys = m.tweaked.reveal().data();
        Esp32TweakKeys(key, off, m.conf, groups, keys);
        if (vaes) {
          internal::Esp32GroupsVaes512(keys, src + pos, dst + pos, groups, !decrypt);
        } else {
          internal::Esp32GroupsAesNi(keys, src + pos, dst + pos, groups, !decrypt);
        }
        explicit_bzero(keys, 32 * groups);
        pos += 32 * groups;
        continue;
      }
      // Blocks sharing offset >> 5 share a key: one or two 16-byte blocks.
      size_t group = (off % 32 == 0 && n - pos >= 32) ? 32 : 16;
      COFFER_RETURN_IF_ERROR(m.Esp32Single(off, src + pos, dst + pos, group, decrypt));
      pos += group;
    }
    return Status::Ok();
  }

  if (m.path != CipherPath::kVaes512) return m.XtsGeneric(address, src, dst, n, decrypt);
  // Whole 128-byte units through the fused VAES kernel, partial units at either end generically.
  size_t head = std::min<size_t>(n, size_t((128 - address % 128) % 128));
  size_t units = (n - head) / 128;
  size_t tail = n - head - 128 * units;
  if (head) COFFER_RETURN_IF_ERROR(m.XtsGeneric(address, src, dst, head, decrypt));
  if (units) {
    const uint8_t* rk = m.xts_round_keys.reveal().data();
    internal::XtsUnitsVaes512(decrypt ? rk + 240 : rk, rk + 480, m.xts_rounds, uint32_t(address + head), src + head,
                              dst + head, units, decrypt);
  }
  if (tail) {
    size_t at = head + 128 * units;
    COFFER_RETURN_IF_ERROR(m.XtsGeneric(address + at, src + at, dst + at, tail, decrypt));
  }
  return Status::Ok();
}

}  // namespace coffer::flash
