#include "volume/volume_format.h"

#include <gtest/gtest.h>

namespace coffer::volume_format {
namespace {

Header Sample() {
  Header h;
  h.id.fill(7);
  h.layout = MakeLayout(4096, 4144, 256).value();
  h.counter = 9;
  h.root.fill(3);
  h.slots[0].type = KeySlotType::kKeyFile;
  h.slots[0].key_id.fill(1);
  h.slots[2].type = KeySlotType::kPassphrase;
  h.slots[2].params = Bytes(28, 5);
  return h;
}

TEST(VolumeFormat, LayoutsFitAndSpanRecords) {
  auto l = MakeLayout(4096, 4144, 1024).value();
  EXPECT_EQ(l.records_per_sector, 1u);
  EXPECT_EQ(l.fanout, 128u);
  EXPECT_EQ(l.tree_levels(), 2u);  // 8 leaf nodes + 1 top
  EXPECT_EQ(l.total_nodes, 9u);
  // The original disk host: 16384 records of 272 bytes; a 256-byte sector needs two records.
  auto d = FitLayout(256, 272, 16384, UINT64_MAX).value();
  EXPECT_EQ(d.records_per_sector, 2u);
  EXPECT_LE(d.records_used, 16384u);
  EXPECT_GT(MakeLayout(256, 272, d.sector_count + 1)->records_used, 16384u);
  auto big = FitLayout(4096, 272, 16384, UINT64_MAX).value();
  EXPECT_EQ(big.records_per_sector, 16u);
  EXPECT_GE(big.sector_count * 4096, 3u << 20);
  EXPECT_FALSE(MakeLayout(1000, 1048, 10).ok());
  EXPECT_FALSE(MakeLayout(128, 176, 10).ok());
  EXPECT_EQ(FitLayout(4096, 4144, 3, 100).status().code(), StatusCode::kNoSpace);
}

TEST(VolumeFormat, HeaderRoundTrips) {
  Header h = Sample();
  Bytes b = EncodeHeaderBody(h);
  Bytes key(32, 9);
  SealHeader(b, key);
  auto p = ParseHeader(b, "t");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->counter, 9u);
  EXPECT_EQ(p->id, h.id);
  EXPECT_EQ(p->root, h.root);
  EXPECT_EQ(p->slots[2].params, h.slots[2].params);
  EXPECT_EQ(p->slots[1].type, KeySlotType::kEmpty);
  EXPECT_TRUE(VerifyHeaderMac(b, key));
  Bytes other(32, 8);
  EXPECT_FALSE(VerifyHeaderMac(b, other));
}

TEST(VolumeFormat, EveryByteFlipIsDataLoss) {
  Bytes b = EncodeHeaderBody(Sample());
  SealHeader(b, Bytes(32, 9));
  for (size_t i = 0; i < b.size(); ++i) {
    Bytes bad = b;
    bad[i] ^= 0x5a;
    auto p = ParseHeader(bad, "t");
    ASSERT_FALSE(p.ok()) << "byte " << i;
    EXPECT_EQ(p.status().code(), StatusCode::kDataLoss) << "byte " << i << ": " << p.status().ToString();
  }
}

TEST(VolumeFormat, TruncatedBlankAndFutureVersion) {
  Bytes b = EncodeHeaderBody(Sample());
  SealHeader(b, Bytes(32, 9));
  EXPECT_EQ(ParseHeader(ByteSpan(b.data(), 100), "t").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(ParseHeader(Bytes(4096, 0), "t").status().code(), StatusCode::kNotFound);
  auto with_version = [&](uint16_t version) {
    Bytes v = b;
    PutLe16(v.data() + 8, version);
    Hash256 sum = Blake2b256({ByteSpan(v.data(), kChecksumOffset)});
    std::memcpy(v.data() + kChecksumOffset, sum.data(), 32);
    return ParseHeader(v, "t");
  };
  // Every version this coffer knows parses (a volume keeps its version); others are kUnsupported.
  for (uint16_t version = kOldestFormatVersion; version <= kFormatVersion; ++version) {
    auto p = with_version(version);
    ASSERT_TRUE(p.ok()) << version << ": " << p.status().ToString();
    EXPECT_EQ(p->version, version);
  }
  for (uint16_t version : {uint16_t(0), uint16_t(kFormatVersion + 1), uint16_t(0xffff)}) {
    auto p = with_version(version);
    EXPECT_EQ(p.status().code(), StatusCode::kUnsupported) << version;
    EXPECT_NE(p.status().message().find("upgrade coffer"), std::string::npos);
  }
}

}  // namespace
}  // namespace coffer::volume_format
