#include "coffer/base/secret.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

TEST(SecretBytes, RandomIsNotZeroAndComparesInConstantTime) {
  SecretBytes a = SecretBytes::Random(32);
  SecretBytes b = a.Clone();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_TRUE(a.Equals(b));
  b.reveal()[0] ^= 1;
  EXPECT_FALSE(a.Equals(b));
  SecretBytes zero(32);
  EXPECT_FALSE(a.Equals(zero));
}

TEST(SecretBytes, MoveLeavesSourceEmpty) {
  SecretBytes a = SecretBytes::Random(16);
  SecretBytes b = std::move(a);
  EXPECT_EQ(a.size(), 0u);  // NOLINT(bugprone-use-after-move): testing the moved-from state
  EXPECT_EQ(b.size(), 16u);
}

TEST(ConstantTimeEquals, DifferentLengthsAreUnequal) {
  uint8_t x[3] = {1, 2, 3}, y[2] = {1, 2};
  EXPECT_FALSE(ConstantTimeEquals(x, y));
  EXPECT_TRUE(ConstantTimeEquals(x, x));
}

}  // namespace
}  // namespace coffer
