// Device options shared by every command that runs a filesystem on a device: `--image PATH` (a plain
// littlefs image file) or `--volume SPEC --key KEYSPEC` (a sealed volume), plus the littlefs geometry
// options. OpenFsDevice turns them into a BlockDevice and an fs::Config; MountedFs keeps the device
// alive for as long as the Filesystem mounted on it. Single-threaded, like the commands using them.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "coffer/base/status.h"
#include "coffer/blockdev/block_device.h"
#include "coffer/fs/filesystem.h"

namespace coffer::cli {

struct DeviceOptions {
  std::string image;    // --image PATH
  std::string volume;   // --volume SPEC
  std::string key;      // --key KEYSPEC
  std::string anchor;   // --anchor PATH or tpm2:nv=... (empty: the KEYSPEC's default)
  uint32_t block_size = 0, block_count = 0;  // 0: from the superblock / the file / the volume
  uint32_t read_size = 0, prog_size = 0, cache_size = 0, lookahead_size = 0;
  int32_t block_cycles = 500;
  std::string disk_version = "2.1";  // format/pack only
};

enum class DeviceUse {
  kReadOnly,   // read an existing filesystem (image opened read-only)
  kReadWrite,  // change an existing filesystem
  kFormat,     // make a new filesystem (image created when missing; --block-size needed for a new one)
};

// Adds --image/--volume/--key and the geometry options to `cmd`. Format-style commands also get
// --disk-version and mandatory-when-new --block-size/--block-count.
void AddDeviceOptions(CLI::App& cmd, DeviceOptions& options, DeviceUse use);

struct FsDevice {
  std::unique_ptr<BlockDevice> device;
  fs::Config config;
  std::string description;  // "image /path (256 x 16384)" for messages
};

// OK if the options name exactly one device (--image, or --volume with --key) and a known disk
// version; otherwise a usage error (the caller exits 2).
Status CheckDeviceOptions(const DeviceOptions& options);

// Opens the device the options name. For kFormat on an image, `create_path` (if non-empty) is the
// file actually created (pack writes a temporary file and renames it at the end).
Result<FsDevice> OpenFsDevice(const DeviceOptions& options, DeviceUse use,
                              const std::string& create_path = {});

// A mounted filesystem and the device under it (the filesystem is destroyed first).
struct MountedFs {
  FsDevice dev;
  std::unique_ptr<fs::Filesystem> fs;
  ~MountedFs() { fs.reset(); }
  MountedFs() = default;
  MountedFs(MountedFs&&) = default;
  MountedFs& operator=(MountedFs&&) = default;
};
Result<std::unique_ptr<MountedFs>> MountFs(const DeviceOptions& options, DeviceUse use);

// Geometry defaults for a plain image with `block_size` when --read-size/--prog-size are not given:
// blocks up to 512 bytes use read = prog = block (the remote-disk sample), larger blocks are NOR flash
// with 16-byte read/prog (ESP32 and friends).
uint32_t DefaultIoSize(uint32_t block_size);

// A hint naming the likely fix for filesystem errors (not a littlefs image, damaged image, ...).
std::string FsHint(const Status& status);

}  // namespace coffer::cli
