// Randomness: only the OS CSPRNG (getrandom via libsodium). Thread-safe.
#pragma once

#include <cstdint>
#include <span>

#include "coffer/base/bytes.h"

namespace coffer {

void FillRandom(std::span<uint8_t> out);
Bytes RandomBytes(size_t n);
uint64_t RandomUint64();
// Uniform in [0, bound) without modulo bias; bound > 0.
uint64_t RandomBelow(uint64_t bound);

}  // namespace coffer
