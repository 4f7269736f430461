// ESP32-family flash encryption, byte-identical to Espressif's espsecure (esptool v5.3.1
// encrypt_flash_data / decrypt_flash_data): the original ESP32 AES-256 scheme whose key is tweaked
// per 32-byte block from the flash address (FLASH_CRYPT_CONFIG selects the tweaked key bits), and the
// XTS-AES-128/256 scheme of later chips (128-byte data units, tweak = unit address). A FlashCipher
// owns its keys (SecretBytes) and OpenSSL contexts; it is not thread-safe (one per thread).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer::flash {

enum class Scheme { kEsp32, kXts };

// "esp32" or "xts" (the CLI spelling).
std::string_view SchemeName(Scheme scheme);
Result<Scheme> ParseScheme(std::string_view name);

// A flash-encryption key after espsecure's length rules: 24-byte keys become key + key[8:16]
// (ESP32 3/4 coding scheme), 16-byte keys become SHA-256(key) (XTS only), 32 bytes are used as is
// (AES-256 for ESP32; XTS-AES-128 as two 16-byte halves for XTS), 64 bytes are XTS-AES-256.
struct FlashKey {
  Scheme scheme = Scheme::kEsp32;
  size_t file_length = 0;  // bytes in the key file
  SecretBytes key;         // 32 or 64 bytes
  // "Using 256-bit key." style line, as espsecure prints it.
  std::string Describe() const;
};

// Applies espsecure's key checks with its exact messages (kInvalidArgument), plus one espsecure
// lacks: XTS key halves must differ (espsecure dies with a traceback there).
Result<FlashKey> PrepareFlashKey(Scheme scheme, const SecretBytes& raw);

// The highest flash address + 1 coffer handles (both schemes): XTS tweaks are 32-bit in espsecure and
// in hardware; ESP32-scheme data beyond 4 GiB is refused rather than guessed.
inline constexpr uint64_t kFlashAddressLimit = uint64_t(1) << 32;

// espsecure's checks on the operation, in its order and with its messages (kInvalidArgument):
// address alignment; XTS: length multiple of 16, then length > 0; ESP32 decrypt: length multiple of
// 16. Also refuses data running past 4 GiB. ESP32 encrypt accepts any length (the caller pads the
// last block with random bytes, as espsecure does).
Status CheckOperation(Scheme scheme, uint64_t address, uint64_t length, bool decrypt);

// The code FlashCipher runs; every path gives identical bytes. kAuto picks the fastest the CPU has
// (checked at run time): kVaes512 (VAES + AVX-512: four key schedules / units per instruction),
// kAesNi (AES-NI, 128-bit), kGeneric (OpenSSL EVP, any CPU). XTS has no separate AES-NI kernel
// (kAesNi runs the generic path, whose OpenSSL ECB uses AES-NI itself). Tests force each path.
enum class CipherPath { kAuto, kGeneric, kAesNi, kVaes512 };
bool CipherPathAvailable(CipherPath path);
std::string_view CipherPathName(CipherPath path);

class FlashCipher {
 public:
  // flash_crypt_conf: the ESP32 FLASH_CRYPT_CONFIG eFuse value 0..15 (ignored for XTS). A forced
  // path the CPU lacks is kFailedPrecondition.
  static Result<FlashCipher> Create(const FlashKey& key, uint32_t flash_crypt_conf = 0xF,
                                    CipherPath path = CipherPath::kAuto);
  FlashCipher(FlashCipher&&) noexcept;
  FlashCipher& operator=(FlashCipher&&) noexcept;
  ~FlashCipher();

  Scheme scheme() const;
  CipherPath path() const;  // the path in use (kAuto resolved)

  // Transforms data that lives at flash `address` (multiple of 16); in.size() must be a multiple of
  // 16 and equal out.size(); in and out may be the same buffer. Blocks are independent, so a long
  // image may be processed in chunks of any multiple of 16 bytes at their own addresses.
  Status Encrypt(uint64_t address, ByteSpan in, MutableByteSpan out);
  Status Decrypt(uint64_t address, ByteSpan in, MutableByteSpan out);

 private:
  struct Impl;
  explicit FlashCipher(std::unique_ptr<Impl> impl);
  Status Transform(uint64_t address, ByteSpan in, MutableByteSpan out, bool decrypt);
  std::unique_ptr<Impl> impl_;
};

// Exposed for tests: the ESP32 per-32-byte tweaked key, computed like espsecure's big-integer
// formula (so it matches for offsets >= 16 MiB too). `key` is 32 bytes; writes 32 bytes.
void Esp32TweakKey(const uint8_t key[32], uint64_t offset, uint32_t flash_crypt_conf, uint8_t out[32]);

}  // namespace coffer::flash
