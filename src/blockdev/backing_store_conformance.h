// Conformance suite for BackingStore: instantiate with a factory per implementation (memory,
// file, remote http, diskhost...). A factory returns a fresh, empty store of at least 16 records.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coffer/blockdev/backing_store.h"

namespace coffer::testing {

struct BackingStoreFactory {
  std::string name;
  std::function<std::unique_ptr<BackingStore>()> make;
};
inline std::ostream& operator<<(std::ostream& os, const BackingStoreFactory& f) { return os << f.name; }

class BackingStoreConformance : public ::testing::TestWithParam<BackingStoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    ASSERT_NE(store_, nullptr);
    ASSERT_GE(store_->record_count(), 16u);
    rs_ = store_->record_size();
  }
  std::vector<uint8_t> Record(uint8_t seed) {
    std::vector<uint8_t> v(rs_);
    for (size_t i = 0; i < v.size(); ++i) v[i] = uint8_t(seed + i * 13);
    return v;
  }
  std::unique_ptr<BackingStore> store_;
  uint32_t rs_ = 0;
};

TEST_P(BackingStoreConformance, NeverWrittenRecordsReadAsZeros) {
  std::vector<uint8_t> out(rs_ * 4, 0xaa);
  ASSERT_TRUE(store_->Read(3, 4, out).ok());
  for (uint8_t b : out) ASSERT_EQ(b, 0);
}

TEST_P(BackingStoreConformance, BatchWriteThenRangeRead) {
  auto a = Record(1), b = Record(2), c = Record(3);
  std::vector<RecordWrite> batch = {{5, a}, {6, b}, {9, c}};
  ASSERT_TRUE(store_->WriteBatch(batch).ok());
  ASSERT_TRUE(store_->Flush().ok());
  std::vector<uint8_t> out(rs_ * 5);
  ASSERT_TRUE(store_->Read(5, 5, out).ok());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), out.begin()));
  EXPECT_TRUE(std::equal(b.begin(), b.end(), out.begin() + rs_));
  EXPECT_TRUE(std::equal(c.begin(), c.end(), out.begin() + 4 * rs_));
  for (size_t i = 2 * rs_; i < 4 * rs_; ++i) ASSERT_EQ(out[i], 0);
}

TEST_P(BackingStoreConformance, RewriteReplacesRecord) {
  auto a = Record(1), b = Record(7);
  ASSERT_TRUE(store_->WriteBatch(std::vector<RecordWrite>{{2, a}}).ok());
  ASSERT_TRUE(store_->WriteBatch(std::vector<RecordWrite>{{2, b}}).ok());
  std::vector<uint8_t> out(rs_);
  ASSERT_TRUE(store_->Read(2, 1, out).ok());
  EXPECT_EQ(out, b);
}

TEST_P(BackingStoreConformance, BadBatchIsRefusedWhole) {
  auto a = Record(1), b = Record(2);
  std::vector<uint8_t> short_record(rs_ - 1, 0x55);
  std::vector<RecordWrite> bad_size = {{1, a}, {2, short_record}};
  EXPECT_FALSE(store_->WriteBatch(bad_size).ok());
  std::vector<RecordWrite> beyond = {{1, a}, {store_->record_count(), b}};
  EXPECT_EQ(store_->WriteBatch(beyond).code(), StatusCode::kOutOfRange);
  std::vector<RecordWrite> twice = {{1, a}, {1, b}};
  EXPECT_FALSE(store_->WriteBatch(twice).ok());
  std::vector<uint8_t> out(rs_);
  ASSERT_TRUE(store_->Read(1, 1, out).ok());
  for (uint8_t x : out) ASSERT_EQ(x, 0) << "a refused batch changed record 1";
}

TEST_P(BackingStoreConformance, ReadPastEndIsOutOfRange) {
  std::vector<uint8_t> out(rs_ * 2);
  EXPECT_EQ(store_->Read(store_->record_count() - 1, 2, out).code(), StatusCode::kOutOfRange);
}

}  // namespace coffer::testing
