// Unit tests of every fault FaultBlockDevice injects. The conformance suite (with nothing armed) is
// instantiated in block_device_conformance_test.cc.
#include "coffer/blockdev/fault_block_device.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "coffer/blockdev/memory_block_device.h"

namespace coffer {
namespace {

constexpr BlockGeometry kGeo{16, 16, 256, 8};

struct Rig {
  explicit Rig(uint64_t seed = 1, BlockGeometry g = kGeo) {
    auto mem = std::make_unique<MemoryBlockDevice>(g);
    memory = mem.get();
    dev = std::make_unique<FaultBlockDevice>(std::move(mem), seed);
  }
  std::vector<uint8_t> Block(uint32_t b) {
    const auto& g = memory->geometry();
    auto begin = memory->raw().begin() + int64_t(b) * g.block_size;
    return std::vector<uint8_t>(begin, begin + g.block_size);
  }
  MemoryBlockDevice* memory;
  std::unique_ptr<FaultBlockDevice> dev;
};

std::vector<uint8_t> Bytes(size_t n, uint8_t v) { return std::vector<uint8_t>(n, v); }

TEST(FaultBlockDevice, CountsOperationsBytesAndWear) {
  Rig r;
  ASSERT_TRUE(r.dev->Erase(2).ok());
  ASSERT_TRUE(r.dev->Erase(2).ok());
  ASSERT_TRUE(r.dev->Prog(2, 0, Bytes(32, 0x11)).ok());
  std::vector<uint8_t> out(48);
  ASSERT_TRUE(r.dev->Read(2, 16, out).ok());
  ASSERT_TRUE(r.dev->Sync().ok());
  const auto& c = r.dev->counters();
  EXPECT_EQ(c.erases, 2u);
  EXPECT_EQ(c.bytes_erased, 512u);
  EXPECT_EQ(c.progs, 1u);
  EXPECT_EQ(c.bytes_programmed, 32u);
  EXPECT_EQ(c.reads, 1u);
  EXPECT_EQ(c.bytes_read, 48u);
  EXPECT_EQ(c.syncs, 1u);
  EXPECT_EQ(r.dev->wear(2), 2u);
  EXPECT_EQ(r.dev->wear(3), 0u);
  EXPECT_EQ(r.dev->max_wear(), 2u);
  EXPECT_EQ(r.dev->mutating_ops(), 3u);
  r.dev->ResetCounters();
  EXPECT_EQ(r.dev->counters().progs, 0u);
}

TEST(FaultBlockDevice, AtomicPowerCutDropsTheCutOperationAndFailsEverythingAfter) {
  Rig r;
  ASSERT_TRUE(r.dev->Erase(0).ok());
  r.dev->ArmPowerCut(1, PowerCutMode::kAtomic);
  ASSERT_TRUE(r.dev->Prog(0, 0, Bytes(16, 0xaa)).ok());  // completes
  Status cut = r.dev->Prog(0, 16, Bytes(16, 0xbb));       // interrupted
  EXPECT_EQ(cut.code(), StatusCode::kIoError);
  EXPECT_TRUE(r.dev->powered_off());
  EXPECT_EQ(r.dev->power_cuts(), 1u);
  std::vector<uint8_t> out(16);
  EXPECT_EQ(r.dev->Read(0, 0, out).code(), StatusCode::kIoError);
  EXPECT_EQ(r.dev->Prog(0, 32, Bytes(16, 1)).code(), StatusCode::kIoError);
  EXPECT_EQ(r.dev->Erase(1).code(), StatusCode::kIoError);
  EXPECT_EQ(r.dev->Sync().code(), StatusCode::kIoError);
  auto block = r.Block(0);
  EXPECT_TRUE(std::all_of(block.begin(), block.begin() + 16, [](uint8_t b) { return b == 0xaa; }));
  EXPECT_TRUE(std::all_of(block.begin() + 16, block.end(), [](uint8_t b) { return b == 0xff; }));
  r.dev->Reset();
  EXPECT_FALSE(r.dev->powered_off());
  ASSERT_TRUE(r.dev->Read(0, 0, out).ok());
  EXPECT_EQ(out, Bytes(16, 0xaa));
}

TEST(FaultBlockDevice, AtomicPowerCutDuringEraseKeepsTheOldBytes) {
  Rig r;
  ASSERT_TRUE(r.dev->Prog(1, 0, Bytes(256, 0x5a)).ok());
  r.dev->ArmPowerCut(0, PowerCutMode::kAtomic);
  EXPECT_EQ(r.dev->Erase(1).code(), StatusCode::kIoError);
  EXPECT_EQ(r.Block(1), Bytes(256, 0x5a));
  EXPECT_EQ(r.dev->wear(1), 0u);
}

TEST(FaultBlockDevice, TornProgAppliesAPrefixOnly) {
  bool saw_partial = false;
  for (uint64_t seed = 1; seed < 40; ++seed) {
    Rig r(seed);
    r.dev->ArmPowerCut(0, PowerCutMode::kTorn);
    EXPECT_EQ(r.dev->Prog(3, 0, Bytes(256, 0x00)).code(), StatusCode::kIoError);
    auto block = r.Block(3);
    // A prefix of zeros, then untouched erased bytes: never anything else.
    auto first_ff = std::find(block.begin(), block.end(), 0xff);
    EXPECT_TRUE(std::all_of(block.begin(), first_ff, [](uint8_t b) { return b == 0; }));
    EXPECT_TRUE(std::all_of(first_ff, block.end(), [](uint8_t b) { return b == 0xff; }));
    EXPECT_NE(first_ff, block.begin() + 256) << "a torn prog never completes";
    if (first_ff != block.begin()) saw_partial = true;
  }
  EXPECT_TRUE(saw_partial);
}

TEST(FaultBlockDevice, TornEraseErasesAPrefixAndKeepsTheRest) {
  bool saw_partial = false;
  for (uint64_t seed = 1; seed < 40; ++seed) {
    Rig r(seed);
    ASSERT_TRUE(r.dev->Prog(4, 0, Bytes(256, 0x33)).ok());
    r.dev->ArmPowerCut(0, PowerCutMode::kTorn);
    EXPECT_EQ(r.dev->Erase(4).code(), StatusCode::kIoError);
    auto block = r.Block(4);
    auto first_old = std::find(block.begin(), block.end(), 0x33);
    EXPECT_TRUE(std::all_of(block.begin(), first_old, [](uint8_t b) { return b == 0xff; }));
    EXPECT_TRUE(std::all_of(first_old, block.end(), [](uint8_t b) { return b == 0x33; }));
    EXPECT_NE(first_old, block.end()) << "a torn erase never completes";
    if (first_old != block.begin()) saw_partial = true;
  }
  EXPECT_TRUE(saw_partial);
}

TEST(FaultBlockDevice, OutOfOrderCutKeepsSyncedDataAndMixesUnsyncedWrites) {
  bool saw_dropped = false, saw_landed = false;
  for (uint64_t seed = 1; seed < 30; ++seed) {
    Rig r(seed);
    ASSERT_TRUE(r.dev->Prog(0, 0, Bytes(64, 0x01)).ok());
    ASSERT_TRUE(r.dev->Sync().ok());  // durable from here
    for (uint32_t off = 64; off < 256; off += 16) ASSERT_TRUE(r.dev->Prog(0, off, Bytes(16, 0x02)).ok());
    ASSERT_TRUE(r.dev->Prog(5, 0, Bytes(32, 0x03)).ok());
    r.dev->ArmPowerCut(0, PowerCutMode::kOutOfOrder);
    EXPECT_EQ(r.dev->Prog(6, 0, Bytes(16, 0x04)).code(), StatusCode::kIoError);
    auto b0 = r.Block(0);
    EXPECT_TRUE(std::all_of(b0.begin(), b0.begin() + 64, [](uint8_t b) { return b == 0x01; }))
        << "synced bytes survive";
    for (size_t i = 64; i < 256; ++i) {
      ASSERT_TRUE(b0[i] == 0x02 || b0[i] == 0xff) << "unsynced byte is new or old, never garbage";
      if (b0[i] == 0x02) saw_landed = true;
      if (b0[i] == 0xff) saw_dropped = true;
    }
    EXPECT_EQ(r.Block(6), Bytes(256, 0xff)) << "the interrupted prog itself never lands";
  }
  EXPECT_TRUE(saw_dropped);
  EXPECT_TRUE(saw_landed);
}

TEST(FaultBlockDevice, OutOfOrderCutCanUndoAnUnsyncedErase) {
  bool saw_undone = false;
  for (uint64_t seed = 1; seed < 30; ++seed) {
    Rig r(seed);
    ASSERT_TRUE(r.dev->Prog(2, 0, Bytes(256, 0x77)).ok());
    ASSERT_TRUE(r.dev->Sync().ok());
    ASSERT_TRUE(r.dev->Erase(2).ok());
    r.dev->CutPowerNow(PowerCutMode::kOutOfOrder);
    EXPECT_TRUE(r.dev->powered_off());
    auto b = r.Block(2);
    for (uint8_t v : b) ASSERT_TRUE(v == 0x77 || v == 0xff);
    if (std::count(b.begin(), b.end(), 0x77) > 0) saw_undone = true;
  }
  EXPECT_TRUE(saw_undone);
}

TEST(FaultBlockDevice, PowerCutCountsProgsAndErasesButNotReadsOrSyncs) {
  Rig r;
  r.dev->ArmPowerCut(2, PowerCutMode::kAtomic);
  std::vector<uint8_t> out(16);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(r.dev->Read(0, 0, out).ok());
  ASSERT_TRUE(r.dev->Sync().ok());
  ASSERT_TRUE(r.dev->Erase(0).ok());
  ASSERT_TRUE(r.dev->Prog(0, 0, Bytes(16, 9)).ok());
  EXPECT_EQ(r.dev->Erase(1).code(), StatusCode::kIoError);
}

TEST(FaultBlockDevice, DisarmedPowerCutNeverFires) {
  Rig r;
  r.dev->ArmPowerCut(0, PowerCutMode::kAtomic);
  r.dev->DisarmPowerCut();
  EXPECT_TRUE(r.dev->Erase(0).ok());
  EXPECT_FALSE(r.dev->powered_off());
}

TEST(FaultBlockDevice, BadBlockProgErrorIsCorruptAndChangesNothing) {
  Rig r;
  r.dev->SetBadBlock(3, BadBlockMode::kProgError);
  Status s = r.dev->Prog(3, 0, Bytes(16, 0));
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);  // "bad block, relocate"
  EXPECT_EQ(r.Block(3), Bytes(256, 0xff));
  EXPECT_TRUE(r.dev->Prog(4, 0, Bytes(16, 0)).ok()) << "other blocks are fine";
  r.dev->ClearBadBlock(3);
  EXPECT_TRUE(r.dev->Prog(3, 0, Bytes(16, 0)).ok());
}

TEST(FaultBlockDevice, BadBlockEraseErrorIsCorrupt) {
  Rig r;
  ASSERT_TRUE(r.dev->Prog(1, 0, Bytes(16, 0)).ok());
  r.dev->SetBadBlock(1, BadBlockMode::kEraseError);
  EXPECT_EQ(r.dev->Erase(1).code(), StatusCode::kCorrupt);
  EXPECT_EQ(r.Block(1)[0], 0);
}

TEST(FaultBlockDevice, BadBlockReadErrorIsIoError) {
  Rig r;
  r.dev->SetBadBlock(0, BadBlockMode::kReadError);
  std::vector<uint8_t> out(16);
  EXPECT_EQ(r.dev->Read(0, 0, out).code(), StatusCode::kIoError);
  EXPECT_TRUE(r.dev->Read(1, 0, out).ok());
}

TEST(FaultBlockDevice, NoopBadBlocksSucceedSilentlyWithoutChanging) {
  Rig r;
  ASSERT_TRUE(r.dev->Prog(2, 0, Bytes(16, 0x10)).ok());
  r.dev->SetBadBlock(2, BadBlockMode::kEraseNoop);
  EXPECT_TRUE(r.dev->Erase(2).ok());
  EXPECT_EQ(r.Block(2)[0], 0x10);
  r.dev->SetBadBlock(5, BadBlockMode::kProgNoop);
  EXPECT_TRUE(r.dev->Prog(5, 0, Bytes(16, 0x10)).ok());
  std::vector<uint8_t> out(16);
  ASSERT_TRUE(r.dev->Read(5, 0, out).ok());
  EXPECT_EQ(out, Bytes(16, 0xff)) << "a read-back verification sees the prog did not land";
}

TEST(FaultBlockDevice, BlocksWearOutAfterEraseCycles) {
  Rig r;
  r.dev->SetEraseCycles(3, BadBlockMode::kEraseError);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(r.dev->Erase(7).ok());
  EXPECT_EQ(r.dev->Erase(7).code(), StatusCode::kCorrupt);
  EXPECT_EQ(r.dev->wear(7), 3u);
  EXPECT_TRUE(r.dev->Erase(6).ok());
}

TEST(FaultBlockDevice, InjectedErrorsSkipThenFailCountTimes) {
  Rig r;
  r.dev->FailNext(FaultOp::kRead, StatusCode::kIoError, /*count=*/2, /*skip=*/1);
  std::vector<uint8_t> out(16);
  EXPECT_TRUE(r.dev->Read(0, 0, out).ok());
  EXPECT_EQ(r.dev->Read(0, 0, out).code(), StatusCode::kIoError);
  EXPECT_EQ(r.dev->Read(0, 0, out).code(), StatusCode::kIoError);
  EXPECT_TRUE(r.dev->Read(0, 0, out).ok());
  r.dev->FailNext(FaultOp::kProg, StatusCode::kCorrupt);
  EXPECT_EQ(r.dev->Prog(0, 0, Bytes(16, 0)).code(), StatusCode::kCorrupt);
  EXPECT_EQ(r.Block(0), Bytes(256, 0xff));
  r.dev->FailNext(FaultOp::kErase, StatusCode::kIoError);
  EXPECT_EQ(r.dev->Erase(0).code(), StatusCode::kIoError);
  r.dev->FailNext(FaultOp::kSync, StatusCode::kIoError);
  EXPECT_EQ(r.dev->Sync().code(), StatusCode::kIoError);
  EXPECT_TRUE(r.dev->Sync().ok());
}

TEST(FaultBlockDevice, FlipBitChangesExactlyOneBit) {
  Rig r;
  ASSERT_TRUE(r.dev->Prog(1, 0, Bytes(256, 0x00)).ok());
  ASSERT_TRUE(r.dev->FlipBit(1, 100, 3).ok());
  auto b = r.Block(1);
  EXPECT_EQ(b[100], 0x08);
  EXPECT_EQ(std::count(b.begin(), b.end(), 0), 255);
  EXPECT_EQ(r.dev->counters().progs, 1u) << "flips are not counted as device operations";
  EXPECT_EQ(r.dev->FlipBit(8, 0, 0).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(r.dev->FlipBit(0, 256, 0).code(), StatusCode::kOutOfRange);
}

TEST(FaultBlockDevice, FlipRandomBitsStaysInRange) {
  Rig r;
  ASSERT_TRUE(r.dev->FlipRandomBits(10, 2, 2).ok());
  size_t changed = 0;
  for (uint32_t b = 0; b < 8; ++b) {
    auto blk = r.Block(b);
    size_t diff = size_t(std::count_if(blk.begin(), blk.end(), [](uint8_t v) { return v != 0xff; }));
    if (b < 2 || b > 3) {
      EXPECT_EQ(diff, 0u) << "block " << b;
    }
    changed += diff;
  }
  EXPECT_GT(changed, 0u);
}

TEST(FaultBlockDevice, SnapshotAndRestoreRoundTrip) {
  Rig r;
  ASSERT_TRUE(r.dev->Prog(0, 0, Bytes(32, 0x42)).ok());
  auto snap = r.dev->Snapshot();
  ASSERT_TRUE(snap.ok());
  ASSERT_TRUE(r.dev->Erase(0).ok());
  ASSERT_TRUE(r.dev->Prog(0, 0, Bytes(256, 0x13)).ok());
  ASSERT_TRUE(r.dev->Prog(7, 0, Bytes(16, 0x13)).ok());
  ASSERT_TRUE(r.dev->Restore(*snap).ok());
  EXPECT_EQ(r.memory->raw(), *snap);
  EXPECT_EQ(r.dev->Restore(std::vector<uint8_t>(10)).code(), StatusCode::kInvalidArgument);
}

TEST(FaultBlockDevice, SameSeedSameOutcome) {
  auto run = [](uint64_t seed) {
    Rig r(seed);
    r.dev->ArmPowerCut(0, PowerCutMode::kTorn);
    (void)r.dev->Prog(0, 0, Bytes(256, 0));
    return r.Block(0);
  };
  EXPECT_EQ(run(7), run(7));
}

TEST(FaultBlockDevice, NoEraseValueDevicesTearProgsOverOldBytes) {
  Rig r(3, BlockGeometry{16, 16, 256, 4, -1});
  ASSERT_TRUE(r.dev->Prog(0, 0, Bytes(256, 0x00)).ok());
  r.dev->ArmPowerCut(0, PowerCutMode::kTorn);
  EXPECT_EQ(r.dev->Prog(0, 0, Bytes(256, 0x66)).code(), StatusCode::kIoError);
  for (uint8_t v : r.Block(0)) ASSERT_TRUE(v == 0x66 || v == 0x00);
}

}  // namespace
}  // namespace coffer
