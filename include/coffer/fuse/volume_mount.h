// FUSE (libfuse3) mount of a littlefs filesystem on a BlockDevice (a sealed volume, local or
// remote, or a plain image): a read-write POSIX view. littlefs is single-threaded, so every request
// takes one mutex. Durability: every littlefs metadata commit calls the device's Sync, which for a
// sealed volume is its commit point; the mount commits on create/mkdir/rename/unlink/rmdir/truncate,
// on flush (close) and fsync of a written file, and at unmount; data written and closed survives a
// crash. Integrity failures (kDataLoss) are EIO for the caller and logged (syslog, stderr).
// RunVolumeMount blocks until unmounted (SIGTERM/SIGINT or `coffer umount`).
#pragma once

#include <memory>
#include <string>

#include "coffer/base/status.h"
#include "coffer/blockdev/block_device.h"
#include "coffer/fs/filesystem.h"
#include "coffer/fuse/fuse_runner.h"

namespace coffer::fuse {

struct VolumeMountOptions {
  std::string mountpoint;
  std::string description;  // "volume file:disk.vol" for messages
  bool read_only = false;   // EROFS for every change; nothing is committed
  bool foreground = true;   // false: go to the background once mounted
  bool debug = false;
};

// Mounts littlefs on `device` with `config` (errors such as "not formatted" or kDataLoss are
// returned before anything is mounted), then serves FUSE until unmounted. The filesystem is
// unmounted and the device synced (committed) before this returns.
Status RunVolumeMount(const VolumeMountOptions& options, std::unique_ptr<BlockDevice> device,
                      const fs::Config& config);

}  // namespace coffer::fuse
