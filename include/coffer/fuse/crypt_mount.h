// FUSE (libfuse3) mount of an rclone crypt folder: a decrypted, read-write view whose writes
// land encrypted (rclone-compatible) in the encrypted folder. Reads authenticate every 64 KiB
// chunk; integrity failures are EIO and logged. Files opened for writing are held decrypted in
// memory and re-encrypted with a fresh nonce to a temp file + rename on flush/close. If the folder
// has a coffer manifest it is checked at mount, each file's hash is checked when it is opened, and
// the manifest is rewritten at unmount. RunCryptMount blocks until unmounted (SIGTERM/SIGINT or
// `coffer umount`). One mount per call; internally thread-safe (multi-threaded FUSE loop).
#pragma once

#include <functional>
#include <string>

#include "coffer/base/status.h"
#include "coffer/fuse/fuse_runner.h"
#include "coffer/rclone/file_cipher.h"
#include "coffer/rclone/keys.h"
#include "coffer/rclone/name_cipher.h"

namespace coffer::fuse {

struct CryptMountOptions {
  std::string encrypted_dir;
  std::string mountpoint;
  bool read_only = false;
  bool foreground = true;   // false: daemonize after the mount succeeded
  bool manifest = false;    // require a manifest (checked anyway when present)
  std::string state_file;   // anchor state for the manifest ("" = default)
  bool debug = false;
};

// Mounts and serves until unmounted. Returns OK after a clean unmount.
Status RunCryptMount(const CryptMountOptions& options, const rclone::RcloneKeys& keys,
                     const rclone::NameOptions& names);

}  // namespace coffer::fuse
