#include "coffer/blockdev/fault_backing_store.h"

#include <gtest/gtest.h>

#include "coffer/blockdev/memory_backing_store.h"

namespace coffer {
namespace {

Bytes Rec(uint8_t v) { return Bytes(32, v); }

TEST(FaultBackingStore, AtomicCutDropsTheWholeBatch) {
  auto mem = std::make_shared<MemoryBackingStore>(32, 8);
  FaultBackingStore f(mem);
  f.CutPowerAfterRecordWrites(3, FaultBackingStore::CutMode::kAtomic);
  Bytes a = Rec(1), b = Rec(2);
  ASSERT_TRUE(f.WriteBatch(std::vector<RecordWrite>{{0, a}, {1, a}}).ok());
  EXPECT_EQ(f.WriteBatch(std::vector<RecordWrite>{{2, b}, {3, b}}).code(), StatusCode::kIoError);
  EXPECT_TRUE(f.power_cut());
  Bytes out(32);
  EXPECT_FALSE(f.Read(2, 1, out).ok());
  ASSERT_TRUE(mem->Read(2, 1, out).ok());
  EXPECT_EQ(out, Bytes(32, 0));
  ASSERT_TRUE(mem->Read(1, 1, out).ok());
  EXPECT_EQ(out, a);
}

TEST(FaultBackingStore, TornCutLandsAPrefix) {
  auto mem = std::make_shared<MemoryBackingStore>(32, 8);
  FaultBackingStore f(mem);
  f.CutPowerAfterRecordWrites(1, FaultBackingStore::CutMode::kTorn);
  Bytes b = Rec(2);
  EXPECT_FALSE(f.WriteBatch(std::vector<RecordWrite>{{2, b}, {3, b}}).ok());
  Bytes out(32);
  ASSERT_TRUE(mem->Read(2, 1, out).ok());
  EXPECT_EQ(out, b);
  ASSERT_TRUE(mem->Read(3, 1, out).ok());
  EXPECT_EQ(out, Bytes(32, 0));
}

TEST(FaultBackingStore, UnflushedWritesAreLostOnPowerCutButVisibleBefore) {
  auto mem = std::make_shared<MemoryBackingStore>(32, 8);
  FaultBackingStore f(mem);
  f.set_drop_unflushed(true);
  Bytes a = Rec(5), b = Rec(6);
  ASSERT_TRUE(f.WriteBatch(std::vector<RecordWrite>{{0, a}}).ok());
  ASSERT_TRUE(f.Flush().ok());
  ASSERT_TRUE(f.WriteBatch(std::vector<RecordWrite>{{1, b}}).ok());
  Bytes out(32);
  ASSERT_TRUE(f.Read(1, 1, out).ok());
  EXPECT_EQ(out, b);
  f.CutPowerNow();
  ASSERT_TRUE(mem->Read(1, 1, out).ok());
  EXPECT_EQ(out, Bytes(32, 0));
  ASSERT_TRUE(mem->Read(0, 1, out).ok());
  EXPECT_EQ(out, a);
}

TEST(FaultBackingStore, InjectedErrorsCountersSnapshotsAndFlips) {
  auto mem = std::make_shared<MemoryBackingStore>(32, 8);
  FaultBackingStore f(mem);
  Bytes a = Rec(7);
  f.FailWriteAfter(1);
  ASSERT_TRUE(f.WriteBatch(std::vector<RecordWrite>{{0, a}}).ok());
  EXPECT_EQ(f.WriteBatch(std::vector<RecordWrite>{{1, a}}).code(), StatusCode::kIoError);
  ASSERT_TRUE(f.WriteBatch(std::vector<RecordWrite>{{1, a}}).ok());
  f.FailReadAfter(0);
  Bytes out(32);
  EXPECT_EQ(f.Read(0, 1, out).code(), StatusCode::kIoError);
  ASSERT_TRUE(f.Read(0, 1, out).ok());
  EXPECT_EQ(f.counters().batches, 2u);
  EXPECT_EQ(f.counters().records_written, 2u);
  auto snap = f.Snapshot();
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(f.XorByte(0, 3, 0x80).ok());
  ASSERT_TRUE(f.Read(0, 1, out).ok());
  EXPECT_EQ(out[3], 7 ^ 0x80);
  ASSERT_TRUE(f.Restore(*snap).ok());
  ASSERT_TRUE(f.Read(0, 1, out).ok());
  EXPECT_EQ(out, a);
}

}  // namespace
}  // namespace coffer
