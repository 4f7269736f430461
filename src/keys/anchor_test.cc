#include "coffer/keys/anchor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "coffer/base/file_util.h"

namespace coffer {
namespace {

struct Tmp {
  Tmp() {
    char d[] = "/tmp/coffer-an-XXXXXX";
    dir = mkdtemp(d);
  }
  ~Tmp() { std::filesystem::remove_all(dir); }
  std::string dir;
};

VolumeId Id(uint8_t v) {
  VolumeId id;
  id.fill(v);
  return id;
}

TEST(FileAnchor, CommitLoadForgetAcrossInstances) {
  Tmp t;
  std::string p = t.dir + "/sub/dir/k.anchor";
  AnchorEntry e1{5, {}};
  e1.root[0] = 1;
  {
    FileAnchor a(p);
    EXPECT_FALSE(a.Load(Id(1))->has_value());
    ASSERT_TRUE(a.Commit(Id(1), e1).ok());
    ASSERT_TRUE(a.Commit(Id(2), {1, {}}).ok());
  }
  FileAnchor a(p);
  EXPECT_EQ(a.Load(Id(1))->value(), e1);
  EXPECT_EQ(a.Load(Id(2))->value().counter, 1u);
  ASSERT_TRUE(a.Forget(Id(1)).ok());
  EXPECT_FALSE(a.Load(Id(1))->has_value());
  EXPECT_TRUE(a.Load(Id(2))->has_value());
}

TEST(FileAnchor, CounterNeverMovesBackwards) {
  Tmp t;
  FileAnchor a(t.dir + "/a");
  ASSERT_TRUE(a.Commit(Id(1), {5, {}}).ok());
  EXPECT_EQ(a.Commit(Id(1), {4, {}}).code(), StatusCode::kFailedPrecondition);
  AnchorEntry other{5, {}};
  other.root[3] = 9;
  EXPECT_EQ(a.Commit(Id(1), other).code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(a.Commit(Id(1), {5, {}}).ok());  // same entry again is a no-op
  EXPECT_EQ(a.Load(Id(1))->value().counter, 5u);
}

TEST(FileAnchor, CorruptAnchorFileIsDataLoss) {
  Tmp t;
  std::string p = t.dir + "/a";
  FileAnchor a(p);
  ASSERT_TRUE(a.Commit(Id(1), {5, {}}).ok());
  Bytes b = ReadFileBytes(p).value();
  for (size_t i = 0; i < b.size(); i += 5) {
    Bytes bad = b;
    bad[i] ^= 0x01;
    ASSERT_TRUE(WriteFileAtomic(p, bad).ok());
    EXPECT_EQ(a.Load(Id(1)).status().code(), StatusCode::kDataLoss) << i;
  }
}

TEST(FaultAnchor, CommitThatLandsOrNot) {
  for (bool lands : {false, true}) {
    auto mem = std::make_shared<MemoryAnchor>();
    FaultAnchor f(mem);
    ASSERT_TRUE(f.Commit(Id(1), {1, {}}).ok());
    f.CutPowerAtCommit(1, lands);
    EXPECT_EQ(f.Commit(Id(1), {2, {}}).code(), StatusCode::kIoError);
    EXPECT_TRUE(f.power_cut());
    EXPECT_EQ(mem->Load(Id(1))->value().counter, lands ? 2u : 1u);
  }
}

}  // namespace
}  // namespace coffer
