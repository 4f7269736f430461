// FileBackingStore: a BackingStore in one local file (spec `file:PATH`), with a write-ahead
// journal PATH.journal that makes every WriteBatch atomic and durable: the batch is written to the
// journal with a checksum and fdatasync'ed, then applied in place and fdatasync'ed, then the journal
// is truncated. Open() replays a complete journal and discards a torn one, so power loss at any
// byte leaves all of a batch or none of it. Layout: docs/format/file_store.md.
// The file is locked (flock) while open, so one process at a time; one thread at a time per object.
// Malformed store metadata (header, size) is reported as kDataLoss: the file is attacker-writable.
#pragma once

#include <memory>
#include <string>

#include "coffer/blockdev/backing_store.h"

namespace coffer {

class FileBackingStore : public BackingStore {
 public:
  static constexpr uint32_t kHeaderSize = 4096;
  static constexpr uint32_t kMaxRecordSize = 1 << 20;

  // Creates PATH (and PATH.journal) holding record_count zeroed records (a sparse file).
  // kAlreadyExists if PATH exists and !overwrite.
  static Result<std::unique_ptr<FileBackingStore>> Create(const std::string& path, uint32_t record_size,
                                                          uint64_t record_count, bool overwrite = false);
  // Opens an existing store, recovering from an interrupted batch. kNotFound if PATH is missing,
  // kDataLoss if its header or size is wrong, kUnsupported for an unknown format version,
  // kFailedPrecondition if another process has it open.
  static Result<std::unique_ptr<FileBackingStore>> Open(const std::string& path);
  ~FileBackingStore() override;

  uint32_t record_size() const override { return record_size_; }
  uint64_t record_count() const override { return record_count_; }
  Status Read(uint64_t first, uint32_t count, std::span<uint8_t> out) override;
  Status WriteBatch(std::span<const RecordWrite> writes) override;
  std::string Describe() const override { return "file:" + path_; }

  const std::string& path() const { return path_; }
  static std::string JournalPath(const std::string& path) { return path + ".journal"; }
  // Whether the last Open() replayed (true) a complete journal left by a crash.
  bool recovered_batch() const { return recovered_; }

 private:
  FileBackingStore(int fd, int journal_fd, std::string path, uint32_t record_size, uint64_t record_count);
  Status Recover();
  Status ApplyRecords(std::span<const RecordWrite> writes);

  int fd_;
  int journal_fd_;
  std::string path_;
  uint32_t record_size_;
  uint64_t record_count_;
  bool broken_ = false;  // an I/O error mid-batch: refuse further writes until reopened (recovery)
  bool recovered_ = false;
};

}  // namespace coffer
