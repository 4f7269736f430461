// The FUSE (libfuse3) plumbing every coffer mount shares: mount, signal handlers (SIGTERM/SIGINT/
// SIGHUP unmount cleanly), optional daemonising once mounted, the request loop, and a per-mount
// lock that `coffer umount` waits on so it returns only after the mount's process has finished its
// final write-back. One RunFuse call per mount; the operations' private data must be thread-safe
// (the loop is multi-threaded unless max_threads == 1).
#pragma once

#include <string>

#include "coffer/base/status.h"

struct fuse_operations;  // <fuse.h>, FUSE_USE_VERSION 35

namespace coffer::fuse {

struct FuseRunOptions {
  std::string mountpoint;
  std::string fsname;        // shown in /proc/mounts ("coffer-crypt", "coffer-volume")
  bool read_only = false;    // adds -o ro (the operations refuse changes themselves too)
  bool foreground = true;    // false: go to the background once the mount is up
  bool debug = false;        // libfuse's -d (every request on stderr)
  int max_threads = 8;       // 1: single-threaded loop; else idle threads kept (no thread per request)
  // Streaming reads (0 = the kernel's defaults). read_ahead_kb sets the mount's readahead window
  // (/sys/class/bdi/<dev>/read_ahead_kb; needs root, silently kept otherwise) and max_read caps each
  // read request, so a large window arrives as several requests served at once by the loop's threads.
  unsigned read_ahead_kb = 0;
  unsigned max_read = 0;
};

// Checks the mount point and /dev/fuse, mounts `ops` with `private_data`, serves until unmounted
// (SIGTERM/SIGINT/SIGHUP, `coffer umount`, fusermount3 -u) and returns after the destroy operation
// ran. With foreground == false the calling process returns only in the background child (the
// parent exits 0 once mounted). The working directory is kept across daemonising so relative
// paths the operations hold stay valid.
Status RunFuse(const FuseRunOptions& options, const struct fuse_operations& ops, void* private_data);

// Unmounts a coffer FUSE mount point (umount2, falling back to fusermount3 -u), then waits (up to
// `wait_seconds`) for the mount's process to finish its final write-back.
Status Unmount(const std::string& mountpoint, int wait_seconds = 120);

// Maps a Status to a negative errno for FUSE replies (kDataLoss, kCorrupt -> -EIO).
int StatusToErrno(const Status& s);

// Writes an error line to syslog (LOG_ERR) and, for foreground mounts, to stderr.
void LogMountError(const std::string& mountpoint, bool foreground, const std::string& message);

}  // namespace coffer::fuse
