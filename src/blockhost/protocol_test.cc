#include "coffer/blockhost/protocol.h"

#include <gtest/gtest.h>

namespace coffer::blockhost {
namespace {

TEST(Protocol, BatchRoundTripsByteForByte) {
  BatchId id{};
  for (int i = 0; i < 16; ++i) id[i] = uint8_t(i + 1);
  Bytes a(4, 0xaa), b(4, 0xbb);
  std::vector<RecordWrite> w = {{7, a}, {2, b}};
  Bytes body = EncodeBatch(id, 9, 4, w);
  ASSERT_EQ(body.size(), kBatchHeaderSize + 2 * 12);
  EXPECT_EQ(std::string(body.begin(), body.begin() + 4), "CBHB");
  EXPECT_EQ(GetLe16(body.data() + 4), 1);
  EXPECT_EQ(GetLe64(body.data() + 24), 9u);
  EXPECT_EQ(GetLe32(body.data() + 32), 4u);
  EXPECT_EQ(GetLe32(body.data() + 36), 2u);
  EXPECT_EQ(GetLe64(body.data() + 40), 7u);
  auto p = ParseBatch(body);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->id, id);
  EXPECT_EQ(p->generation, 9u);
  ASSERT_EQ(p->writes.size(), 2u);
  EXPECT_EQ(p->writes[1].index, 2u);
  EXPECT_TRUE(std::equal(b.begin(), b.end(), p->writes[1].data.begin()));
}

TEST(Protocol, MalformedBatchesAreRejected) {
  Bytes a(4, 1);
  std::vector<RecordWrite> w = {{1, a}};
  Bytes good = EncodeBatch(BatchId{}, 1, 4, w);
  auto bad = [&](auto mutate) {
    Bytes b = good;
    mutate(b);
    return ParseBatch(b).ok();
  };
  EXPECT_FALSE(bad([](Bytes& b) { b[1] = 'X'; }));
  EXPECT_EQ(ParseBatch([&] { Bytes b = good; b[4] = 2; return b; }()).status().code(), StatusCode::kUnsupported);
  EXPECT_FALSE(bad([](Bytes& b) { b[6] = 1; }));                     // flags
  EXPECT_FALSE(bad([](Bytes& b) { PutLe32(b.data() + 32, 0); }));    // record size 0
  EXPECT_FALSE(bad([](Bytes& b) { PutLe32(b.data() + 36, 0); }));    // no records
  EXPECT_FALSE(bad([](Bytes& b) { PutLe32(b.data() + 36, 2); }));    // count beyond body
  EXPECT_FALSE(bad([](Bytes& b) { b.push_back(0); }));               // trailing byte
  EXPECT_FALSE(bad([](Bytes& b) { b.resize(39); }));                 // short header
  EXPECT_FALSE(bad([](Bytes& b) { PutLe32(b.data() + 36, 0xffffffff); }));
  std::vector<RecordWrite> twice = {{1, a}, {1, a}};
  EXPECT_FALSE(ParseBatch(EncodeBatch(BatchId{}, 1, 4, twice)).ok());
}

TEST(Protocol, NamesAndDecimals) {
  EXPECT_TRUE(IsValidVolumeName("dev-1_a.b"));
  EXPECT_FALSE(IsValidVolumeName(""));
  EXPECT_FALSE(IsValidVolumeName(".x"));
  EXPECT_FALSE(IsValidVolumeName("a/b"));
  EXPECT_FALSE(IsValidVolumeName(std::string(65, 'a')));
  uint64_t v = 0;
  EXPECT_TRUE(ParseDecimal("16383", v));
  EXPECT_EQ(v, 16383u);
  EXPECT_TRUE(ParseDecimal("18446744073709551615", v));
  EXPECT_FALSE(ParseDecimal("18446744073709551616", v));
  for (const char* s : {"", "-1", "+1", " 1", "1 ", "0x1", "1e3", "abc"}) EXPECT_FALSE(ParseDecimal(s, v)) << s;
}

}  // namespace
}  // namespace coffer::blockhost
