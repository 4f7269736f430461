// x86 AES kernels behind FlashCipher (internal to src/flash): AES-NI (128-bit) key schedules and the
// ESP32 group kernel, and VAES/AVX-512 kernels for both schemes. Callers check CpuHas*() first; the
// functions are pure (no state), thread-safe, and wipe the round keys they derive on the stack.
#pragma once

#include <cstddef>
#include <cstdint>

namespace coffer::flash::internal {

bool CpuHasAesNi();    // AES-NI + SSSE3/SSE4.1
bool CpuHasVaes512();  // VAES + VPCLMULQDQ + AVX-512 F/BW (also implies AES-NI)

// AES encryption round keys (rounds + 1 blocks of 16 bytes) for a 16- or 32-byte key, and the
// matching "equivalent inverse cipher" decryption keys. AES-NI required.
void AesExpandEncrypt(const uint8_t* key, size_t key_len, uint8_t* round_keys);
void AesInvertRoundKeys(const uint8_t* enc, int rounds, uint8_t* dec);

// ESP32 scheme over `groups` 32-byte groups, each with its own tweaked AES-256 key
// (keys[32 * g .. 32 * g + 31]); `flash_encrypt` is AES decryption of the byte-reversed blocks.
// AES-NI: four groups at a time, any count. VAES: `groups` must be a multiple of 8.
void Esp32GroupsAesNi(const uint8_t* keys, const uint8_t* in, uint8_t* out, size_t groups, bool flash_encrypt);
void Esp32GroupsVaes512(const uint8_t* keys, const uint8_t* in, uint8_t* out, size_t groups, bool flash_encrypt);

// The same for data below 16 MiB starting at a multiple of 256 bytes, where espsecure's tweak is
// bitwise: mask(8a + j) = mask(8a) | mask(j) for j < 8 (the address multiples cannot carry there).
// Keys are formed in registers: key ^ (base_masks[batch] | low_masks[j]); base_masks holds 32 bytes
// per batch of 8 groups, low_masks the masks of groups 0..7. `groups` a multiple of 8.
void Esp32GroupsVaes512Linear(const uint8_t key[32], const uint8_t* base_masks, const uint8_t low_masks[256],
                              const uint8_t* in, uint8_t* out, size_t groups, bool flash_encrypt);

// ESP XTS over `units` whole 128-byte data units, the first at flash address `unit_address`
// (multiple of 128). k1: the data key's encryption or (decrypt) inverse round keys; k2: the tweak
// key's encryption round keys; rounds is 10 or 14.
void XtsUnitsVaes512(const uint8_t* k1, const uint8_t* k2, int rounds, uint32_t unit_address, const uint8_t* in,
                     uint8_t* out, size_t units, bool decrypt);

}  // namespace coffer::flash::internal
