// FUSE plumbing shared by the crypt and volume mounts (see fuse_runner.h).
#define FUSE_USE_VERSION 35
#include "coffer/fuse/fuse_runner.h"

#include <fcntl.h>
#include <fuse.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>
#include <vector>

namespace coffer::fuse {
namespace {

// The lock a mount's process holds until its final write-back is done. Named after the mount
// point so `coffer umount` (another process) can find it; it holds nothing secret.
std::string LockPath(const std::string& mountpoint) {
  std::string canonical;
  char real[PATH_MAX];
  if (::realpath(mountpoint.c_str(), real)) {
    canonical = real;
  } else {  // a dead mount (ENOTCONN) cannot be resolved: fall back to the lexical form
    std::error_code ec;
    canonical = std::filesystem::absolute(mountpoint, ec).lexically_normal().string();
    while (canonical.size() > 1 && canonical.back() == '/') canonical.pop_back();
  }
  const char* dir = std::getenv("XDG_RUNTIME_DIR");
  struct stat st;
  std::string base = (dir && *dir && ::stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) ? dir : "/tmp";
  char name[64];
  std::snprintf(name, sizeof name, "/coffer-mount-%016zx.lock", std::hash<std::string>{}(canonical));
  return base + name;
}

// The sysfs readahead knob of the mount on `real_mountpoint` (an absolute, resolved path), found in
// /proc/self/mountinfo: stat() on the mount point would wait for the loop, which is not running yet.
std::string ReadAheadKnob(const std::string& real_mountpoint) {
  std::string want;  // mountinfo escapes space, tab, newline and backslash as \ooo
  for (char c : real_mountpoint) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\\') {
      char esc[5];
      std::snprintf(esc, sizeof esc, "\\%03o", unsigned(uint8_t(c)));
      want += esc;
    } else {
      want += c;
    }
  }
  FILE* mi = std::fopen("/proc/self/mountinfo", "re");
  if (!mi) return {};
  std::string dev;  // the last (topmost) mount on that path
  char line[4096];
  while (std::fgets(line, sizeof line, mi)) {
    char id_dev[64], root[PATH_MAX], point[PATH_MAX];
    unsigned id, parent;
    int n = std::sscanf(line, "%u %u %63s %4095s %4095s", &id, &parent, id_dev, root, point);
    if (n == 5 && want == point) dev = id_dev;
  }
  std::fclose(mi);
  return dev.empty() ? std::string() : "/sys/class/bdi/" + dev + "/read_ahead_kb";
}

void WriteReadAhead(const std::string& knob, unsigned kb) {
  int fd = ::open(knob.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return;  // not root: the kernel's default window stays
  std::string v = std::to_string(kb) + "\n";
  (void)!::write(fd, v.data(), v.size());
  ::close(fd);
}

}  // namespace

void LogMountError(const std::string& mountpoint, bool foreground, const std::string& message) {
  syslog(LOG_ERR, "coffer mount %s: %s", mountpoint.c_str(), message.c_str());
  if (foreground) std::fprintf(stderr, "coffer: mount: %s\n", message.c_str());
}

int StatusToErrno(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kNotFound: return -ENOENT;
    case StatusCode::kAlreadyExists: return -EEXIST;
    case StatusCode::kPermissionDenied: return -EACCES;
    case StatusCode::kNoSpace: return -ENOSPC;
    case StatusCode::kInvalidArgument: return -EINVAL;
    case StatusCode::kOutOfRange: return -EFBIG;
    case StatusCode::kUnsupported: return -EOPNOTSUPP;
    case StatusCode::kUnavailable: return -EAGAIN;
    default: return -EIO;  // kDataLoss, kCorrupt, kIoError...
  }
}

Status RunFuse(const FuseRunOptions& o, const struct fuse_operations& ops, void* private_data) {
  struct stat st;
  if (::stat(o.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return NotFound("mount point " + o.mountpoint + " does not exist or is not a folder");
  if (::access("/dev/fuse", R_OK | W_OK) != 0)
    return FailedPrecondition("/dev/fuse is not usable: " + std::string(std::strerror(errno)));
  const std::string lock_path = LockPath(o.mountpoint);

  std::vector<std::string> argv_s = {"coffer", "-o", "fsname=" + o.fsname, "-o", "subtype=coffer",
                                     "-o", "default_permissions"};
  if (o.read_only) { argv_s.push_back("-o"); argv_s.push_back("ro"); }
  if (o.max_read > 0) { argv_s.push_back("-o"); argv_s.push_back("max_read=" + std::to_string(o.max_read)); }
  if (o.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  struct fuse_args args = FUSE_ARGS_INIT(int(argv.size()), argv.data());
  struct fuse* f = fuse_new(&args, &ops, sizeof ops, private_data);
  if (!f) return Internal("fuse_new failed (bad mount options?)");
  std::string ra_knob, ra_path;
  if (o.read_ahead_kb > 0) {  // resolved before mounting: afterwards the path leads into the mount
    char real[PATH_MAX];
    if (::realpath(o.mountpoint.c_str(), real)) ra_path = real;
  }
  if (fuse_mount(f, o.mountpoint.c_str()) != 0) {
    fuse_destroy(f);
    return IoError("could not mount on " + o.mountpoint + " (already mounted? see the messages above)");
  }
  if (!ra_path.empty()) ra_knob = ReadAheadKnob(ra_path);
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (lock_fd >= 0 && ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    lock_fd = -1;
  }
  auto release_lock = [&] {
    if (lock_fd < 0) return;
    ::unlink(lock_path.c_str());
    ::close(lock_fd);
  };
  struct fuse_session* se = fuse_get_session(f);
  if (fuse_set_signal_handlers(se) != 0) {
    fuse_unmount(f);
    fuse_destroy(f);
    release_lock();
    return Internal("could not install signal handlers");
  }
  if (!o.foreground) {
    int cwd = ::open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fuse_daemonize(0) != 0) {
      fuse_remove_signal_handlers(se);
      fuse_unmount(f);
      fuse_destroy(f);
      release_lock();
      if (cwd >= 0) ::close(cwd);
      return Internal("could not go to the background");
    }
    // fuse_daemonize moved us to "/": come back so relative volume, key and anchor paths work.
    if (cwd >= 0) {
      if (::fchdir(cwd) != 0) LogMountError(o.mountpoint, false, "could not keep the working directory");
      ::close(cwd);
    }
  }
  // The kernel sets the window from the INIT reply, so it is widened only once INIT is done: this
  // thread's stat() of the mount root is answered after it (or fails once unmounted).
  std::thread ra_thread;
  if (!ra_knob.empty()) {
    ra_thread = std::thread([ra_path, ra_knob, kb = o.read_ahead_kb] {
      struct stat root;
      if (::stat(ra_path.c_str(), &root) == 0) WriteReadAhead(ra_knob, kb);
    });
  }
  int rc;
  if (o.max_threads <= 1) {
    rc = fuse_loop(f);
  } else {
    // At FUSE_USE_VERSION 35 fuse_loop_mt is fuse_loop_mt_32, which reads its argument as this
    // public (v1) struct. Passing it fuse_loop_cfg_create()'s private v2 struct instead, as this
    // code once did, made libfuse read max_idle_threads = 0: a new thread for every request (one
    // clone + stack munmap per 128 KiB read, a quarter of the mount's read profile). The thread
    // limit is libfuse's default (10).
    struct fuse_loop_config cfg {};
    cfg.clone_fd = 0;
    cfg.max_idle_threads = unsigned(o.max_threads);  // no thread churn per request
    rc = fuse_loop_mt(f, &cfg);
  }
  fuse_remove_signal_handlers(se);
  fuse_unmount(f);
  if (ra_thread.joinable()) ra_thread.join();
  fuse_destroy(f);  // runs the destroy operation: final write-back
  release_lock();
  if (rc < 0) return IoError("FUSE loop ended with error " + std::string(std::strerror(-rc)));
  return Status::Ok();
}

Status Unmount(const std::string& mountpoint, int wait_seconds) {
  const std::string lock_path = LockPath(mountpoint);
  if (::umount2(mountpoint.c_str(), 0) != 0) {
    int err = errno;
    if (err == EINVAL) return InvalidArgument(mountpoint + " is not a mount point");
    if (err == EBUSY) return ErrnoStatus("unmount " + mountpoint + " (a process still uses it)", err);
    pid_t pid = fork();
    if (pid == 0) {
      execlp("fusermount3", "fusermount3", "-u", mountpoint.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      return ErrnoStatus("unmount " + mountpoint, err);
  }
  // Wait for the mount's process to release its lock (after its final commit).
  int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return Status::Ok();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  Status result = Status::Ok();
  while (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      result = Unavailable("unmounted " + mountpoint + ", but its process has not finished writing back after " +
                           std::to_string(wait_seconds) + " s");
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(fd);
  return result;
}

}  // namespace coffer::fuse
