// The public Filesystem/File/Dir API over the littlefs engine (lfs_core): argument checks,
// handle lifetime, and mapping of littlefs error codes onto Status.
#include "coffer/fs/filesystem.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "fs/lfs_core.h"

namespace coffer::fs {

using internal::Core;
using internal::DirState;
using internal::FileState;

namespace {

// Everything a handle needs to reach its filesystem; handles share it so a handle that
// outlives its Filesystem fails cleanly instead of touching freed memory.
struct Session {
  std::unique_ptr<Core> core;
  bool mounted = false;
};

Status ToStatus(int err, Core& core, const std::string& what) {
  using namespace internal;
  auto with = [&](Status s) { return what.empty() ? s : s.WithContext(what); };
  switch (err) {
    case kErrOk:
      return Status::Ok();
    case kErrNoEnt:
      return with(NotFound("no such file or directory"));
    case kErrExist:
      return with(AlreadyExists("entry already exists"));
    case kErrNotDir:
      return with(FailedPrecondition("not a directory"));
    case kErrIsDir:
      return with(FailedPrecondition("is a directory"));
    case kErrNotEmpty:
      return with(FailedPrecondition("directory not empty"));
    case kErrBadF:
      return with(FailedPrecondition("file not open for this operation"));
    case kErrFBig:
      return with(OutOfRange("file too large"));
    case kErrInval:
      return with(InvalidArgument("invalid argument or path"));
    case kErrNoSpc:
      return with(NoSpace("no space left on the filesystem"));
    case kErrNoMem:
      return with(Internal("out of memory"));
    case kErrNoAttr:
      return with(NotFound("no such attribute"));
    case kErrNameTooLong:
      return with(InvalidArgument("name too long"));
    case kErrCorrupt: {
      const Status& d = core.device_status();
      if (!d.ok() && d.code() == StatusCode::kCorrupt) return with(d);
      return with(Corrupt("littlefs structure is corrupt"));
    }
    case kErrDevice:
      // device failures (kDataLoss, kIoError...) pass through untouched
      if (!core.device_status().ok()) return core.device_status();
      return with(IoError("device error"));
    default:
      return with(IoError("littlefs error " + std::to_string(err)));
  }
}

Status CheckPath(const std::string& path) {
  if (path.empty()) return InvalidArgument("empty path");
  if (path.find('\0') != std::string::npos) return InvalidArgument("path contains a NUL byte");
  return Status::Ok();
}

EntryInfo ToEntry(const internal::Info& in) {
  EntryInfo e;
  e.type = in.type == 2 ? EntryType::kDir : EntryType::kFile;
  e.size = e.type == EntryType::kFile ? in.size : 0;
  e.name = in.name;
  return e;
}

}  // namespace

struct File::Impl {
  std::shared_ptr<Session> session;
  FileState st;
  std::string path;
  bool closed = false;

  Status Live() const {
    if (closed) return FailedPrecondition("file is closed");
    if (!session->mounted || !session->core->IsOpen(&st)) {
      return FailedPrecondition("filesystem was unmounted");
    }
    return Status::Ok();
  }
};

struct Dir::Impl {
  std::shared_ptr<Session> session;
  DirState st;
  bool closed = false;
  Status Live() const {
    if (closed) return FailedPrecondition("directory is closed");
    if (!session->mounted || !session->core->IsOpen(&st)) {
      return FailedPrecondition("filesystem was unmounted");
    }
    return Status::Ok();
  }
};

struct Filesystem::Impl {
  std::shared_ptr<Session> session;
  Core& core() { return *session->core; }
  Status Live() const {
    if (!session || !session->mounted) return FailedPrecondition("filesystem is not mounted");
    return Status::Ok();
  }
};

// ------------------------------------------------------------------------------------------
// File

File::File(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    if (impl_) (void)Close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
File::~File() {
  if (impl_) (void)Close();
}

Result<size_t> File::Read(std::span<uint8_t> out) {
  if (!impl_) return FailedPrecondition("file is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = *impl_->session->core;
  size_t total = 0;
  while (total < out.size()) {
    uint32_t chunk = uint32_t(std::min<size_t>(out.size() - total, 1u << 30));
    int32_t n = core.FileRead(&impl_->st, out.data() + total, chunk);
    if (n < 0) return ToStatus(n, core, "read " + impl_->path);
    total += size_t(n);
    if (uint32_t(n) < chunk) break;
  }
  return total;
}

Result<size_t> File::Write(std::span<const uint8_t> data) {
  if (!impl_) return FailedPrecondition("file is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = *impl_->session->core;
  if (data.size() > core.file_max()) return OutOfRange("write larger than file_max");
  int32_t n = core.FileWrite(&impl_->st, data.data(), uint32_t(data.size()));
  if (n < 0) return ToStatus(n, core, "write " + impl_->path);
  return size_t(n);
}

Result<uint32_t> File::Seek(int64_t offset, Whence whence) {
  if (!impl_) return FailedPrecondition("file is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = *impl_->session->core;
  int64_t r = core.FileSeek(&impl_->st, offset, whence);
  if (r < 0) return ToStatus(int(r), core, "seek " + impl_->path);
  return uint32_t(r);
}

uint32_t File::Tell() const { return impl_ ? impl_->st.pos : 0; }

Result<uint32_t> File::Size() const {
  if (!impl_) return FailedPrecondition("file is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  return impl_->session->core->FileSize(&impl_->st);
}

Status File::Truncate(uint32_t size) {
  if (!impl_) return FailedPrecondition("file is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = *impl_->session->core;
  return ToStatus(core.FileTruncate(&impl_->st, size), core, "truncate " + impl_->path);
}

Status File::Sync() {
  if (!impl_) return FailedPrecondition("file is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = *impl_->session->core;
  return ToStatus(core.FileSync(&impl_->st), core, "sync " + impl_->path);
}

Status File::Close() {
  if (!impl_ || impl_->closed) return Status::Ok();
  impl_->closed = true;
  if (!impl_->session->mounted || !impl_->session->core->IsOpen(&impl_->st)) return Status::Ok();
  Core& core = *impl_->session->core;
  return ToStatus(core.FileClose(&impl_->st), core, "close " + impl_->path);
}

// ------------------------------------------------------------------------------------------
// Dir

Dir::Dir(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Dir::Dir(Dir&&) noexcept = default;
Dir& Dir::operator=(Dir&& other) noexcept {
  if (this != &other) {
    if (impl_ && !impl_->closed && impl_->session->mounted) impl_->session->core->DirClose(&impl_->st);
    impl_ = std::move(other.impl_);
  }
  return *this;
}
Dir::~Dir() {
  if (impl_ && !impl_->closed && impl_->session->mounted) impl_->session->core->DirClose(&impl_->st);
}

Result<std::optional<EntryInfo>> Dir::Read() {
  if (!impl_) return FailedPrecondition("directory is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = *impl_->session->core;
  internal::Info info;
  int r = core.DirRead(&impl_->st, &info);
  if (r < 0) return ToStatus(r, core, "read directory");
  if (r == 0) return std::optional<EntryInfo>();
  return std::optional<EntryInfo>(ToEntry(info));
}

Status Dir::Seek(uint32_t offset) {
  if (!impl_) return FailedPrecondition("directory is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = *impl_->session->core;
  return ToStatus(core.DirSeek(&impl_->st, offset), core, "seek directory");
}

uint32_t Dir::Tell() const { return impl_ ? impl_->st.pos : 0; }

Status Dir::Rewind() {
  if (!impl_) return FailedPrecondition("directory is closed");
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = *impl_->session->core;
  return ToStatus(core.DirRewind(&impl_->st), core, "rewind directory");
}

// ------------------------------------------------------------------------------------------
// Filesystem

Filesystem::Filesystem(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Filesystem::~Filesystem() { (void)Unmount(); }

Status Filesystem::Format(BlockDevice& device, const Config& config) {
  Core core(device, config);
  int err = core.Format();
  return ToStatus(err, core, "format");
}

Result<std::unique_ptr<Filesystem>> Filesystem::Mount(BlockDevice& device, const Config& config) {
  auto session = std::make_shared<Session>();
  session->core = std::make_unique<Core>(device, config);
  int err = session->core->Mount();
  if (err) return ToStatus(err, *session->core, "mount");
  session->mounted = true;
  auto impl = std::make_unique<Impl>();
  impl->session = std::move(session);
  return std::unique_ptr<Filesystem>(new Filesystem(std::move(impl)));
}

Result<FsInfo> Filesystem::Probe(BlockDevice& device, uint32_t block_size) {
  const BlockGeometry& g = device.geometry();
  std::vector<uint32_t> candidates;
  if (block_size) {
    candidates.push_back(block_size);
  } else {
    for (uint32_t bs = 128; bs <= (1u << 20); bs <<= 1) candidates.push_back(bs);
  }
  Status last = Corrupt("no littlefs superblock found");
  std::vector<uint32_t> tried;
  for (size_t i = 0; i < candidates.size(); i++) {
    uint32_t bs = candidates[i];
    if (std::find(tried.begin(), tried.end(), bs) != tried.end()) continue;
    tried.push_back(bs);
    if (uint64_t(bs) * 2 > g.total_bytes()) continue;
    Config cfg;
    cfg.block_size = bs;
    cfg.read_size = g.read_size;
    cfg.prog_size = g.prog_size;
    cfg.cache_size = std::max(g.read_size, g.prog_size);
    if (!cfg.cache_size || bs % cfg.cache_size || (bs % g.block_size && g.block_size % bs)) continue;
    Core core(device, cfg);
    int err = core.Mount();
    if (!err) return core.info();
    Status s = ToStatus(err, core, "");
    if (s.code() == StatusCode::kDataLoss) return s;  // never guess past an authentication failure
    // A superblock found at the wrong geometry names the real block size: try it next.
    const std::string& m = s.message();
    const std::string key = "image block size is ";
    if (size_t p = m.find(key); p != std::string::npos && !block_size) {
      uint32_t real = uint32_t(std::strtoul(m.c_str() + p + key.size(), nullptr, 10));
      if (real >= 128 && real <= (1u << 20) && (real & (real - 1)) == 0) {
        candidates.insert(candidates.begin() + i + 1, real);
      }
    }
    if (s.code() != StatusCode::kCorrupt || last.message() == "no littlefs superblock found") last = s;
  }
  return last.WithContext("probe");
}

Status Filesystem::Unmount() {
  if (!impl_ || !impl_->session || !impl_->session->mounted) return Status::Ok();
  // littlefs requires handles to be closed first; close (and sync) any left open so data
  // written through them is not lost, then invalidate them.
  Core& core = impl_->core();
  int err = core.CloseAll();
  impl_->session->mounted = false;
  return ToStatus(err, core, "unmount");
}

const FsInfo& Filesystem::info() const { return impl_->session->core->info(); }

Result<File> Filesystem::Open(const std::string& path, uint32_t flags) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(path));
  if ((flags & 3) == 0 || (flags & ~uint32_t(0x0f03))) {
    return InvalidArgument("open flags must include kRdOnly, kWrOnly or kRdWr");
  }
  auto impl = std::make_unique<File::Impl>();
  impl->session = impl_->session;
  impl->path = path;
  Core& core = impl_->core();
  int err = core.FileOpen(&impl->st, path.c_str(), flags);
  if (err) {
    impl->closed = true;
    return ToStatus(err, core, "open " + path);
  }
  return File(std::move(impl));
}

Result<Dir> Filesystem::OpenDir(const std::string& path) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(path));
  auto impl = std::make_unique<Dir::Impl>();
  impl->session = impl_->session;
  Core& core = impl_->core();
  int err = core.DirOpen(&impl->st, path.c_str());
  if (err) {
    impl->closed = true;
    return ToStatus(err, core, "opendir " + path);
  }
  return Dir(std::move(impl));
}

Status Filesystem::Mkdir(const std::string& path) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(path));
  return ToStatus(impl_->core().Mkdir(path.c_str()), impl_->core(), "mkdir " + path);
}

Status Filesystem::Remove(const std::string& path) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(path));
  return ToStatus(impl_->core().Remove(path.c_str()), impl_->core(), "remove " + path);
}

Status Filesystem::Rename(const std::string& from, const std::string& to) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(from));
  COFFER_RETURN_IF_ERROR(CheckPath(to));
  return ToStatus(impl_->core().Rename(from.c_str(), to.c_str()), impl_->core(),
                  "rename " + from + " -> " + to);
}

Result<EntryInfo> Filesystem::Stat(const std::string& path) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(path));
  internal::Info info;
  int err = impl_->core().Stat(path.c_str(), &info);
  if (err) return ToStatus(err, impl_->core(), "stat " + path);
  return ToEntry(info);
}

Result<std::vector<uint8_t>> Filesystem::GetAttr(const std::string& path, uint8_t type) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(path));
  Core& core = impl_->core();
  std::vector<uint8_t> buf(core.attr_max());
  int32_t n = core.GetAttr(path.c_str(), type, buf.data(), uint32_t(buf.size()));
  if (n < 0) return ToStatus(n, core, "getattr " + path);
  buf.resize(std::min<size_t>(size_t(n), buf.size()));
  return buf;
}

Status Filesystem::SetAttr(const std::string& path, uint8_t type, std::span<const uint8_t> value) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(path));
  Core& core = impl_->core();
  if (value.size() > core.attr_max()) {
    return InvalidArgument("attribute of " + std::to_string(value.size()) + " bytes exceeds attr_max " +
                           std::to_string(core.attr_max()));
  }
  return ToStatus(core.SetAttr(path.c_str(), type, value.data(), uint32_t(value.size())), core,
                  "setattr " + path);
}

Status Filesystem::RemoveAttr(const std::string& path, uint8_t type) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  COFFER_RETURN_IF_ERROR(CheckPath(path));
  return ToStatus(impl_->core().RemoveAttr(path.c_str(), type), impl_->core(), "removeattr " + path);
}

Result<uint32_t> Filesystem::BlocksInUse() {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  int32_t n = impl_->core().FsSize();
  if (n < 0) return ToStatus(n, impl_->core(), "fs size");
  return uint32_t(n);
}

Status Filesystem::Traverse(const std::function<Status(uint32_t block)>& visit) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  Core& core = impl_->core();
  Status cb_status;
  int err = core.FsTraverse(
      [&](uint32_t block) {
        cb_status = visit(block);
        return cb_status.ok() ? 0 : int(internal::kErrDevice);
      },
      false);
  if (!cb_status.ok()) return cb_status;
  return ToStatus(err, core, "traverse");
}

Status Filesystem::MakeConsistent() {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  return ToStatus(impl_->core().MkConsistent(), impl_->core(), "mkconsistent");
}

Status Filesystem::GarbageCollect() {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  return ToStatus(impl_->core().Gc(), impl_->core(), "gc");
}

Status Filesystem::Grow(uint32_t block_count) {
  COFFER_RETURN_IF_ERROR(impl_->Live());
  return ToStatus(impl_->core().Grow(block_count), impl_->core(), "grow");
}

}  // namespace coffer::fs
