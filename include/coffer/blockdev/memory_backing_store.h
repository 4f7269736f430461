// MemoryBackingStore: records in RAM (spec `mem:`), for tests and benchmarks. Batches are
// trivially atomic. Thread-safe (one mutex). raw() exposes the bytes for attack tests.
#pragma once

#include <mutex>
#include <vector>

#include "coffer/blockdev/backing_store.h"

namespace coffer {

class MemoryBackingStore : public BackingStore {
 public:
  MemoryBackingStore(uint32_t record_size, uint64_t record_count);

  uint32_t record_size() const override { return record_size_; }
  uint64_t record_count() const override { return record_count_; }
  Status Read(uint64_t first, uint32_t count, std::span<uint8_t> out) override;
  Status WriteBatch(std::span<const RecordWrite> writes) override;
  std::string Describe() const override { return "mem:"; }

  std::vector<uint8_t>& raw() { return data_; }
  uint64_t batches_written() const { return batches_; }

 private:
  uint32_t record_size_;
  uint64_t record_count_;
  std::vector<uint8_t> data_;
  uint64_t batches_ = 0;
  std::mutex mu_;
};

}  // namespace coffer
