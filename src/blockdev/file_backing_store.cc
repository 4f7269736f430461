#include "coffer/blockdev/file_backing_store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "coffer/base/bytes.h"
#include "coffer/base/file_util.h"

namespace coffer {
namespace {

constexpr char kStoreMagic[8] = {'C', 'F', 'S', 'T', 'O', 'R', 'E', '1'};
constexpr char kJournalMagic[8] = {'C', 'F', 'J', 'O', 'U', 'R', 'N', '1'};
constexpr uint16_t kVersion = 1;
constexpr size_t kJournalHeader = 32;
constexpr size_t kChecksum = 32;

void Checksum(const uint8_t* data, size_t n, uint8_t out[32]) { crypto_generichash(out, 32, data, n, nullptr, 0); }

Status SyncFd(int fd, const std::string& what, bool data_only = true) {
  int rc = data_only ? ::fdatasync(fd) : ::fsync(fd);
  if (rc != 0) return ErrnoStatus("sync " + what, errno);
  return Status::Ok();
}

Result<int> LockedOpen(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    ::close(fd);
    if (e == EWOULDBLOCK) return FailedPrecondition(path + " is in use by another coffer process");
    return ErrnoStatus("lock " + path, e);
  }
  return fd;
}

}  // namespace

FileBackingStore::FileBackingStore(int fd, int journal_fd, std::string path, uint32_t record_size,
                                   uint64_t record_count)
    : fd_(fd), journal_fd_(journal_fd), path_(std::move(path)), record_size_(record_size),
      record_count_(record_count) {}

FileBackingStore::~FileBackingStore() {
  if (journal_fd_ >= 0) ::close(journal_fd_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<FileBackingStore>> FileBackingStore::Create(const std::string& path, uint32_t record_size,
                                                                   uint64_t record_count, bool overwrite) {
  if (record_size == 0 || record_size > kMaxRecordSize) {
    return InvalidArgument("record size " + std::to_string(record_size) + " is out of range (1.." +
                           std::to_string(kMaxRecordSize) + ")");
  }
  if (record_count == 0 || record_count > (uint64_t(1) << 40) / record_size) {
    return InvalidArgument("record count " + std::to_string(record_count) + " is out of range");
  }
  int flags = O_RDWR | O_CREAT | (overwrite ? 0 : O_EXCL);
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  if (fd < 0) {
    if (errno == EEXIST) return AlreadyExists(path + " already exists");
    return ErrnoStatus("create " + path, errno);
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return FailedPrecondition(path + " is in use by another coffer process");
  }
  uint8_t header[kHeaderSize] = {};
  std::memcpy(header, kStoreMagic, 8);
  PutLe16(header + 8, kVersion);
  PutLe32(header + 12, record_size);
  PutLe64(header + 16, record_count);
  Checksum(header, 32, header + 32);
  uint64_t size = kHeaderSize + uint64_t(record_size) * record_count;
  Status s;
  if (::ftruncate(fd, 0) != 0 || ::ftruncate(fd, off_t(size)) != 0) s = ErrnoStatus("size " + path, errno);
  if (s.ok()) s = PwriteAll(fd, header, kHeaderSize, 0, path);
  if (s.ok()) s = SyncFd(fd, path, false);
  int jfd = -1;
  if (s.ok()) {
    jfd = ::open(JournalPath(path).c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (jfd < 0) s = ErrnoStatus("create " + JournalPath(path), errno);
  }
  if (s.ok()) s = SyncFd(jfd, JournalPath(path), false);
  if (s.ok()) s = SyncParentDirectory(path);
  if (!s.ok()) {
    if (jfd >= 0) ::close(jfd);
    ::close(fd);
    return s;
  }
  return std::unique_ptr<FileBackingStore>(new FileBackingStore(fd, jfd, path, record_size, record_count));
}

Result<std::unique_ptr<FileBackingStore>> FileBackingStore::Open(const std::string& path) {
  COFFER_ASSIGN_OR_RETURN(int fd, LockedOpen(path, O_RDWR));
  auto fail = [&](Status s) -> Status {
    ::close(fd);
    return s;
  };
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail(ErrnoStatus("stat " + path, errno));
  if (!S_ISREG(st.st_mode)) return fail(InvalidArgument(path + " is not a regular file"));
  if (st.st_size < off_t(kHeaderSize)) {
    return fail(DataLoss(path + " is too short (" + std::to_string(st.st_size) +
                         " bytes) to be a coffer store: truncated or not a store"));
  }
  uint8_t header[64];
  Status s = PreadAll(fd, header, sizeof header, 0, path);
  if (!s.ok()) return fail(s);
  uint8_t sum[32];
  Checksum(header, 32, sum);
  if (std::memcmp(header, kStoreMagic, 8) != 0) {
    return fail(DataLoss(path + " does not start with a coffer store header (bad magic): not a coffer "
                                "volume, or its header was tampered with"));
  }
  if (std::memcmp(sum, header + 32, 32) != 0) {
    return fail(DataLoss("store header of " + path + " fails its checksum: the file was corrupted or tampered with"));
  }
  uint16_t version = GetLe16(header + 8);
  if (version != kVersion) {
    return fail(Unsupported(path + " uses store format version " + std::to_string(version) +
                            ", this coffer reads version 1: upgrade coffer"));
  }
  uint32_t record_size = GetLe32(header + 12);
  uint64_t record_count = GetLe64(header + 16);
  if (record_size == 0 || record_size > kMaxRecordSize || record_count == 0 ||
      record_count > (uint64_t(1) << 40) / record_size) {
    return fail(DataLoss("store header of " + path + " has an impossible geometry (tampered?)"));
  }
  uint64_t want = kHeaderSize + uint64_t(record_size) * record_count;
  if (uint64_t(st.st_size) != want) {
    return fail(DataLoss(path + " is " + std::to_string(st.st_size) + " bytes but its header says " +
                         std::to_string(want) + ": the file was truncated or extended"));
  }
  std::string jpath = JournalPath(path);
  int jfd = ::open(jpath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (jfd < 0) return fail(ErrnoStatus("open " + jpath, errno));
  std::unique_ptr<FileBackingStore> store(new FileBackingStore(fd, jfd, path, record_size, record_count));
  COFFER_RETURN_IF_ERROR(store->Recover());
  return store;
}

Status FileBackingStore::Recover() {
  std::string jpath = JournalPath(path_);
  struct stat st;
  if (::fstat(journal_fd_, &st) != 0) return ErrnoStatus("stat " + jpath, errno);
  if (st.st_size == 0) return Status::Ok();
  Bytes journal(size_t(st.st_size));
  COFFER_RETURN_IF_ERROR(PreadAll(journal_fd_, journal.data(), journal.size(), 0, jpath));
  bool complete = false;
  uint64_t n = 0;
  if (journal.size() >= kJournalHeader + kChecksum && std::memcmp(journal.data(), kJournalMagic, 8) == 0 &&
      GetLe16(journal.data() + 8) == kVersion && GetLe32(journal.data() + 12) == record_size_) {
    n = GetLe64(journal.data() + 16);
    uint64_t entry = 8 + uint64_t(record_size_);
    if (n <= record_count_ && journal.size() == kJournalHeader + n * entry + kChecksum) {
      uint8_t sum[32];
      Checksum(journal.data(), journal.size() - kChecksum, sum);
      complete = std::memcmp(sum, journal.data() + journal.size() - kChecksum, 32) == 0;
    }
  }
  if (complete) {
    // A batch that was durable in the journal: apply it (again; applying is idempotent).
    std::vector<RecordWrite> writes;
    const uint8_t* p = journal.data() + kJournalHeader;
    for (uint64_t i = 0; i < n; ++i, p += 8 + record_size_) {
      writes.push_back({GetLe64(p), {p + 8, record_size_}});
    }
    if (CheckBatch(writes).ok()) {
      COFFER_RETURN_IF_ERROR(ApplyRecords(writes));
      COFFER_RETURN_IF_ERROR(SyncFd(fd_, path_));
      recovered_ = true;
    }
  }
  // A torn journal is a batch that never became durable: discard it.
  if (::ftruncate(journal_fd_, 0) != 0) return ErrnoStatus("truncate " + jpath, errno);
  return SyncFd(journal_fd_, jpath, false);
}

Status FileBackingStore::Read(uint64_t first, uint32_t count, std::span<uint8_t> out) {
  COFFER_RETURN_IF_ERROR(CheckRead(first, count, out.size()));
  return PreadAll(fd_, out.data(), out.size(), kHeaderSize + first * record_size_, path_);
}

Status FileBackingStore::ApplyRecords(std::span<const RecordWrite> writes) {
  for (const RecordWrite& w : writes) {
    COFFER_RETURN_IF_ERROR(
        PwriteAll(fd_, w.data.data(), record_size_, kHeaderSize + w.index * record_size_, path_));
  }
  return Status::Ok();
}

Status FileBackingStore::WriteBatch(std::span<const RecordWrite> writes) {
  COFFER_RETURN_IF_ERROR(CheckBatch(writes));
  if (broken_) return IoError(path_ + " had an I/O error during a write; reopen it to recover");
  if (writes.empty()) return Status::Ok();
  std::string jpath = JournalPath(path_);
  Bytes journal(kJournalHeader + writes.size() * (8 + size_t(record_size_)) + kChecksum);
  std::memcpy(journal.data(), kJournalMagic, 8);
  PutLe16(journal.data() + 8, kVersion);
  PutLe32(journal.data() + 12, record_size_);
  PutLe64(journal.data() + 16, writes.size());
  uint8_t* p = journal.data() + kJournalHeader;
  for (const RecordWrite& w : writes) {
    PutLe64(p, w.index);
    std::memcpy(p + 8, w.data.data(), record_size_);
    p += 8 + record_size_;
  }
  Checksum(journal.data(), journal.size() - kChecksum, p);
  broken_ = true;  // until the batch completes
  COFFER_RETURN_IF_ERROR(PwriteAll(journal_fd_, journal.data(), journal.size(), 0, jpath));
  COFFER_RETURN_IF_ERROR(SyncFd(journal_fd_, jpath));  // commit point: the batch is durable
  COFFER_RETURN_IF_ERROR(ApplyRecords(writes));
  COFFER_RETURN_IF_ERROR(SyncFd(fd_, path_));
  if (::ftruncate(journal_fd_, 0) != 0) return ErrnoStatus("truncate " + jpath, errno);
  COFFER_RETURN_IF_ERROR(SyncFd(journal_fd_, jpath, false));
  broken_ = false;
  return Status::Ok();
}

}  // namespace coffer
