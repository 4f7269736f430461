#include "coffer/base/bytes.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

TEST(Hex, RoundTripsAndRejectsGarbage) {
  Bytes b = {0x00, 0xab, 0xff};
  EXPECT_EQ(HexEncode(b), "00abff");
  EXPECT_EQ(HexDecode("00ABff").value(), b);
  EXPECT_FALSE(HexDecode("abc").ok());
  EXPECT_FALSE(HexDecode("zz").ok());
}

TEST(Coding, LittleAndBigEndian) {
  uint8_t b[8];
  PutLe32(b, 0x01020304);
  EXPECT_EQ(b[0], 0x04);
  EXPECT_EQ(GetLe32(b), 0x01020304u);
  PutBe64(b, 0x0102030405060708ull);
  EXPECT_EQ(b[0], 0x01);
  EXPECT_EQ(GetBe64(b), 0x0102030405060708ull);
  PutLe64(b, 0x1122334455667788ull);
  EXPECT_EQ(GetLe64(b), 0x1122334455667788ull);
}

}  // namespace
}  // namespace coffer
