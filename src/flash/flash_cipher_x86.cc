// x86 AES kernels for FlashCipher. See flash_cipher_x86.h and docs/format/esp_flash.md.
//
// Key schedules use pshufb + aesenclast instead of aeskeygenassist (microcoded and slow on several
// cores): with the rotated last word splatted into every column, ShiftRows is a no-op and
// aesenclast(x, rcon) = SubWord(RotWord(w)) ^ rcon in every column. InvMixColumns of a round key
// (decryption keys) on 512-bit vectors is aesdec(aesenclast(x, 0), 0): there is no 512-bit aesimc.
// The ESP32 kernel expands four groups' keys at once, one per 128-bit lane, and lays the data out
// with block 0 of each group in one register and block 1 in another, so every lane meets its key.
#include "flash_cipher_x86.h"

#include <cstdlib>
#include <cstring>


#if defined(__x86_64__)
// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_* placeholders.
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cpuid.h>
#include <immintrin.h>

namespace coffer::flash::internal {

bool CpuHasAesNi() {
  static const bool have =
      __builtin_cpu_supports("aes") && __builtin_cpu_supports("ssse3") && __builtin_cpu_supports("sse4.1");
  return have;
}

// CPUID directly: clang 14's __builtin_cpu_supports knows neither "vaes" nor "vpclmulqdq".
bool CpuHasVaes512() {
  static const bool have = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!CpuHasAesNi() || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
    bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), vaes = c & (1u << 9), vpclmulqdq = c & (1u << 10);
    if (!(avx512f && avx512bw && vaes && vpclmulqdq)) return false;
    // The OS must save the AVX-512 state: XCR0 bits 1, 2 (SSE, AVX) and 5, 6, 7 (opmask, ZMM).
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return false;  // OSXSAVE
    unsigned lo = 0, hi = 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6u) == 0xe6u;
  }();
  return have;
}

#define AESNI_TARGET __attribute__((target("aes,ssse3,sse4.1")))
#define VAES_TARGET __attribute__((target("aes,ssse3,sse4.1,avx2,avx512f,avx512bw,vaes,vpclmulqdq")))

namespace {

// ---- 128-bit (AES-NI) ------------------------------------------------------------------------

// w ^ (w << 32) ^ (w << 64) ^ (w << 96): the running XOR of a round key's words.
AESNI_TARGET inline __m128i Prefix128(__m128i x) {
  x = _mm_xor_si128(x, _mm_slli_si128(x, 4));
  return _mm_xor_si128(x, _mm_slli_si128(x, 8));
}

AESNI_TARGET inline __m128i RotSplat128() {
  return _mm_setr_epi8(13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12);
}

// AES-256 encryption round keys rk[0..14].
AESNI_TARGET inline void Aes256Expand128(__m128i t1, __m128i t3, __m128i rk[15]) {
  const __m128i rot = RotSplat128();
  const __m128i zero = _mm_setzero_si128();
  rk[0] = t1;
  rk[1] = t3;
  int rcon = 1;
  for (int i = 2; i < 15; i += 2, rcon <<= 1) {
    __m128i s = _mm_aesenclast_si128(_mm_shuffle_epi8(t3, rot), _mm_set1_epi32(rcon));
    t1 = _mm_xor_si128(Prefix128(t1), s);
    rk[i] = t1;
    if (i == 14) break;
    s = _mm_aesenclast_si128(_mm_shuffle_epi32(t1, 0xff), zero);
    t3 = _mm_xor_si128(Prefix128(t3), s);
    rk[i + 1] = t3;
  }
}

AESNI_TARGET inline void Aes128Expand128(__m128i t, __m128i rk[11]) {
  const __m128i rot = RotSplat128();
  static constexpr int kRcon[10] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36};
  rk[0] = t;
  for (int i = 1; i <= 10; ++i) {
    __m128i s = _mm_aesenclast_si128(_mm_shuffle_epi8(t, rot), _mm_set1_epi32(kRcon[i - 1]));
    t = _mm_xor_si128(Prefix128(t), s);
    rk[i] = t;
  }
}

AESNI_TARGET inline __m128i Rev128() { return _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }

// Up to four groups (n = 1..4), interleaved so the AES unit always has independent blocks.
AESNI_TARGET void Esp32Groups4(const uint8_t* keys, const uint8_t* in, uint8_t* out, int n, bool flash_encrypt) {
  __m128i rk[4][15];
  for (int g = 0; g < n; ++g) {
    Aes256Expand128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(keys + 32 * g)),
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(keys + 32 * g + 16)), rk[g]);
  }
  const __m128i rev = Rev128();
  __m128i x[8];
  const int blocks = 2 * n;
  for (int b = 0; b < blocks; ++b) {
    x[b] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * b)), rev);
  }
  if (flash_encrypt) {
    // Equivalent inverse cipher: InvMixColumns on the middle round keys, used in reverse order.
    for (int g = 0; g < n; ++g) {
      for (int i = 1; i < 14; ++i) rk[g][i] = _mm_aesimc_si128(rk[g][i]);
    }
    for (int b = 0; b < blocks; ++b) x[b] = _mm_xor_si128(x[b], rk[b / 2][14]);
    for (int i = 13; i >= 1; --i) {
      for (int b = 0; b < blocks; ++b) x[b] = _mm_aesdec_si128(x[b], rk[b / 2][i]);
    }
    for (int b = 0; b < blocks; ++b) x[b] = _mm_aesdeclast_si128(x[b], rk[b / 2][0]);
  } else {
    for (int b = 0; b < blocks; ++b) x[b] = _mm_xor_si128(x[b], rk[b / 2][0]);
    for (int i = 1; i < 14; ++i) {
      for (int b = 0; b < blocks; ++b) x[b] = _mm_aesenc_si128(x[b], rk[b / 2][i]);
    }
    for (int b = 0; b < blocks; ++b) x[b] = _mm_aesenclast_si128(x[b], rk[b / 2][14]);
  }
  for (int b = 0; b < blocks; ++b) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * b), _mm_shuffle_epi8(x[b], rev));
  }
  explicit_bzero(rk, sizeof rk);
}

// ---- 512-bit (VAES) --------------------------------------------------------------------------

VAES_TARGET inline __m512i Prefix512(__m512i x) {
  x = _mm512_xor_si512(x, _mm512_bslli_epi128(x, 4));
  return _mm512_xor_si512(x, _mm512_bslli_epi128(x, 8));
}

VAES_TARGET inline __m512i Rev512() { return _mm512_broadcast_i32x4(Rev128()); }

// Four AES-256 key schedules at once, one per 128-bit lane.
VAES_TARGET inline void Aes256Expand512(__m512i t1, __m512i t3, __m512i rk[15]) {
  const __m512i rot = _mm512_broadcast_i32x4(RotSplat128());
  const __m512i zero = _mm512_setzero_si512();
  rk[0] = t1;
  rk[1] = t3;
  int rcon = 1;
  for (int i = 2; i < 15; i += 2, rcon <<= 1) {
    __m512i s = _mm512_aesenclast_epi128(_mm512_shuffle_epi8(t3, rot), _mm512_set1_epi32(rcon));
    t1 = _mm512_xor_si512(Prefix512(t1), s);
    rk[i] = t1;
    if (i == 14) break;
    s = _mm512_aesenclast_epi128(_mm512_shuffle_epi32(t1, _MM_PERM_DDDD), zero);
    t3 = _mm512_xor_si512(Prefix512(t3), s);
    rk[i + 1] = t3;
  }
}

VAES_TARGET inline __m512i InvMixColumns512(__m512i x) {
  const __m512i zero = _mm512_setzero_si512();
  return _mm512_aesdec_epi128(_mm512_aesenclast_epi128(x, zero), zero);
}

// Lanes {0,1,4,5,8,9,12,13} / {2,3,6,7,...} of a 256-byte pair of registers: the first / second
// 16-byte half of four consecutive 32-byte groups (data blocks or keys alike), and back.
VAES_TARGET inline __m512i PickA() { return _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0); }
VAES_TARGET inline __m512i PickB() { return _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2); }

// Eight groups (256 bytes) given their keys' low and high halves as two sets of four lanes. Data is
// transposed so register A of a set holds block 0 of its four groups and register B block 1: each
// lane meets its own key schedule. rk is caller scratch (wiped by the caller once per call).
VAES_TARGET inline void Esp32Groups8Vaes(const __m512i klo[2], const __m512i khi[2], const uint8_t* in, uint8_t* out,
                                         bool flash_encrypt, __m512i rk[2][15]) {
  const __m512i put_0 = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
  const __m512i put_1 = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  const __m512i rev = Rev512();
  __m512i x[4];
  for (int s = 0; s < 2; ++s) {
    Aes256Expand512(klo[s], khi[s], rk[s]);
    __m512i d0 = _mm512_loadu_si512(in + 128 * s);
    __m512i d1 = _mm512_loadu_si512(in + 128 * s + 64);
    x[2 * s] = _mm512_shuffle_epi8(_mm512_permutex2var_epi64(d0, PickA(), d1), rev);
    x[2 * s + 1] = _mm512_shuffle_epi8(_mm512_permutex2var_epi64(d0, PickB(), d1), rev);
  }
  if (flash_encrypt) {
    for (int s = 0; s < 2; ++s) {
      for (int i = 1; i < 14; ++i) rk[s][i] = InvMixColumns512(rk[s][i]);
    }
    for (int b = 0; b < 4; ++b) x[b] = _mm512_xor_si512(x[b], rk[b / 2][14]);
    for (int i = 13; i >= 1; --i) {
      for (int b = 0; b < 4; ++b) x[b] = _mm512_aesdec_epi128(x[b], rk[b / 2][i]);
    }
    for (int b = 0; b < 4; ++b) x[b] = _mm512_aesdeclast_epi128(x[b], rk[b / 2][0]);
  } else {
    for (int b = 0; b < 4; ++b) x[b] = _mm512_xor_si512(x[b], rk[b / 2][0]);
    for (int i = 1; i < 14; ++i) {
      for (int b = 0; b < 4; ++b) x[b] = _mm512_aesenc_epi128(x[b], rk[b / 2][i]);
    }
    for (int b = 0; b < 4; ++b) x[b] = _mm512_aesenclast_epi128(x[b], rk[b / 2][14]);
  }
  for (int s = 0; s < 2; ++s) {
    __m512i a = _mm512_shuffle_epi8(x[2 * s], rev);
    __m512i b = _mm512_shuffle_epi8(x[2 * s + 1], rev);
    _mm512_storeu_si512(out + 128 * s, _mm512_permutex2var_epi64(a, put_0, b));
    _mm512_storeu_si512(out + 128 * s + 64, _mm512_permutex2var_epi64(a, put_1, b));
  }
}

// Per-lane multiply of XTS tweaks (128-bit little-endian, IEEE 1619) by alpha^k, where each
// 64-bit element of `left` holds its lane's k (0..7) and `right` 64 - k.
VAES_TARGET inline __m512i MulAlphaVar(__m512i x, __m512i left, __m512i right) {
  const __m512i poly = _mm512_set1_epi64(0x87);
  const __m512i hi_mask = _mm512_set_epi64(-1, 0, -1, 0, -1, 0, -1, 0);
  __m512i shifted = _mm512_sllv_epi64(x, left);
  __m512i spill = _mm512_srlv_epi64(x, right);                   // bits leaving each qword
  spill = _mm512_shuffle_epi32(spill, _MM_PERM_BADC);            // lo's bits -> hi, hi's -> lo
  __m512i reduced = _mm512_clmulepi64_epi128(spill, poly, 0x00);  // hi's overflow * (x^7+x^2+x+1)
  return _mm512_ternarylogic_epi64(shifted, reduced, _mm512_and_si512(spill, hi_mask), 0x96);
}

VAES_TARGET inline __m512i MulAlpha4(__m512i x) {
  const __m512i poly = _mm512_set1_epi64(0x87);
  const __m512i hi_mask = _mm512_set_epi64(-1, 0, -1, 0, -1, 0, -1, 0);
  __m512i shifted = _mm512_slli_epi64(x, 4);
  __m512i spill = _mm512_shuffle_epi32(_mm512_srli_epi64(x, 60), _MM_PERM_BADC);
  __m512i reduced = _mm512_clmulepi64_epi128(spill, poly, 0x00);
  return _mm512_ternarylogic_epi64(shifted, reduced, _mm512_and_si512(spill, hi_mask), 0x96);
}

// U whole units (U = 1..4); tweaks[u] is unit u's encrypted tweak. Unit block k (bytes 16k..) is
// XTS position 7 - k with its bytes reversed, so register 0 (blocks 0-3) takes tweaks
// T*alpha^7..alpha^4 and register 1 (blocks 4-7) T*alpha^3..alpha^0.
template <int U>
VAES_TARGET inline void XtsUnits(const __m512i* k, int rounds, const __m128i* tweaks, const uint8_t* in, uint8_t* out,
                                 bool decrypt) {
  const __m512i rev = Rev512();
  const __m512i left = _mm512_set_epi64(0, 0, 1, 1, 2, 2, 3, 3);
  const __m512i right = _mm512_set_epi64(64, 64, 63, 63, 62, 62, 61, 61);
  __m512i w[2 * U], x[2 * U];
  for (int u = 0; u < U; ++u) {
    __m512i t = _mm512_broadcast_i32x4(tweaks[u]);
    w[2 * u + 1] = MulAlphaVar(t, left, right);
    w[2 * u] = MulAlpha4(w[2 * u + 1]);
    for (int h = 0; h < 2; ++h) {
      __m512i d = _mm512_shuffle_epi8(_mm512_loadu_si512(in + 128 * u + 64 * h), rev);
      x[2 * u + h] = _mm512_ternarylogic_epi64(d, w[2 * u + h], k[0], 0x96);
    }
  }
  if (decrypt) {
    for (int i = 1; i < rounds; ++i) {
      for (int b = 0; b < 2 * U; ++b) x[b] = _mm512_aesdec_epi128(x[b], k[i]);
    }
    for (int b = 0; b < 2 * U; ++b) x[b] = _mm512_aesdeclast_epi128(x[b], _mm512_xor_si512(k[rounds], w[b]));
  } else {
    for (int i = 1; i < rounds; ++i) {
      for (int b = 0; b < 2 * U; ++b) x[b] = _mm512_aesenc_epi128(x[b], k[i]);
    }
    for (int b = 0; b < 2 * U; ++b) x[b] = _mm512_aesenclast_epi128(x[b], _mm512_xor_si512(k[rounds], w[b]));
  }
  for (int b = 0; b < 2 * U; ++b) _mm512_storeu_si512(out + 64 * b, _mm512_shuffle_epi8(x[b], rev));
}

}  // namespace

AESNI_TARGET void AesExpandEncrypt(const uint8_t* key, size_t key_len, uint8_t* round_keys) {
  __m128i rk[15];
  int n;
  if (key_len == 16) {
    Aes128Expand128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(key)), rk);
    n = 11;
  } else {
    Aes256Expand128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(key)),
                    _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16)), rk);
    n = 15;
  }
  for (int i = 0; i < n; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(round_keys + 16 * i), rk[i]);
  explicit_bzero(rk, sizeof rk);
}

AESNI_TARGET void AesInvertRoundKeys(const uint8_t* enc, int rounds, uint8_t* dec) {
  for (int i = 0; i <= rounds; ++i) {
    __m128i k = _mm_loadu_si128(reinterpret_cast<const __m128i*>(enc + 16 * (rounds - i)));
    if (i != 0 && i != rounds) k = _mm_aesimc_si128(k);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dec + 16 * i), k);
  }
}

void Esp32GroupsAesNi(const uint8_t* keys, const uint8_t* in, uint8_t* out, size_t groups, bool flash_encrypt) {
  for (size_t g = 0; g < groups; g += 4) {
    int n = int(groups - g < 4 ? groups - g : 4);
    Esp32Groups4(keys + 32 * g, in + 32 * g, out + 32 * g, n, flash_encrypt);
  }
}

VAES_TARGET void Esp32GroupsVaes512(const uint8_t* keys, const uint8_t* in, uint8_t* out, size_t groups,
                                    bool flash_encrypt) {
  __m512i rk[2][15], klo[2], khi[2];
  for (size_t g = 0; g + 8 <= groups; g += 8) {
    for (int s = 0; s < 2; ++s) {
      __m512i k0 = _mm512_loadu_si512(keys + 32 * g + 128 * s);
      __m512i k1 = _mm512_loadu_si512(keys + 32 * g + 128 * s + 64);
      klo[s] = _mm512_permutex2var_epi64(k0, PickA(), k1);
      khi[s] = _mm512_permutex2var_epi64(k0, PickB(), k1);
    }
    Esp32Groups8Vaes(klo, khi, in + 32 * g, out + 32 * g, flash_encrypt, rk);
  }
  explicit_bzero(rk, sizeof rk);
  explicit_bzero(klo, sizeof klo);
  explicit_bzero(khi, sizeof khi);
}

VAES_TARGET void Esp32GroupsVaes512Linear(const uint8_t key[32], const uint8_t* base_masks, const uint8_t low_masks[256],
                                          const uint8_t* in, uint8_t* out, size_t groups, bool flash_encrypt) {
  __m512i rk[2][15], klo[2], khi[2];
  const __m512i key_lo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(key)));
  const __m512i key_hi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16)));
  __m512i j_lo[2], j_hi[2];
  for (int s = 0; s < 2; ++s) {
    __m512i m0 = _mm512_loadu_si512(low_masks + 128 * s);
    __m512i m1 = _mm512_loadu_si512(low_masks + 128 * s + 64);
    j_lo[s] = _mm512_permutex2var_epi64(m0, PickA(), m1);
    j_hi[s] = _mm512_permutex2var_epi64(m0, PickB(), m1);
  }
  for (size_t g = 0; g + 8 <= groups; g += 8) {
    const uint8_t* base = base_masks + 4 * g;  // 32 bytes per batch of 8 groups
    __m512i b_lo = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base)));
    __m512i b_hi = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(base + 16)));
    for (int s = 0; s < 2; ++s) {
      klo[s] = _mm512_ternarylogic_epi64(key_lo, b_lo, j_lo[s], 0x1E);  // key ^ (base | low)
      khi[s] = _mm512_ternarylogic_epi64(key_hi, b_hi, j_hi[s], 0x1E);
    }
    Esp32Groups8Vaes(klo, khi, in + 32 * g, out + 32 * g, flash_encrypt, rk);
  }
  explicit_bzero(rk, sizeof rk);
  explicit_bzero(klo, sizeof klo);
  explicit_bzero(khi, sizeof khi);
}

VAES_TARGET void XtsUnitsVaes512(const uint8_t* k1, const uint8_t* k2, int rounds, uint32_t unit_address,
                                 const uint8_t* in, uint8_t* out, size_t units, bool decrypt) {
  __m512i k[15], t2[15];
  for (int i = 0; i <= rounds; ++i) {
    k[i] = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k1 + 16 * i)));
    t2[i] = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k2 + 16 * i)));
  }
  alignas(64) __m128i tweaks[4];
  const __m512i step = _mm512_set_epi64(0, 384, 0, 256, 0, 128, 0, 0);
  for (size_t u = 0; u < units; u += 4) {
    // Four units' tweaks LE32(address) || 0^12 in one register, encrypted with K2 (the 32-bit
    // address wraps like the hardware's; callers keep data below 4 GiB).
    __m512i t = _mm512_add_epi64(_mm512_set1_epi64(uint32_t(unit_address + 128 * u)), step);
    t = _mm512_and_si512(t, _mm512_set_epi64(0, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0, 0xFFFFFFFF));
    t = _mm512_xor_si512(t, t2[0]);
    for (int i = 1; i < rounds; ++i) t = _mm512_aesenc_epi128(t, t2[i]);
    t = _mm512_aesenclast_epi128(t, t2[rounds]);
    _mm512_store_si512(tweaks, t);
    const uint8_t* src = in + 128 * u;
    uint8_t* dst = out + 128 * u;
    switch (units - u < 4 ? units - u : 4) {
      case 4: XtsUnits<4>(k, rounds, tweaks, src, dst, decrypt); break;
      case 3: XtsUnits<3>(k, rounds, tweaks, src, dst, decrypt); break;
      case 2: XtsUnits<2>(k, rounds, tweaks, src, dst, decrypt); break;
      default: XtsUnits<1>(k, rounds, tweaks, src, dst, decrypt); break;
    }
  }
  explicit_bzero(k, sizeof k);
  explicit_bzero(t2, sizeof t2);
}

}  // namespace coffer::flash::internal

#else  // not x86-64: the generic OpenSSL paths only.

namespace coffer::flash::internal {
bool CpuHasAesNi() { return false; }
bool CpuHasVaes512() { return false; }
void AesExpandEncrypt(const uint8_t*, size_t, uint8_t*) { std::abort(); }
void AesInvertRoundKeys(const uint8_t*, int, uint8_t*) { std::abort(); }
void Esp32GroupsAesNi(const uint8_t*, const uint8_t*, uint8_t*, size_t, bool) { std::abort(); }
void Esp32GroupsVaes512(const uint8_t*, const uint8_t*, uint8_t*, size_t, bool) { std::abort(); }
void Esp32GroupsVaes512Linear(const uint8_t*, const uint8_t*, const uint8_t*, const uint8_t*, uint8_t*, size_t, bool) {
  std::abort();
}
void XtsUnitsVaes512(const uint8_t*, const uint8_t*, int, uint32_t, const uint8_t*, uint8_t*, size_t, bool) {
  std::abort();
}
}  // namespace coffer::flash::internal

#endif
