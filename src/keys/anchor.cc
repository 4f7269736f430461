#include "coffer/keys/anchor.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "coffer/base/file_util.h"
#include "coffer/crypt/hash.h"

namespace coffer {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'A', 'N', 'C', 'H', 'O', 'R'};
constexpr uint16_t kVersion = 1;
constexpr size_t kEntrySize = 16 + 8 + 32;
constexpr size_t kMaxEntries = 1 << 20;

using Entries = std::vector<std::pair<VolumeId, AnchorEntry>>;

Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return Status::Ok();
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) return Status::Ok();
  auto slash = dir.find_last_of('/');
  if (slash != std::string::npos && slash > 0) COFFER_RETURN_IF_ERROR(MakeDirs(dir.substr(0, slash)));
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("create directory " + dir, errno);
  return Status::Ok();
}

std::string Dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

Result<Entries> Parse(const std::string& path, ByteSpan b) {
  auto corrupt = [&](const std::string& why) {
    return DataLoss("anchor file " + path + " is corrupt (" + why +
                    "): freshness cannot be checked; restore it or re-create the anchor deliberately");
  };
  if (b.size() < 16 + 32 || std::memcmp(b.data(), kMagic, 8) != 0) return corrupt("bad magic or too short");
  Hash256 sum = Blake2b256({b.subspan(0, b.size() - 32)});
  if (!ConstantTimeEquals(sum, b.subspan(b.size() - 32))) return corrupt("checksum mismatch");
  if (GetLe16(b.data() + 8) != kVersion) {
    return Unsupported("anchor file " + path + " has format version " + std::to_string(GetLe16(b.data() + 8)) +
                       "; this coffer reads version 1: upgrade coffer");
  }
  uint32_t n = GetLe32(b.data() + 12);
  if (n > kMaxEntries || b.size() != 16 + size_t(n) * kEntrySize + 32) return corrupt("wrong length");
  Entries out;
  const uint8_t* p = b.data() + 16;
  for (uint32_t i = 0; i < n; ++i, p += kEntrySize) {
    std::pair<VolumeId, AnchorEntry> e;
    std::memcpy(e.first.data(), p, 16);
    e.second.counter = GetLe64(p + 16);
    std::memcpy(e.second.root.data(), p + 24, 32);
    out.push_back(e);
  }
  return out;
}

Bytes Serialize(const Entries& entries) {
  Bytes b(16);
  std::memcpy(b.data(), kMagic, 8);
  PutLe16(b.data() + 8, kVersion);
  PutLe32(b.data() + 12, uint32_t(entries.size()));
  for (const auto& [id, e] : entries) {
    b.insert(b.end(), id.begin(), id.end());
    AppendLe64(b, e.counter);
    b.insert(b.end(), e.root.begin(), e.root.end());
  }
  Hash256 sum = Blake2b256({b});
  b.insert(b.end(), sum.begin(), sum.end());
  return b;
}

// Holds an exclusive flock on PATH.lock for a load-modify-write cycle.
class AnchorLock {
 public:
  static Result<AnchorLock> Take(const std::string& path) {
    COFFER_RETURN_IF_ERROR(MakeDirs(Dir(path)));
    std::string lock = path + ".lock";
    int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return ErrnoStatus("open " + lock, errno);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int e = errno;
        ::close(fd);
        return ErrnoStatus("lock " + lock, e);
      }
    }
    return AnchorLock(fd);
  }
  AnchorLock(AnchorLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~AnchorLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit AnchorLock(int fd) : fd_(fd) {}
  int fd_;
};

Result<Entries> LoadAll(const std::string& path) {
  auto bytes = ReadFileBytes(path);
  if (!bytes.ok()) {
    if (bytes.status().code() == StatusCode::kNotFound) return Entries{};
    return bytes.status();
  }
  return Parse(path, *bytes);
}

}  // namespace

Result<std::optional<AnchorEntry>> FileAnchor::Load(const VolumeId& id) {
  COFFER_ASSIGN_OR_RETURN(AnchorLock lock, AnchorLock::Take(path_));
  COFFER_ASSIGN_OR_RETURN(Entries entries, LoadAll(path_));
  for (const auto& [eid, e] : entries) {
    if (eid == id) return std::optional<AnchorEntry>(e);
  }
  return std::optional<AnchorEntry>();
}

Status FileAnchor::Commit(const VolumeId& id, const AnchorEntry& entry) {
  COFFER_ASSIGN_OR_RETURN(AnchorLock lock, AnchorLock::Take(path_));
  COFFER_ASSIGN_OR_RETURN(Entries entries, LoadAll(path_));
  bool found = false;
  for (auto& [eid, e] : entries) {
    if (eid != id) continue;
    found = true;
    if (e == entry) return Status::Ok();
    if (entry.counter <= e.counter) {
      return FailedPrecondition("anchor " + path_ + " is already at commit " + std::to_string(e.counter) +
                                "; refusing to record commit " + std::to_string(entry.counter) +
                                " (is another process writing this volume?)");
    }
    e = entry;
  }
  if (!found) entries.emplace_back(id, entry);
  return WriteFileAtomic(path_, Serialize(entries), {.mode = 0600});
}

Status FileAnchor::Forget(const VolumeId& id) {
  COFFER_ASSIGN_OR_RETURN(AnchorLock lock, AnchorLock::Take(path_));
  COFFER_ASSIGN_OR_RETURN(Entries entries, LoadAll(path_));
  size_t before = entries.size();
  std::erase_if(entries, [&](const auto& e) { return e.first == id; });
  if (entries.size() == before) return Status::Ok();
  return WriteFileAtomic(path_, Serialize(entries), {.mode = 0600});
}

Result<std::optional<AnchorEntry>> FaultAnchor::Load(const VolumeId& id) {
  if (dead_) return IoError("power cut (fault injection)");
  return base_->Load(id);
}

Status FaultAnchor::Commit(const VolumeId& id, const AnchorEntry& entry) {
  if (dead_) return IoError("power cut (fault injection)");
  if (cut_at_ >= 0 && commits_ == uint64_t(cut_at_)) {
    dead_ = true;
    if (lands_) (void)base_->Commit(id, entry);
    return IoError("power cut during anchor commit (fault injection)");
  }
  commits_++;
  return base_->Commit(id, entry);
}

Status FaultAnchor::Forget(const VolumeId& id) {
  if (dead_) return IoError("power cut (fault injection)");
  return base_->Forget(id);
}

Result<std::optional<AnchorEntry>> MemoryAnchor::Load(const VolumeId& id) {
  for (const auto& [eid, e] : entries_) {
    if (eid == id) return std::optional<AnchorEntry>(e);
  }
  return std::optional<AnchorEntry>();
}

Status MemoryAnchor::Commit(const VolumeId& id, const AnchorEntry& entry) {
  for (auto& [eid, e] : entries_) {
    if (eid != id) continue;
    if (e == entry) return Status::Ok();
    if (entry.counter <= e.counter) return FailedPrecondition("anchor counter would move backwards");
    e = entry;
    return Status::Ok();
  }
  entries_.emplace_back(id, entry);
  return Status::Ok();
}

Status MemoryAnchor::Forget(const VolumeId& id) {
  std::erase_if(entries_, [&](const auto& e) { return e.first == id; });
  return Status::Ok();
}

std::string DefaultStateAnchorPath() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  std::string base;
  if (xdg && *xdg == '/') {
    base = xdg;
  } else {
    const char* home = std::getenv("HOME");
    base = std::string(home && *home ? home : "/tmp") + "/.local/state";
  }
  return base + "/coffer/anchors";
}

namespace {
std::mutex& AnchorRegistryMutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, AnchorFactory>& AnchorRegistry() {
  static std::map<std::string, AnchorFactory> r;
  return r;
}
}  // namespace

void RegisterAnchorScheme(const std::string& scheme, AnchorFactory factory) {
  std::lock_guard lock(AnchorRegistryMutex());
  AnchorRegistry()[scheme] = std::move(factory);
}

Result<std::shared_ptr<Anchor>> OpenAnchorSpec(const std::string& spec) {
  if (spec.empty()) return InvalidArgument("empty anchor spec");
  auto colon = spec.find(':');
  if (colon != std::string::npos && colon > 0) {
    AnchorFactory factory;
    {
      std::lock_guard lock(AnchorRegistryMutex());
      auto it = AnchorRegistry().find(spec.substr(0, colon));
      if (it != AnchorRegistry().end()) factory = it->second;
    }
    if (factory) return factory(std::string_view(spec).substr(colon + 1));
  }
  return std::shared_ptr<Anchor>(std::make_shared<FileAnchor>(spec));
}

}  // namespace coffer
