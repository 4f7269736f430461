#include "volume/sector_index.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace coffer::volume_internal {
namespace {

TEST(SectorIndex, StoresAndRemovesAcrossChunksLikeAMap) {
  SectorIndex index;
  const uint64_t sectors = 3 * 4096 + 17;  // a partial last chunk
  index.Init(sectors);
  std::map<uint64_t, uint32_t> model;
  std::mt19937_64 rng(7);
  for (int step = 0; step < 20000; ++step) {
    uint64_t s = rng() % sectors;
    if (rng() % 3 == 0) {
      index.Set(s, SectorIndex::kNone);
      model.erase(s);
    } else {
      uint32_t v = uint32_t(rng() % 1000);
      index.Set(s, v);
      model[s] = v;
    }
  }
  for (uint64_t s = 0; s < sectors; ++s) {
    auto it = model.find(s);
    ASSERT_EQ(index.Get(s), it == model.end() ? SectorIndex::kNone : it->second) << s;
  }
  // Past the end (and far past it) reads as absent rather than out of bounds.
  EXPECT_EQ(index.Get(sectors), SectorIndex::kNone);
  EXPECT_EQ(index.Get(UINT64_MAX), SectorIndex::kNone);
  index.Reset();
  for (uint64_t s = 0; s < sectors; s += 97) EXPECT_EQ(index.Get(s), SectorIndex::kNone) << s;
  index.Set(sectors - 1, 5);  // usable again after a reset
  EXPECT_EQ(index.Get(sectors - 1), 5u);
}

}  // namespace
}  // namespace coffer::volume_internal
