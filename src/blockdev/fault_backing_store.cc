#include "coffer/blockdev/fault_backing_store.h"

#include <cstring>
#include <vector>

namespace coffer {

FaultBackingStore::FaultBackingStore(std::shared_ptr<BackingStore> base) : base_(std::move(base)) {}

void FaultBackingStore::CutPowerAfterRecordWrites(uint64_t n, CutMode mode) {
  budget_ = int64_t(n);
  mode_ = mode;
}

void FaultBackingStore::CutPowerNow() {
  dead_ = true;
  unflushed_.clear();
}

Status FaultBackingStore::Read(uint64_t first, uint32_t count, std::span<uint8_t> out) {
  if (dead_) return IoError("power cut (fault injection)");
  COFFER_RETURN_IF_ERROR(CheckRead(first, count, out.size()));
  if (fail_read_after_ == 0) {
    fail_read_after_ = -1;
    return IoError("injected read error on " + Describe());
  }
  if (fail_read_after_ > 0) fail_read_after_--;
  counters_.reads++;
  COFFER_RETURN_IF_ERROR(base_->Read(first, count, out));
  for (auto it = unflushed_.lower_bound(first); it != unflushed_.end() && it->first < first + count; ++it) {
    std::memcpy(out.data() + (it->first - first) * record_size(), it->second.data(), record_size());
  }
  return Status::Ok();
}

Status FaultBackingStore::ApplyDurable(std::span<const RecordWrite> writes) {
  if (!drop_unflushed_) return base_->WriteBatch(writes);
  for (const RecordWrite& w : writes) unflushed_[w.index] = Bytes(w.data.begin(), w.data.end());
  return Status::Ok();
}

Status FaultBackingStore::WriteBatch(std::span<const RecordWrite> writes) {
  if (dead_) return IoError("power cut (fault injection)");
  COFFER_RETURN_IF_ERROR(CheckBatch(writes));
  if (fail_write_after_ == 0) {
    fail_write_after_ = -1;
    return IoError("injected write error on " + Describe());
  }
  if (fail_write_after_ > 0) fail_write_after_--;
  if (budget_ >= 0 && uint64_t(budget_) < writes.size()) {
    if (mode_ == CutMode::kTorn && budget_ > 0) {
      (void)ApplyDurable(writes.subspan(0, size_t(budget_)));
      counters_.records_written += uint64_t(budget_);
    }
    CutPowerNow();
    return IoError("power cut during a batch (fault injection)");
  }
  if (budget_ >= 0) budget_ -= int64_t(writes.size());
  counters_.batches++;
  counters_.records_written += writes.size();
  return ApplyDurable(writes);
}

Status FaultBackingStore::Flush() {
  if (dead_) return IoError("power cut (fault injection)");
  counters_.flushes++;
  if (!unflushed_.empty()) {
    std::vector<RecordWrite> writes;
    for (auto& [index, data] : unflushed_) writes.push_back({index, data});
    COFFER_RETURN_IF_ERROR(base_->WriteBatch(writes));
    unflushed_.clear();
  }
  return base_->Flush();
}

Status FaultBackingStore::XorByte(uint64_t record, uint32_t offset, uint8_t mask) {
  if (record >= record_count() || offset >= record_size()) return OutOfRange("XorByte outside the store");
  Bytes r(record_size());
  COFFER_RETURN_IF_ERROR(base_->Read(record, 1, r));
  r[offset] ^= mask;
  RecordWrite w{record, r};
  return base_->WriteBatch({&w, 1});
}

Result<Bytes> FaultBackingStore::Snapshot() {
  Bytes all(record_size() * record_count());
  uint64_t per = std::max<uint64_t>(1, (1 << 20) / record_size());
  for (uint64_t i = 0; i < record_count(); i += per) {
    uint32_t n = uint32_t(std::min(per, record_count() - i));
    COFFER_RETURN_IF_ERROR(base_->Read(i, n, {all.data() + i * record_size(), size_t(n) * record_size()}));
  }
  return all;
}

Status FaultBackingStore::Restore(ByteSpan snapshot) {
  if (snapshot.size() != record_size() * record_count()) return InvalidArgument("snapshot size mismatch");
  std::vector<RecordWrite> writes;
  for (uint64_t i = 0; i < record_count(); ++i) writes.push_back({i, snapshot.subspan(i * record_size(), record_size())});
  unflushed_.clear();
  return base_->WriteBatch(writes);
}

}  // namespace coffer
