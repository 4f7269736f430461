// Partition CSV parsing and binary output against gen_esp32part (ESP-IDF v5.5.5) and its checks.
#include "coffer/flash/partition_table.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "coffer/base/file_util.h"

namespace coffer::flash {
namespace {

const std::string kDir = std::string(COFFER_VECTORS_DIR) + "/esp";

TEST(PartitionTableTest, SharedCsvGivesByteIdenticalBinary) {
  if (!std::filesystem::exists(kDir + "/partitions.csv")) GTEST_SKIP() << "vectors missing at " << kDir;
  Bytes csv = *ReadFileBytes(kDir + "/partitions.csv");
  PartitionTableOptions o;
  o.flash_size = 4 << 20;
  auto t = PartitionTable::FromCsv(AsStringView(csv), o);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  auto bin = t->ToBinary();
  ASSERT_TRUE(bin.ok());
  EXPECT_EQ(*bin, *ReadFileBytes(kDir + "/partitions.bin"));
  auto back = PartitionTable::FromBinary(*bin);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ToCsv(),
            "# ESP-IDF Partition Table\n# Name, Type, SubType, Offset, Size, Flags\nnvs,data,nvs,0x9000,16K,\n"
            "otadata,data,ota,0xd000,8K,\nphy_init,data,phy,0xf000,4K,encrypted\nota_0,app,ota_0,0x10000,1792K,\n"
            "ota_1,app,ota_1,0x1d0000,1792K,\nstorage,data,spiffs,0x390000,384K,encrypted\n"
            "secret,64,1,0x3f0000,64K,encrypted:readonly\n");
}

TEST(PartitionTableTest, OffsetsAssignedLikeGenEsp32part) {
  auto t = PartitionTable::FromCsv("nvs, data, nvs, , 24K\nphy_init, data, phy, , 4K\nfactory, app, factory, , 1M\n"
                                   "storage, data, fat, , 0x20000\nend, data, 0x99, , -0x200000\n");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const auto& p = t->partitions();
  EXPECT_EQ(p[0].offset, 0x9000u);
  EXPECT_EQ(p[1].offset, 0xf000u);
  EXPECT_EQ(p[2].offset, 0x10000u);
  EXPECT_EQ(p[2].size, 0x100000u);
  EXPECT_EQ(p[3].offset, 0x110000u);
  EXPECT_EQ(p[4].offset, 0x130000u);
  EXPECT_EQ(p[4].size, 0x200000u - 0x130000u);  // negative size = end address
}

TEST(PartitionTableTest, MalformedCsvGivesClearErrors) {
  struct Bad { const char* csv; const char* msg; };
  for (Bad b : {Bad{"nvs, data, nvs, 0x9000, 0x6000, bogus\n", "unknown flag 'bogus'"},
                Bad{"a, , nvs, 0x9000, 0x6000\n", "Field 'type' can't be left empty."},
                Bad{"a, app, , 0x10000, 0x10000\n", "App partition cannot have an empty subtype"},
                Bad{"a, data, nvs, 0x9000\n", "Size field can't be empty"},
                Bad{"a, data, nvs, zz, 0x6000\n", "Invalid field value zz"},
                Bad{"a, app, ota_99, 0x10000, 0x10000\n", "is not valid. Known keywords"},
                Bad{"a, data, nvs, 0x7000, 0x6000\n", "Partitions overlap"},
                Bad{"a, data, nvs, 0x9000, 0x6000\nb, data, phy, 0xa000, 0x1000\n", "Partitions overlap"},
                Bad{"a, app, factory, 0x11000, 0x10000\n", "is not aligned to 0x10000"},
                Bad{"a, data, nvs, 0x9100, 0x6000\n", "is not aligned to 0x1000"},
                Bad{"a, data, nvs, 0x9000, 0x6000\na, data, phy, , 0x1000\n", "Partition names must be unique"},
                Bad{"a, data, ota, 0x9000, 0x1000\n", "otadata partition must have size = 0x2000"},
                Bad{"a, data, nvs, 0x9000, 0x2000\n", "must be flagged as 'readonly'"},
                Bad{"a_name_much_longer_than_16, data, nvs, 0x9000, 0x6000\n", "at most 16"},
                Bad{"a, 0x1ff, 0, 0x9000, 0x6000\n", "out of range"},
                Bad{"a, data, nvs, 0x9000, 0x60000000000\n", "invalid size"}}) {
    auto t = PartitionTable::FromCsv(b.csv);
    ASSERT_FALSE(t.ok()) << b.csv;
    EXPECT_NE(t.status().message().find(b.msg), std::string::npos) << t.status().message();
  }
  PartitionTableOptions small;
  small.flash_size = 1 << 20;
  EXPECT_FALSE(PartitionTable::FromCsv("a, app, factory, 0x10000, 2M\n", small).ok());
}

TEST(PartitionTableTest, OtadataCrcRuleAndSharedFile) {
  EXPECT_EQ(OtadataCrc(0), 0xffffffffu);
  EXPECT_EQ(OtadataCrc(1), 0x4743989au);
  EXPECT_EQ(OtadataCrc(2), 0x55f63774u);
  EXPECT_EQ(OtadataCrc(3), 0xed4a5011u);
  EXPECT_EQ(OtadataCrc(4), 0x709d68a8u);
  EXPECT_EQ(OtadataCrc(16), 0xafe6a860u);
  EXPECT_EQ(OtadataCrc(305419896), 0x71d6a731u);
  EXPECT_EQ(OtadataCrc(4294967294u), 0x99f8b879u);
  Bytes d = MakeOtadata(0);
  if (std::filesystem::exists(kDir + "/otadata_seq1.bin")) EXPECT_EQ(d, *ReadFileBytes(kDir + "/otadata_seq1.bin"));
  EXPECT_EQ(OtadataBootSlot(d, 2), 0u);
  EXPECT_EQ(OtadataBootSlot(MakeOtadata(1), 2), 1u);
  EXPECT_FALSE(OtadataBootSlot(MakeOtadata(std::nullopt), 2).has_value());
  d[0] ^= 1;  // CRC no longer matches
  EXPECT_FALSE(OtadataBootSlot(d, 2).has_value());
}

TEST(PartitionTableTest, BinaryWithBadMd5IsCorrupt) {
  auto t = PartitionTable::FromCsv("nvs, data, nvs, 0x9000, 0x6000\n");
  Bytes bin = *t->ToBinary();
  bin[5] ^= 1;
  auto r = PartitionTable::FromBinary(bin);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("MD5"), std::string::npos);
}

}  // namespace
}  // namespace coffer::flash
