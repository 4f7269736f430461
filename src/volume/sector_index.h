// SectorIndex: a sparse map from sector number to a small slot number, for the sealed volume's
// per-operation look-ups (its dirty sectors and its plaintext cache). Two levels of plain arrays:
// chunks of 4096 entries are allocated when a sector in them is first set and kept until Reset, so
// a look-up is two indexings (no hashing, no allocation per write) and memory grows with the part of
// the volume in use, not with its size. Internal; not thread-safe (like the volume).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace coffer::volume_internal {

class SectorIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  void Init(uint64_t sector_count) {
    chunks_.clear();
    chunks_.resize((sector_count + kChunk - 1) / kChunk);
  }

  // The slot stored for `sector`, or kNone. Sectors past the end read as kNone.
  uint32_t Get(uint64_t sector) const {
    uint64_t c = sector / kChunk;
    if (c >= chunks_.size() || !chunks_[c]) return kNone;
    return chunks_[c][sector % kChunk];
  }

  // Stores `slot` for `sector` (kNone removes it). `sector` must be below the Init count.
  void Set(uint64_t sector, uint32_t slot) {
    std::unique_ptr<uint32_t[]>& chunk = chunks_[sector / kChunk];
    if (!chunk) {
      if (slot == kNone) return;
      chunk.reset(new uint32_t[kChunk]);
      std::fill_n(chunk.get(), kChunk, kNone);
    }
    chunk[sector % kChunk] = slot;
  }

  // Frees every chunk (all sectors read as kNone again).
  void Reset() {
    for (auto& c : chunks_) c.reset();
  }

 private:
  static constexpr uint64_t kChunk = 4096;
  std::vector<std::unique_ptr<uint32_t[]>> chunks_;
};

}  // namespace coffer::volume_internal
