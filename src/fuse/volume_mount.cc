// FUSE view of a littlefs filesystem on a sealed volume (see volume_mount.h). One mutex serialises
// every request (littlefs is single-threaded). Handles are heap objects whose address is the FUSE
// file handle; they are all closed before the filesystem unmounts.
#define FUSE_USE_VERSION 35
#include "coffer/fuse/volume_mount.h"

#include <fcntl.h>
#include <fuse.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>

namespace coffer::fuse {
namespace {

struct Handle {
  fs::File file;
  std::string path;
  bool writable = false;
  bool dirty = false;  // written (or truncated) since the last sync
};

class VolumeFs {
 public:
  VolumeFs(const VolumeMountOptions& o, std::unique_ptr<BlockDevice> device)
      : opts_(o), device_(std::move(device)), mounted_at_(::time(nullptr)), uid_(::getuid()), gid_(::getgid()) {}

  Status Mount(const fs::Config& config) {
    auto m = fs::Filesystem::Mount(*device_, config);
    if (!m.ok()) return m.status().WithContext("mount the filesystem on " + opts_.description);
    fs_ = std::move(m).value();
    return Status::Ok();
  }

  // Logs what deserves a log line (integrity and device failures) and maps to -errno. littlefs
  // reports several POSIX conditions under one code; its messages tell them apart.
  int Errno(const Status& s, const std::string& path) {
    const std::string& m = s.message();
    auto has = [&](const char* text) { return m.find(text) != std::string::npos; };
    switch (s.code()) {
      case StatusCode::kFailedPrecondition:
        if (has("not a directory")) return -ENOTDIR;
        if (has("is a directory")) return -EISDIR;
        if (has("not empty")) return -ENOTEMPTY;
        if (has("not open")) return -EBADF;
        break;
      case StatusCode::kInvalidArgument:
        if (has("name too long")) return -ENAMETOOLONG;
        return -EINVAL;
      case StatusCode::kDataLoss:
        Log(path + ": the volume failed authentication (tampered or rolled back): " + m);
        return -EIO;
      case StatusCode::kNotFound:
      case StatusCode::kAlreadyExists:
      case StatusCode::kNoSpace:
      case StatusCode::kOutOfRange:
        return StatusToErrno(s);
      default:
        break;
    }
    Log(path + ": " + m);
    return -EIO;
  }

  void Log(const std::string& message) { LogMountError(opts_.mountpoint, opts_.foreground, message); }

  // Every component must fit littlefs's name_max; anything else is left to littlefs.
  int CheckPath(const char* path) const {
    uint32_t name_max = fs_->info().name_max;
    size_t len = 0;
    for (const char* p = path;; ++p) {
      if (*p == '/' || *p == '\0') {
        if (len > name_max) return -ENAMETOOLONG;
        len = 0;
        if (*p == '\0') return 0;
      } else {
        ++len;
      }
    }
  }
  int Writable() const { return opts_.read_only ? -EROFS : 0; }

  void FillStat(const fs::EntryInfo& e, struct stat* st) const {
    std::memset(st, 0, sizeof *st);
    bool dir = e.type == fs::EntryType::kDir;
    mode_t perm = dir ? 0755 : 0644;
    if (opts_.read_only) perm &= ~mode_t(0222);
    st->st_mode = (dir ? S_IFDIR : S_IFREG) | perm;
    st->st_nlink = dir ? 2 : 1;
    st->st_uid = uid_;
    st->st_gid = gid_;
    st->st_size = dir ? 0 : off_t(e.size);
    st->st_blksize = blksize_t(fs_->info().block_size);
    st->st_blocks = (st->st_size + 511) / 512;
    st->st_atime = st->st_mtime = st->st_ctime = mounted_at_;
  }

  Handle* OpenWritable(const std::string& path) {
    for (Handle* h : handles_)
      if (h->writable && h->path == path) return h;
    return nullptr;
  }

  // Syncs every handle with unsynced writes (a rename moves committed content).
  int SyncDirty(const std::string& path) {
    for (Handle* h : handles_) {
      if (h->dirty && (h->path == path || h->path.starts_with(path + "/"))) {
        Status s = h->file.Sync();
        if (!s.ok()) return Errno(s, h->path);
        h->dirty = false;
      }
    }
    return 0;
  }

  Status Shutdown() {
    Status first = Status::Ok();
    for (Handle* h : handles_) {
      Status s = h->file.Close();
      if (!s.ok() && first.ok()) first = s;
      delete h;
    }
    handles_.clear();
    if (fs_) {
      Status s = fs_->Unmount();
      if (!s.ok() && first.ok()) first = s;
      fs_.reset();
    }
    if (!opts_.read_only) {
      Status s = device_->Sync();
      if (!s.ok() && first.ok()) first = s;
    }
    return first;
  }

  const VolumeMountOptions opts_;
  std::unique_ptr<BlockDevice> device_;
  std::unique_ptr<fs::Filesystem> fs_;
  std::set<Handle*> handles_;
  std::mutex mu_;
  time_t mounted_at_;
  uid_t uid_;
  gid_t gid_;
  Status final_status_ = Status::Ok();
};

VolumeFs* Vfs() { return static_cast<VolumeFs*>(fuse_get_context()->private_data); }
Handle* H(struct fuse_file_info* fi) { return fi && fi->fh ? reinterpret_cast<Handle*>(fi->fh) : nullptr; }

int OpGetattr(const char* path, struct stat* st, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->CheckPath(path)) return e;
  if (std::strcmp(path, "/") == 0) {
    v->FillStat(fs::EntryInfo{fs::EntryType::kDir, 0, "/"}, st);
    return 0;
  }
  auto info = v->fs_->Stat(path);
  if (!info.ok()) return v->Errno(info.status(), path);
  v->FillStat(*info, st);
  // An open, written file's size is its handle's (littlefs's directory entry lags until sync).
  Handle* h = H(fi);
  if (!h && info->type == fs::EntryType::kFile) h = v->OpenWritable(path);
  if (h) {
    auto size = h->file.Size();
    if (size.ok()) {
      st->st_size = off_t(*size);
      st->st_blocks = (st->st_size + 511) / 512;
    }
  }
  return 0;
}

int OpReaddir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, struct fuse_file_info*,
              enum fuse_readdir_flags) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->CheckPath(path)) return e;
  auto dir = v->fs_->OpenDir(path);
  if (!dir.ok()) return v->Errno(dir.status(), path);
  bool dots = false;
  for (;;) {
    auto e = dir->Read();
    if (!e.ok()) return v->Errno(e.status(), path);
    if (!*e) break;
    const fs::EntryInfo& info = **e;
    if (info.name.empty() || info.name.find('/') != std::string::npos) {
      v->Log(std::string(path) + ": skipped an entry with an unusable name (damaged filesystem)");
      continue;
    }
    if (info.name == ".") dots = true;
    struct stat st;
    v->FillStat(info, &st);
    if (filler(buf, info.name.c_str(), &st, 0, fuse_fill_dir_flags(0))) break;
  }
  if (!dots) {
    filler(buf, ".", nullptr, 0, fuse_fill_dir_flags(0));
    filler(buf, "..", nullptr, 0, fuse_fill_dir_flags(0));
  }
  return 0;
}

int OpMkdir(const char* path, mode_t) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->Writable()) return e;
  if (int e = v->CheckPath(path)) return e;
  Status s = v->fs_->Mkdir(path);
  return s.ok() ? 0 : v->Errno(s, path);
}

int OpRmdir(const char* path) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->Writable()) return e;
  if (int e = v->CheckPath(path)) return e;
  if (std::strcmp(path, "/") == 0) return -EBUSY;
  auto info = v->fs_->Stat(path);
  if (!info.ok()) return v->Errno(info.status(), path);
  if (info->type != fs::EntryType::kDir) return -ENOTDIR;
  Status s = v->fs_->Remove(path);
  return s.ok() ? 0 : v->Errno(s, path);
}

int OpUnlink(const char* path) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->Writable()) return e;
  if (int e = v->CheckPath(path)) return e;
  auto info = v->fs_->Stat(path);
  if (!info.ok()) return v->Errno(info.status(), path);
  if (info->type == fs::EntryType::kDir) return -EISDIR;
  Status s = v->fs_->Remove(path);
  return s.ok() ? 0 : v->Errno(s, path);
}

int OpRename(const char* from, const char* to, unsigned int flags) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->Writable()) return e;
  if (flags & ~unsigned(RENAME_NOREPLACE)) return -EINVAL;  // RENAME_EXCHANGE: littlefs cannot
  if (int e = v->CheckPath(from)) return e;
  if (int e = v->CheckPath(to)) return e;
  std::string f = from, t = to;
  if (t.starts_with(f + "/")) return -EINVAL;  // a directory into itself
  if (flags & RENAME_NOREPLACE) {
    auto existing = v->fs_->Stat(to);
    if (existing.ok()) return -EEXIST;
    if (existing.status().code() != StatusCode::kNotFound) return v->Errno(existing.status(), to);
  }
  if (int e = v->SyncDirty(f)) return e;
  Status s = v->fs_->Rename(from, to);
  if (!s.ok()) return v->Errno(s, f + " -> " + t);
  for (Handle* h : v->handles_) {
    if (h->path == f) h->path = t;
    else if (h->path.starts_with(f + "/")) h->path = t + h->path.substr(f.size());
  }
  return 0;
}

uint32_t LfsFlags(int flags) {
  uint32_t out;
  switch (flags & O_ACCMODE) {
    case O_WRONLY: out = fs::kWrOnly; break;
    case O_RDWR: out = fs::kRdWr; break;
    default: out = fs::kRdOnly; break;
  }
  if ((flags & O_TRUNC) && out != fs::kRdOnly) out |= fs::kTrunc;
  return out;  // O_APPEND: the kernel passes the end offset with each write
}

int OpenCommon(VolumeFs* v, const char* path, struct fuse_file_info* fi, uint32_t extra) {
  uint32_t flags = LfsFlags(fi->flags) | extra;
  bool writable = (flags & fs::kWrOnly) != 0;
  if (writable || extra) {
    if (int e = v->Writable()) return e;
  }
  if (int e = v->CheckPath(path)) return e;
  if (extra) flags |= fs::kWrOnly;  // create: littlefs needs write access to make the entry
  auto file = v->fs_->Open(path, flags);
  if (!file.ok()) return v->Errno(file.status(), path);
  auto* h = new Handle{std::move(*file), path, (flags & fs::kWrOnly) != 0, (flags & (fs::kTrunc | fs::kCreat)) != 0};
  v->handles_.insert(h);
  fi->fh = reinterpret_cast<uint64_t>(h);
  fi->keep_cache = 0;
  return 0;
}

int OpOpen(const char* path, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  return OpenCommon(v, path, fi, 0);
}

int OpCreate(const char* path, mode_t, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  return OpenCommon(v, path, fi, fs::kCreat | ((fi->flags & O_EXCL) ? fs::kExcl : 0u));
}

int OpRead(const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  Handle* h = H(fi);
  if (!h) return -EBADF;
  auto total = h->file.Size();
  if (!total.ok()) return v->Errno(total.status(), h->path);
  if (off < 0 || uint64_t(off) >= *total) return 0;
  auto pos = h->file.Seek(off, fs::Whence::kSet);
  if (!pos.ok()) return v->Errno(pos.status(), h->path);
  size = std::min<size_t>(size, size_t(*total - uint64_t(off)));
  auto n = h->file.Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(buf), size));
  if (!n.ok()) return v->Errno(n.status(), path ? std::string(path) : h->path);
  return int(*n);
}

int OpWrite(const char*, const char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->Writable()) return e;
  Handle* h = H(fi);
  if (!h) return -EBADF;
  if (!h->writable) return -EBADF;
  if (off < 0 || uint64_t(off) + size > v->fs_->info().file_max) return -EFBIG;
  auto pos = h->file.Seek(off, fs::Whence::kSet);
  if (!pos.ok()) return v->Errno(pos.status(), h->path);
  auto n = h->file.Write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf), size));
  if (!n.ok()) return v->Errno(n.status(), h->path);
  h->dirty = true;
  return int(*n);
}

int OpTruncate(const char* path, off_t size, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->Writable()) return e;
  if (int e = v->CheckPath(path)) return e;
  if (size < 0) return -EINVAL;
  if (uint64_t(size) > v->fs_->info().file_max) return -EFBIG;
  Handle* h = H(fi);
  if (!h) h = v->OpenWritable(path);
  if (h) {
    Status s = h->file.Truncate(uint32_t(size));
    if (s.ok()) s = h->file.Sync();  // commit, as a truncate by path does
    if (!s.ok()) return v->Errno(s, path);
    h->dirty = false;
    return 0;
  }
  auto file = v->fs_->Open(path, fs::kWrOnly);
  if (!file.ok()) return v->Errno(file.status(), path);
  Status s = file->Truncate(uint32_t(size));
  Status c = file->Close();
  if (!s.ok()) return v->Errno(s, path);
  return c.ok() ? 0 : v->Errno(c, path);
}

// close(): commit what this handle wrote, so a closed file survives a crash and errors (ENOSPC,
// EIO) reach the caller's close().
int OpFlush(const char*, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  Handle* h = H(fi);
  if (!h || !h->dirty) return 0;
  Status s = h->file.Sync();
  if (!s.ok()) return v->Errno(s, h->path);
  h->dirty = false;
  return 0;
}

int OpFsync(const char*, int, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  Handle* h = H(fi);
  if (h && h->writable) {
    Status s = h->file.Sync();
    if (!s.ok()) return v->Errno(s, h->path);
    h->dirty = false;
  }
  if (v->opts_.read_only) return 0;
  Status s = v->device_->Sync();
  return s.ok() ? 0 : v->Errno(s, h ? h->path : std::string("/"));
}

int OpRelease(const char*, struct fuse_file_info* fi) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  Handle* h = H(fi);
  if (!h) return 0;
  Status s = h->file.Close();
  if (!s.ok()) v->Log(h->path + ": could not write back on close: " + s.message());
  v->handles_.erase(h);
  delete h;
  return 0;
}

int OpStatfs(const char*, struct statvfs* st) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  const fs::FsInfo& info = v->fs_->info();
  auto used = v->fs_->BlocksInUse();
  if (!used.ok()) return v->Errno(used.status(), "/");
  std::memset(st, 0, sizeof *st);
  st->f_bsize = st->f_frsize = info.block_size;
  st->f_blocks = info.block_count;
  st->f_bfree = st->f_bavail = info.block_count > *used ? info.block_count - *used : 0;
  st->f_namemax = info.name_max;
  if (v->opts_.read_only) st->f_flag |= ST_RDONLY;
  return 0;
}

// littlefs keeps no times: accepted (touch works) and not stored.
int OpUtimens(const char* path, const struct timespec[2], struct fuse_file_info*) {
  VolumeFs* v = Vfs();
  std::lock_guard lock(v->mu_);
  if (int e = v->Writable()) return e;
  if (int e = v->CheckPath(path)) return e;
  if (std::strcmp(path, "/") == 0) return 0;
  auto info = v->fs_->Stat(path);
  return info.ok() ? 0 : v->Errno(info.status(), path);
}

void* OpInit(struct fuse_conn_info*, struct fuse_config* cfg) {
  cfg->use_ino = 0;
  cfg->kernel_cache = 0;
  cfg->attr_timeout = 1.0;
  cfg->entry_timeout = 1.0;
  cfg->negative_timeout = 0;
  cfg->hard_remove = 0;  // unlink of an open file renames it until the last close
  return fuse_get_context()->private_data;
}

void OpDestroy(void* data) {
  auto* v = static_cast<VolumeFs*>(data);
  std::lock_guard lock(v->mu_);
  v->final_status_ = v->Shutdown();
  if (!v->final_status_.ok()) v->Log("final commit at unmount failed: " + v->final_status_.message());
}

}  // namespace

Status RunVolumeMount(const VolumeMountOptions& options, std::unique_ptr<BlockDevice> device,
                      const fs::Config& config) {
  auto v = std::make_unique<VolumeFs>(options, std::move(device));
  COFFER_RETURN_IF_ERROR(v->Mount(config));
  static const struct fuse_operations ops = [] {
    struct fuse_operations x {};
    x.getattr = OpGetattr;
    x.readdir = OpReaddir;
    x.mkdir = OpMkdir;
    x.rmdir = OpRmdir;
    x.unlink = OpUnlink;
    x.rename = OpRename;
    x.open = OpOpen;
    x.create = OpCreate;
    x.read = OpRead;
    x.write = OpWrite;
    x.truncate = OpTruncate;
    x.flush = OpFlush;
    x.fsync = OpFsync;
    x.release = OpRelease;
    x.statfs = OpStatfs;
    x.utimens = OpUtimens;
    x.init = OpInit;
    x.destroy = OpDestroy;
    return x;
  }();
  FuseRunOptions run;
  run.mountpoint = options.mountpoint;
  run.fsname = "coffer-volume";
  run.read_only = options.read_only;
  run.foreground = options.foreground;
  run.debug = options.debug;
  Status s = RunFuse(run, ops, v.get());
  if (!s.ok()) {
    (void)v->Shutdown();  // never mounted or the loop failed: still close and commit
    return s;
  }
  return v->final_status_;
}

}  // namespace coffer::fuse
