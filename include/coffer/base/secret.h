// SecretBytes: the one type that holds key material. Memory comes from libsodium's guarded,
// mlock()ed allocator (excluded from core dumps), is wiped on free, cannot be copied implicitly,
// and is compared in constant time. The bytes are reachable only through reveal(), so every use
// of a secret is greppable. Not thread-safe to mutate; safe to read from many threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "coffer/base/status.h"

namespace coffer {

class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size);  // zero-filled
  static SecretBytes CopyOf(std::span<const uint8_t> bytes);
  static SecretBytes Random(size_t size);  // OS CSPRNG
  ~SecretBytes();

  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes Clone() const;  // an explicit copy

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::span<uint8_t> reveal() { return {data_, size_}; }
  std::span<const uint8_t> reveal() const { return {data_, size_}; }
  std::string_view reveal_string() const { return {reinterpret_cast<const char*>(data_), size_}; }

  // Constant-time equality (sizes are not secret).
  bool Equals(const SecretBytes& other) const;

 private:
  void Release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Constant-time comparison of equal-length buffers; false if lengths differ.
bool ConstantTimeEquals(std::span<const uint8_t> a, std::span<const uint8_t> b);

// Makes the process refuse core dumps and ptrace attach by non-root (PR_SET_DUMPABLE 0).
// Call once early in any process that holds keys.
void HardenProcessForSecrets();

}  // namespace coffer
