// PlainCache: verified plaintext of committed sectors, so that a filesystem re-reading the same
// metadata blocks does not pay an AEAD open (and a store read) every time. Fixed memory (slots of
// one sector each), clock (second-chance) eviction. Admission is on the second access within a
// window (a direct-mapped table of recently missed sectors), so one pass over a volume larger than
// the cache neither evicts the hot set nor costs a copy per sector.
// Internal to the sealed volume; not thread-safe (the volume is used by one thread at a time).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <unordered_map>
#include <vector>

#include "coffer/base/bytes.h"

namespace coffer::volume_internal {

class PlainCache {
 public:
  void Init(size_t slots, size_t sector_size) {
    sector_size_ = sector_size;
    slots = slots ? slots : 1;
    arena_.assign(slots * sector_size, 0);
    entries_.assign(slots, Entry{});
    ghost_.assign(slots, kNone);
    index_.clear();
    index_.reserve(slots);
    hand_ = 0;
  }

  // The cached plaintext, or nullptr.
  const uint8_t* Find(uint64_t sector) {
    auto it = index_.find(sector);
    if (it == index_.end()) return nullptr;
    entries_[it->second].referenced = true;
    return Slot(it->second);
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
    if (auto it = index_.find(sector); it != index_.end()) return Slot(it->second);
    for (;;) {
      Entry& e = entries_[hand_];
      if (e.sector != kNone && e.referenced) {
        e.referenced = false;
        hand_ = (hand_ + 1) % entries_.size();
        continue;
      }
      if (e.sector != kNone) index_.erase(e.sector);
      size_t slot = hand_;
      hand_ = (hand_ + 1) % entries_.size();
      e = Entry{sector, true};
      index_.emplace(sector, uint32_t(slot));
      return Slot(slot);
    }
  }

  void Drop(uint64_t sector) {
    auto it = index_.find(sector);
    if (it == index_.end()) return;
    entries_[it->second] = Entry{};
    index_.erase(it);
  }

  void Clear() {
    for (Entry& e : entries_) e = Entry{};
    index_.clear();
    std::fill(arena_.begin(), arena_.end(), 0);
  }

 private:
  static constexpr uint64_t kNone = UINT64_MAX;
  struct Entry {
    uint64_t sector = kNone;
    bool referenced = false;
  };
  uint8_t* Slot(size_t slot) { return arena_.data() + slot * sector_size_; }

  size_t sector_size_ = 0;
  Bytes arena_;
  std::vector<Entry> entries_;
  std::vector<uint64_t> ghost_;
  std::pmr::unsynchronized_pool_resource pool_;
  std::pmr::unordered_map<uint64_t, uint32_t> index_{&pool_};
  size_t hand_ = 0;
};

}  // namespace coffer::volume_internal
