#include "coffer/blockdev/backing_store.h"

#include <unordered_set>

namespace coffer {

Status BackingStore::CheckRead(uint64_t first, uint32_t count, size_t out_size) const {
  if (first > record_count() || count > record_count() - first) {
    return OutOfRange("read of records " + std::to_string(first) + "+" + std::to_string(count) +
                      " beyond " + std::to_string(record_count()) + " records of " + Describe());
  }
  if (out_size != uint64_t(count) * record_size()) {
    return InvalidArgument("read buffer is " + std::to_string(out_size) + " bytes, want " +
                           std::to_string(uint64_t(count) * record_size()));
  }
  return Status::Ok();
}

Status BackingStore::CheckBatch(std::span<const RecordWrite> writes) const {
  // Distinct indices: free when they strictly increase (the sealed volume orders its batches),
  // else a hash set.
  bool increasing = true;
  for (size_t i = 1; i < writes.size() && increasing; ++i) increasing = writes[i].index > writes[i - 1].index;
  std::unordered_set<uint64_t> seen;
  for (const RecordWrite& w : writes) {
    if (w.index >= record_count()) {
      return OutOfRange("write of record " + std::to_string(w.index) + " beyond " +
                        std::to_string(record_count()) + " records of " + Describe());
    }
    if (w.data.size() != record_size()) {
      return InvalidArgument("record " + std::to_string(w.index) + " is " + std::to_string(w.data.size()) +
                             " bytes, want " + std::to_string(record_size()));
    }
    if (!increasing && !seen.insert(w.index).second) {
      return InvalidArgument("record " + std::to_string(w.index) + " appears twice in one batch");
    }
  }
  return Status::Ok();
}

}  // namespace coffer
