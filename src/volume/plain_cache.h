// PlainCache: verified plaintext of committed sectors, so that a filesystem re-reading the same
// metadata blocks does not pay an AEAD open (and a store read) every time. Fixed memory (slots of
// one sector each), clock (second-chance) eviction. Admission is on the second access within a
// window (a direct-mapped table of recently missed sectors), so one pass over a volume larger than
// the cache neither evicts the hot set nor costs a copy per sector.
// Internal to the sealed volume; not thread-safe (the volume is used by one thread at a time).
#pragma once

#include <string.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "coffer/base/bytes.h"
#include "volume/sector_index.h"

namespace coffer::volume_internal {

class PlainCache {
 public:
  // `slots` sectors of `sector_size` bytes, for a volume of `sector_count` sectors.
  void Init(size_t slots, size_t sector_size, uint64_t sector_count) {
    sector_size_ = sector_size;
    slots = slots ? slots : 1;
    // Not value-initialised: a large arena comes from mmap and its pages are backed only as slots
    // are first used, so a generous cache costs memory only when the workload needs it.
    arena_.reset(new uint8_t[slots * sector_size]);
    used_ = 0;
    entries_.assign(slots, Entry{});
    ghost_.assign(slots, kNone);
    index_.Init(sector_count);
    hand_ = 0;
  }

  // The cached plaintext, or nullptr.
  const uint8_t* Find(uint64_t sector) {
    uint32_t slot = index_.Get(sector);
    if (slot == SectorIndex::kNone) return nullptr;
    entries_[slot].referenced = true;
    return Slot(slot);
  }

  // After a miss: should the sector be cached? True on its second miss within the window.
  bool Admit(uint64_t sector) {
    uint64_t& g = ghost_[sector % ghost_.size()];
    if (g == sector) return true;
    g = sector;
    return false;
  }

  // A slot for `sector` (evicting another); fill it, or Drop(sector) if filling fails.
  uint8_t* Insert(uint64_t sector) {
    if (uint32_t slot = index_.Get(sector); slot != SectorIndex::kNone) return Slot(slot);
    for (;;) {
      Entry& e = entries_[hand_];
      if (e.sector != kNone && e.referenced) {
        e.referenced = false;
        hand_ = (hand_ + 1) % entries_.size();
        continue;
      }
      if (e.sector != kNone) index_.Set(e.sector, SectorIndex::kNone);
      size_t slot = hand_;
      used_ = std::max(used_, slot + 1);
      hand_ = (hand_ + 1) % entries_.size();
      e = Entry{sector, true};
      index_.Set(sector, uint32_t(slot));
      return Slot(slot);
    }
  }

  void Drop(uint64_t sector) {
    uint32_t slot = index_.Get(sector);
    if (slot == SectorIndex::kNone) return;
    entries_[slot] = Entry{};
    index_.Set(sector, SectorIndex::kNone);
  }

  void Clear() {
    for (Entry& e : entries_) e = Entry{};
    index_.Reset();
    if (arena_) explicit_bzero(arena_.get(), used_ * sector_size_);  // every slot ever handed out
  }
  ~PlainCache() { Clear(); }

 private:
  static constexpr uint64_t kNone = UINT64_MAX;
  struct Entry {
    uint64_t sector = kNone;
    bool referenced = false;
  };
  uint8_t* Slot(size_t slot) { return arena_.get() + slot * sector_size_; }

  size_t sector_size_ = 0;
  std::unique_ptr<uint8_t[]> arena_;
  size_t used_ = 0;  // slots [0, used_) have held plaintext
  std::vector<Entry> entries_;
  std::vector<uint64_t> ghost_;
  SectorIndex index_;  // sector -> slot
  size_t hand_ = 0;
};

}  // namespace coffer::volume_internal
