#include "coffer/blockhost/volume_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <vector>
#include <cerrno>
#include <cstring>

#include "coffer/base/file_util.h"

namespace coffer::blockhost {
namespace {

// Volume header (4096 bytes), little-endian; see docs/format/blockhost_protocol.md section 3.
constexpr char kVolumeMagic[4] = {'C', 'B', 'H', 'V'};
constexpr char kJournalMagic[4] = {'C', 'B', 'H', 'J'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 4096;
constexpr size_t kOwnerMax = 220;
constexpr size_t kRecentIds = 64;
constexpr size_t kRecentOffset = 264;           // 64 x 16-byte batch ids
constexpr size_t kDigestOffset = kHeaderSize - 32;
constexpr uint32_t kJournalVersion = 2;
constexpr size_t kJournalPrefix = 24;           // magic, version, count, record_size, sequence
// The journal is a log of this many bytes, written once with zeros so appending never changes
// the file's size or allocation (fdatasync then flushes data only, no filesystem metadata).
constexpr size_t kLogBytes = 1 << 20;

using Digest = std::array<uint8_t, 32>;

Digest Sha256(std::span<const uint8_t> a, std::span<const uint8_t> b = {}) {
  Digest d{};
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, a.data(), a.size());
  if (!b.empty()) EVP_DigestUpdate(ctx, b.data(), b.size());
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, d.data(), &n);
  EVP_MD_CTX_free(ctx);
  return d;
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  return rc == 0 ? Status::Ok() : ErrnoStatus("fsync " + dir, err);
}

}  // namespace

class Volume {
 public:
  ~Volume() {
    if (fd_ >= 0) ::close(fd_);
    if (jfd_ >= 0) ::close(jfd_);
  }

  static Result<std::shared_ptr<Volume>> Open(const std::string& dir, const std::string& name) {
    auto v = std::shared_ptr<Volume>(new Volume);
    v->path_ = dir + "/" + name + ".vol";
    v->jpath_ = dir + "/" + name + ".jnl";
    v->info_.name = name;
    v->fd_ = ::open(v->path_.c_str(), O_RDWR | O_CLOEXEC);
    if (v->fd_ < 0) {
      if (errno == ENOENT) return NotFound("no volume '" + name + "'");
      return ErrnoStatus("open " + v->path_, errno);
    }
    v->jfd_ = ::open(v->jpath_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (v->jfd_ < 0) return ErrnoStatus("open " + v->jpath_, errno);
    COFFER_RETURN_IF_ERROR(v->Replay());
    COFFER_RETURN_IF_ERROR(v->ResetLog(dir));
    COFFER_RETURN_IF_ERROR(PreadAll(v->fd_, v->header_.data(), kHeaderSize, 0, v->path_, StatusCode::kCorrupt));
    COFFER_RETURN_IF_ERROR(v->DecodeHeader());
    return v;
  }

  static Bytes NewHeader(const VolumeInfo& info) {
    Bytes h(kHeaderSize, 0);
    std::memcpy(h.data(), kVolumeMagic, 4);
    PutLe32(h.data() + 4, kFormatVersion);
    PutLe32(h.data() + 8, info.record_size);
    PutLe64(h.data() + 16, info.record_count);
    PutLe64(h.data() + 24, info.generation);
    PutLe16(h.data() + 32, uint16_t(info.owner.size()));
    std::memcpy(h.data() + 34, info.owner.data(), info.owner.size());
    Digest d = Sha256(std::span<const uint8_t>(h.data(), kDigestOffset));
    std::memcpy(h.data() + kDigestOffset, d.data(), 32);
    return h;
  }

  VolumeInfo info() {
    std::shared_lock lock(mu_);
    return info_;
  }
  bool deleted() const { return deleted_; }

  Status Read(uint64_t first, uint64_t count, std::span<uint8_t> out) {
    std::shared_lock lock(mu_);
    if (deleted_) return NotFound("no volume '" + info_.name + "'");
    if (first > info_.record_count || count > info_.record_count - first) {
      return OutOfRange("records " + std::to_string(first) + "+" + std::to_string(count) + " beyond the " +
                        std::to_string(info_.record_count) + " records of volume '" + info_.name + "'");
    }
    return PreadAll(fd_, out.data(), out.size(), kHeaderSize + first * info_.record_size, path_, StatusCode::kCorrupt);
  }

  // Group commit: concurrent batches queue up; one writer at a time (the leader) takes everything
  // queued, appends all their log entries in one write, flushes the log once, applies them to the
  // volume file in order, and answers each. A batch's records reach the volume file only after its
  // entry is durable, so a crash leaves either the whole batch (redone from the log) or none of it.
  // Each waiter sleeps on its own condition variable and is woken exactly when its batch is answered
  // or when it is first in line to lead the next group (a shared notify_all woke every queued writer
  // after each group, only for most of them to sleep again).
  Result<BatchResult> Apply(const BatchView& b, bool check_generation) {
    Pending me{&b, check_generation};
    std::unique_lock ql(queue_mu_);
    queue_.push_back(&me);
    while (!me.done) {
      if (leader_) {
        me.wake.wait(ql);
        continue;
      }
      leader_ = true;
      std::vector<Pending*> group;
      group.swap(queue_);
      ql.unlock();
      ApplyGroup(group);  // fills in every result
      ql.lock();
      for (Pending* p : group) {
        p->done = true;
        if (p != &me) p->wake.notify_one();
      }
      leader_ = false;
      if (!queue_.empty()) queue_.front()->wake.notify_one();  // the next group's leader
    }
    return std::move(me.result);
  }

  Result<uint64_t> BumpGeneration() {
    std::unique_lock lock(mu_);
    if (deleted_) return NotFound("no volume '" + info_.name + "'");
    Bytes header = header_;
    PutLe64(header.data() + 24, info_.generation + 1);
    COFFER_RETURN_IF_ERROR(Commit(header, {}));
    return info_.generation;
  }

  struct Pending {
    const BatchView* batch;
    bool check_generation;
    Result<BatchResult> result = Internal("batch not processed");
    bool done = false;  // set under queue_mu_ once result is final
    std::condition_variable wake;  // waited on with queue_mu_
  };

  // Checks one batch against the header as it will be after the earlier batches of its group.
  Status CheckBatch(const BatchView& b, bool check_generation, const Bytes& header, uint64_t generation,
                    bool& duplicate) {
    duplicate = false;
    if (b.record_size != info_.record_size) {
      return InvalidArgument("batch records are " + std::to_string(b.record_size) + " bytes; volume '" +
                             info_.name + "' has " + std::to_string(info_.record_size) + "-byte records");
    }
    for (const RecordWrite& w : b.writes) {
      if (w.index >= info_.record_count) {
        return OutOfRange("record " + std::to_string(w.index) + " beyond the " + std::to_string(info_.record_count) +
                          " records of volume '" + info_.name + "'");
      }
    }
    bool has_id = std::any_of(b.id.begin(), b.id.end(), [](uint8_t x) { return x != 0; });
    if (has_id) {
      for (size_t i = 0; i < kRecentIds; ++i) {
        if (std::memcmp(header.data() + kRecentOffset + 16 * i, b.id.data(), 16) == 0) {
          duplicate = true;  // applied before, or earlier in this group (durable with it)
          return Status::Ok();
        }
      }
    }
    if (check_generation && b.generation != generation) {
      return FailedPrecondition("write fence: batch carries generation " + std::to_string(b.generation) +
                                " but volume '" + info_.name + "' is at generation " + std::to_string(generation) +
                                " (another writer opened it)");
    }
    return Status::Ok();
  }

  void ApplyGroup(std::vector<Pending*>& group) {
    std::unique_lock lock(mu_);
    if (deleted_) {
      for (Pending* p : group) p->result = NotFound("no volume '" + info_.name + "'");
      return;
    }
    Bytes header = header_;
    Bytes& log = group_log_;
    log.clear();
    std::vector<Pending*> committed;
    for (Pending* p : group) {
      const BatchView& b = *p->batch;
      bool duplicate = false;
      Status s = CheckBatch(b, p->check_generation, header, info_.generation, duplicate);
      if (!s.ok()) {
        p->result = s;
        continue;
      }
      if (duplicate) {
        p->result = BatchResult{true, 0};
        committed.push_back(p);  // answered after this group's flush, in case the id is in it
        continue;
      }
      if (std::any_of(b.id.begin(), b.id.end(), [](uint8_t x) { return x != 0; })) {
        uint32_t slot = GetLe32(header.data() + 256) % kRecentIds;
        std::memcpy(header.data() + kRecentOffset + 16 * slot, b.id.data(), 16);
        PutLe32(header.data() + 256, (slot + 1) % kRecentIds);
      }
      AppendEntry(log, header, b.writes);
      p->result = BatchResult{false, b.writes.size()};
      committed.push_back(p);
    }
    Status s = WriteLogAndApply(log, header);
    if (!s.ok()) {
      for (Pending* p : committed) p->result = s;
    }
  }

  Status Delete() {
    std::unique_lock lock(mu_);
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return ErrnoStatus("delete " + path_, errno);
    ::unlink(jpath_.c_str());
    deleted_ = true;
    return Status::Ok();
  }

 private:
  Volume() = default;

  Status DecodeHeader() {
    const uint8_t* h = header_.data();
    if (std::memcmp(h, kVolumeMagic, 4) != 0) return Corrupt(path_ + " is not a block host volume (bad magic)");
    if (GetLe32(h + 4) != kFormatVersion) {
      return Unsupported(path_ + " has volume format version " + std::to_string(GetLe32(h + 4)) + " (want 1)");
    }
    Digest d = Sha256(std::span<const uint8_t>(h, kDigestOffset));
    if (CRYPTO_memcmp(d.data(), h + kDigestOffset, 32) != 0) return Corrupt(path_ + ": header checksum mismatch");
    info_.record_size = GetLe32(h + 8);
    info_.record_count = GetLe64(h + 16);
    info_.generation = GetLe64(h + 24);
    uint16_t olen = GetLe16(h + 32);
    if (olen > kOwnerMax) return Corrupt(path_ + ": owner field too long");
    info_.owner.assign(reinterpret_cast<const char*>(h + 34), olen);
    return Status::Ok();
  }

  // Redo log (docs/format/blockhost_protocol.md section 4): entries are appended to the log and
  // fdatasync'ed (the commit point, one flush per group of changes), then written into the volume
  // file without a flush. The volume file is flushed only when the log wraps (and on open after a
  // replay), so every change since the last flush is still in the log. Entries chain by sequence.
  Status Commit(Bytes& header, std::span<const RecordWrite> writes) {
    Bytes& log = group_log_;
    log.clear();
    AppendEntry(log, header, writes);
    return WriteLogAndApply(log, header);
  }

  // Appends one log entry (with its header digest filled in) to `log`; caller holds mu_.
  void AppendEntry(Bytes& log, Bytes& header, std::span<const RecordWrite> writes) {
    Digest hd = Sha256(std::span<const uint8_t>(header.data(), kDigestOffset));
    std::memcpy(header.data() + kDigestOffset, hd.data(), 32);
    const size_t start = log.size();
    log.resize(start + kJournalPrefix);
    uint8_t* e = log.data() + start;
    std::memcpy(e, kJournalMagic, 4);
    PutLe32(e + 4, kJournalVersion);
    PutLe32(e + 8, uint32_t(writes.size()));
    PutLe32(e + 12, info_.record_size);
    PutLe64(e + 16, seq_++);
    Append(log, header);
    for (const RecordWrite& w : writes) {
      AppendLe64(log, w.index);
      Append(log, w.data);
    }
    Digest jd = Sha256(std::span<const uint8_t>(log.data() + start, log.size() - start));
    Append(log, jd);
  }

  // Writes consecutive entries to the log, flushes it, then applies them in order; caller holds mu_.
  Status WriteLogAndApply(std::span<const uint8_t> log, const Bytes& header) {
    if (log.empty()) return Status::Ok();
    if (log_end_ > 0 && log_end_ + log.size() > kLogBytes) {
      // Wrap: make the volume file hold everything the log holds before overwriting the log.
      if (::fdatasync(fd_) != 0) return ErrnoStatus("fsync " + path_, errno);
      log_end_ = 0;
    }
    COFFER_RETURN_IF_ERROR(PwriteAll(jfd_, log.data(), log.size(), log_end_, jpath_));
    if (::fdatasync(jfd_) != 0) return ErrnoStatus("fsync " + jpath_, errno);
    log_end_ += log.size();
    for (size_t off = 0; off < log.size();) {
      const uint8_t* e = log.data() + off;
      size_t len = kJournalPrefix + kHeaderSize + size_t(GetLe32(e + 8)) * (8 + GetLe32(e + 12)) + 32;
      COFFER_RETURN_IF_ERROR(ApplyEntry(std::span<const uint8_t>(e, len)));
      off += len;
    }
    header_ = header;
    return DecodeHeader();
  }

  // Writes an entry's records and header into the volume file (no flush).
  Status ApplyEntry(std::span<const uint8_t> j) {
    uint32_t count = GetLe32(j.data() + 8), rs = GetLe32(j.data() + 12);
    const uint8_t* p = j.data() + kJournalPrefix + kHeaderSize;
    for (uint32_t i = 0; i < count; ++i, p += 8 + rs) {
      COFFER_RETURN_IF_ERROR(PwriteAll(fd_, p + 8, rs, kHeaderSize + GetLe64(p) * rs, path_));
    }
    return PwriteAll(fd_, j.data() + kJournalPrefix, kHeaderSize, 0, path_);
  }

  // Replays the chain of complete entries from offset 0: each must verify and carry the previous
  // entry's sequence + 1. The first entry that does not was never acknowledged (torn before its
  // fdatasync) or is older than the chain (left from before a wrap): replay stops there.
  Status Replay() {
    struct stat st;
    if (::fstat(jfd_, &st) != 0) return ErrnoStatus("stat " + jpath_, errno);
    const size_t size = size_t(st.st_size);
    if (size < kJournalPrefix + kHeaderSize + 32) return Status::Ok();
    Bytes log(size);
    COFFER_RETURN_IF_ERROR(PreadAll(jfd_, log.data(), size, 0, jpath_, StatusCode::kCorrupt));
    size_t off = 0;
    uint64_t prev_seq = 0;
    bool replayed = false;
    while (size - off >= kJournalPrefix + kHeaderSize + 32) {
      const uint8_t* e = log.data() + off;
      if (std::memcmp(e, kJournalMagic, 4) != 0 || GetLe32(e + 4) != kJournalVersion) break;
      uint64_t count = GetLe32(e + 8), rs = GetLe32(e + 12), seq = GetLe64(e + 16);
      if (rs == 0 || rs > kMaxRecordSize) break;
      const uint64_t len = kJournalPrefix + kHeaderSize + count * (8 + rs) + 32;
      if (len > size - off) break;
      if (replayed && seq != prev_seq + 1) break;
      Digest d = Sha256(std::span<const uint8_t>(e, len - 32));
      if (CRYPTO_memcmp(d.data(), e + len - 32, 32) != 0) break;
      // The entry's header must be a valid header of this geometry before we trust its indices.
      uint64_t rc = GetLe64(e + kJournalPrefix + 16);
      const uint8_t* p = e + kJournalPrefix + kHeaderSize;
      for (uint64_t i = 0; i < count; ++i, p += 8 + rs) {
        if (GetLe64(p) >= rc) return Corrupt(jpath_ + ": journal names a record beyond the volume");
      }
      COFFER_RETURN_IF_ERROR(ApplyEntry(std::span<const uint8_t>(e, len)));
      replayed = true;
      prev_seq = seq;
      off += len;
    }
    if (replayed && ::fdatasync(fd_) != 0) return ErrnoStatus("fsync " + path_, errno);
    return Status::Ok();
  }

  // After a replay the volume file holds everything: start an empty log (zeros, so no old entry can
  // continue a new chain) of its full size, durably linked in the directory.
  Status ResetLog(const std::string& dir) {
    Bytes zeros(kLogBytes, 0);
    COFFER_RETURN_IF_ERROR(PwriteAll(jfd_, zeros.data(), zeros.size(), 0, jpath_));
    if (::fsync(jfd_) != 0) return ErrnoStatus("fsync " + jpath_, errno);
    COFFER_RETURN_IF_ERROR(SyncDir(dir));
    log_end_ = 0;
    seq_ = 1;
    return Status::Ok();
  }

  std::string path_, jpath_;
  int fd_ = -1, jfd_ = -1;
  uint64_t log_end_ = 0;  // where the next log entry goes
  uint64_t seq_ = 1;      // the next entry's sequence number
  Bytes group_log_;       // the entries being committed (reused buffer)
  std::shared_mutex mu_;  // the volume state and files; readers shared
  std::mutex queue_mu_;   // the group-commit queue
  std::vector<Pending*> queue_;
  bool leader_ = false;
  Bytes header_ = Bytes(kHeaderSize);
  VolumeInfo info_;
  bool deleted_ = false;
};

Result<std::unique_ptr<VolumeStore>> VolumeStore::Open(const std::string& dir, Limits limits) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return ErrnoStatus("stat " + dir, errno);
    if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoStatus("create data directory " + dir, errno);
  } else if (!S_ISDIR(st.st_mode)) {
    return InvalidArgument(dir + " is not a directory");
  }
  if (::access(dir.c_str(), W_OK) != 0) return ErrnoStatus("data directory " + dir, errno);
  return std::unique_ptr<VolumeStore>(new VolumeStore(dir, limits));
}

VolumeStore::~VolumeStore() = default;

Result<std::shared_ptr<Volume>> VolumeStore::Get(const std::string& name) {
  if (!IsValidVolumeName(name)) return InvalidArgument("bad volume name (1-64 of A-Z a-z 0-9 . _ -)");
  std::lock_guard lock(mu_);
  auto it = open_.find(name);
  if (it != open_.end() && !it->second->deleted()) return it->second;
  COFFER_ASSIGN_OR_RETURN(auto v, Volume::Open(dir_, name));
  open_[name] = v;
  return v;
}

Result<VolumeInfo> VolumeStore::Create(const std::string& name, uint32_t record_size, uint64_t record_count,
                                       const std::string& owner) {
  if (!IsValidVolumeName(name)) return InvalidArgument("bad volume name (1-64 of A-Z a-z 0-9 . _ -)");
  if (record_size == 0 || record_size > kMaxRecordSize) {
    return InvalidArgument("record_size must be 1.." + std::to_string(kMaxRecordSize));
  }
  if (record_count == 0 || record_count > limits_.max_volume_bytes / record_size) {
    return InvalidArgument("record_count must be 1.." + std::to_string(limits_.max_volume_bytes / record_size) +
                           " (host limit " + std::to_string(limits_.max_volume_bytes) + " bytes per volume)");
  }
  if (owner.size() > kOwnerMax) return InvalidArgument("identity too long to own a volume");
  std::lock_guard lock(mu_);
  std::string path = dir_ + "/" + name + ".vol";
  if (::access(path.c_str(), F_OK) == 0) return AlreadyExists("volume '" + name + "' already exists");
  if (open_.size() >= limits_.max_volumes) return NoSpace("too many open volumes");
  VolumeInfo info{name, owner, record_size, record_count, 1};
  Bytes header = Volume::NewHeader(info);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("create " + tmp, errno);
  Status s = PwriteAll(fd, header.data(), header.size(), 0, tmp);
  if (s.ok() && ::ftruncate(fd, off_t(kHeaderSize + record_count * record_size)) != 0) s = ErrnoStatus("size " + tmp, errno);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus("fsync " + tmp, errno);
  ::close(fd);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = ErrnoStatus("rename " + tmp, errno);
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  COFFER_RETURN_IF_ERROR(SyncDir(dir_));
  ::unlink((dir_ + "/" + name + ".jnl").c_str());
  open_.erase(name);
  return info;
}

Result<VolumeInfo> VolumeStore::Ensure(const std::string& name, uint32_t record_size, uint64_t record_count,
                                       const std::string& owner) {
  auto info = Info(name);
  if (info.ok()) {
    if (info->record_size != record_size || info->record_count != record_count) {
      return FailedPrecondition("volume '" + name + "' exists with " + std::to_string(info->record_count) + " x " +
                                std::to_string(info->record_size) + "-byte records, not " +
                                std::to_string(record_count) + " x " + std::to_string(record_size));
    }
    return info;
  }
  if (info.status().code() != StatusCode::kNotFound) return info.status();
  return Create(name, record_size, record_count, owner);
}

Result<VolumeInfo> VolumeStore::Info(const std::string& name) {
  COFFER_ASSIGN_OR_RETURN(auto v, Get(name));
  return v->info();
}

Status VolumeStore::Delete(const std::string& name) {
  COFFER_ASSIGN_OR_RETURN(auto v, Get(name));
  std::lock_guard lock(mu_);
  COFFER_RETURN_IF_ERROR(v->Delete());
  open_.erase(name);
  return SyncDir(dir_);
}

Result<uint64_t> VolumeStore::OpenForWrite(const std::string& name) {
  COFFER_ASSIGN_OR_RETURN(auto v, Get(name));
  return v->BumpGeneration();
}

Status VolumeStore::Read(const std::string& name, uint64_t first, uint64_t count, std::span<uint8_t> out) {
  COFFER_ASSIGN_OR_RETURN(auto v, Get(name));
  return v->Read(first, count, out);
}

Result<BatchResult> VolumeStore::ApplyBatch(const std::string& name, const BatchView& batch, bool check_generation) {
  COFFER_ASSIGN_OR_RETURN(auto v, Get(name));
  return v->Apply(batch, check_generation);
}

}  // namespace coffer::blockhost
