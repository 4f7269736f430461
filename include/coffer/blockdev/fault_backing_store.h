// FaultBackingStore: a BackingStore decorator for crash and attack tests (the littlefs emubd idea,
// for record stores). It can cut power after N record writes (the batch in flight lands whole or
// not at all in kAtomic mode — the contract of a correct store — or partially in kTorn mode, as a
// store without a journal would), drop writes not yet Flush()ed, inject I/O errors, flip bits, take
// and restore snapshots, and counts operations. The store below is shared (std::shared_ptr) because
// it is the "disk" that outlives a crashed device: tests remount a fresh stack on it.
// One thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "coffer/base/bytes.h"
#include "coffer/blockdev/backing_store.h"

namespace coffer {

struct BackingStoreCounters {
  uint64_t reads = 0, batches = 0, records_written = 0, flushes = 0;
};

class FaultBackingStore : public BackingStore {
 public:
  enum class CutMode {
    kAtomic,  // the batch that crosses the budget lands not at all
    kTorn,    // its first records (up to the budget) land, the rest do not
  };
  explicit FaultBackingStore(std::shared_ptr<BackingStore> base);

  uint32_t record_size() const override { return base_->record_size(); }
  uint64_t record_count() const override { return base_->record_count(); }
  Status Read(uint64_t first, uint32_t count, std::span<uint8_t> out) override;
  Status WriteBatch(std::span<const RecordWrite> writes) override;
  Status Flush() override;
  std::string Describe() const override { return "fault(" + base_->Describe() + ")"; }

  // Power is cut when more than n further records would be written. Afterwards every call fails
  // with kIoError ("power cut") and unflushed writes are lost (when drop_unflushed is set).
  void CutPowerAfterRecordWrites(uint64_t n, CutMode mode = CutMode::kAtomic);
  // Cut power now (drops unflushed writes when drop_unflushed is set).
  void CutPowerNow();
  bool power_cut() const { return dead_; }
  // When true, written batches stay in a volatile cache until Flush(); a power cut loses them.
  void set_drop_unflushed(bool drop) { drop_unflushed_ = drop; }
  // The next read (or write) after n more successful ones fails with kIoError and changes nothing.
  void FailReadAfter(uint64_t n) { fail_read_after_ = int64_t(n); }
  void FailWriteAfter(uint64_t n) { fail_write_after_ = int64_t(n); }

  // Attacks and inspection on the durable bytes below.
  Status XorByte(uint64_t record, uint32_t offset, uint8_t mask);
  Result<Bytes> Snapshot();
  Status Restore(ByteSpan snapshot);

  const BackingStoreCounters& counters() const { return counters_; }
  BackingStore& base() { return *base_; }

 private:
  Status ApplyDurable(std::span<const RecordWrite> writes);

  std::shared_ptr<BackingStore> base_;
  BackingStoreCounters counters_;
  bool dead_ = false;
  bool drop_unflushed_ = false;
  int64_t budget_ = -1;  // records that may still be written; -1 = unlimited
  CutMode mode_ = CutMode::kAtomic;
  int64_t fail_read_after_ = -1, fail_write_after_ = -1;
  std::map<uint64_t, Bytes> unflushed_;
};

}  // namespace coffer
