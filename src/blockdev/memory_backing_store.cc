#include "coffer/blockdev/memory_backing_store.h"

#include <cstring>

namespace coffer {

MemoryBackingStore::MemoryBackingStore(uint32_t record_size, uint64_t record_count)
    : record_size_(record_size), record_count_(record_count), data_(uint64_t(record_size) * record_count, 0) {}

Status MemoryBackingStore::Read(uint64_t first, uint32_t count, std::span<uint8_t> out) {
  COFFER_RETURN_IF_ERROR(CheckRead(first, count, out.size()));
  std::lock_guard lock(mu_);
  if (!out.empty()) std::memcpy(out.data(), &data_[first * record_size_], out.size());
  return Status::Ok();
}

Status MemoryBackingStore::WriteBatch(std::span<const RecordWrite> writes) {
  COFFER_RETURN_IF_ERROR(CheckBatch(writes));
  std::lock_guard lock(mu_);
  for (const RecordWrite& w : writes) std::memcpy(&data_[w.index * record_size_], w.data.data(), record_size_);
  batches_++;
  return Status::Ok();
}

}  // namespace coffer
