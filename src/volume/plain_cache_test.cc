#include "volume/plain_cache.h"

#include <gtest/gtest.h>

namespace coffer::volume_internal {
namespace {

TEST(PlainCache, AdmitsOnTheSecondMissAndFindsWhatWasInserted) {
  PlainCache c;
  c.Init(4, 8, 64);
  EXPECT_EQ(c.Find(10), nullptr);
  EXPECT_FALSE(c.Admit(10));  // first miss: remembered only
  EXPECT_TRUE(c.Admit(10));   // second: cache it
  std::memset(c.Insert(10), 0xab, 8);
  const uint8_t* p = c.Find(10);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p[0], 0xab);
  EXPECT_EQ(p[7], 0xab);
}

TEST(PlainCache, AScanLargerThanTheCacheAdmitsNothing) {
  PlainCache c;
  c.Init(4, 8, 64);
  for (int pass = 0; pass < 3; ++pass) {
    for (uint64_t s = 0; s < 16; ++s) EXPECT_FALSE(c.Admit(s)) << "pass " << pass << " sector " << s;
  }
}

TEST(PlainCache, ClockEvictionKeepsRecentlyUsedEntriesAndDropForgets) {
  PlainCache c;
  c.Init(3, 4, 64);
  for (uint64_t s : {1, 2, 3}) std::memset(c.Insert(s), int(s), 4);
  // All referenced: the hand clears them, then evicts 1; 4 takes its slot.
  std::memset(c.Insert(4), 4, 4);
  EXPECT_EQ(c.Find(1), nullptr);
  ASSERT_NE(c.Find(2), nullptr);  // referenced again
  std::memset(c.Insert(5), 5, 4);  // evicts 3 (not referenced since the sweep), keeps 2
  EXPECT_EQ(c.Find(3), nullptr);
  ASSERT_NE(c.Find(2), nullptr);
  EXPECT_EQ(c.Find(2)[0], 2);
  EXPECT_EQ(c.Find(5)[0], 5);
  c.Drop(5);
  EXPECT_EQ(c.Find(5), nullptr);
  c.Clear();
  EXPECT_EQ(c.Find(2), nullptr);
  EXPECT_EQ(c.Find(4), nullptr);
}

}  // namespace
}  // namespace coffer::volume_internal
