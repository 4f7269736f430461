#include "coffer/base/random.h"

#include <sodium.h>
#include <sys/random.h>

#include <cerrno>
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

// getrandom(2) straight from the kernel's CSPRNG, in as few calls as it allows (libsodium asks for
// 256 bytes per call, and a system call per 256 bytes shows in per-sector costs). Older kernels
// without getrandom fall back to libsodium (/dev/urandom).
void FillRandom(std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n > 0) {
      done += size_t(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      EnsureSodium();
      randombytes_buf(out.data() + done, out.size() - done);
      return;
    }
  }
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
