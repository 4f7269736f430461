#include "coffer/base/random.h"

#include <sodium.h>

#include <cstdlib>

namespace coffer {
namespace {
void EnsureSodium() {
  static const bool ready = [] {
    if (sodium_init() < 0) std::abort();
    return true;
  }();
  (void)ready;
}
}  // namespace

void FillRandom(std::span<uint8_t> out) {
  EnsureSodium();
  if (!out.empty()) randombytes_buf(out.data(), out.size());
}

Bytes RandomBytes(size_t n) {
  Bytes b(n);
  FillRandom(b);
  return b;
}

uint64_t RandomUint64() {
  uint8_t b[8];
  FillRandom(b);
  return GetLe64(b);
}

uint64_t RandomBelow(uint64_t bound) {
  uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  for (;;) {
    uint64_t v = RandomUint64();
    if (v < limit) return v % bound;
  }
}

}  // namespace coffer
