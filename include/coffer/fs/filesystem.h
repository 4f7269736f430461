// coffer's littlefs: our own implementation of the littlefs v2 on-disk format (disk versions 2.0
// and 2.1), written from littlefs's SPEC.md, running on any BlockDevice (a plain image or a sealed
// volume). The API mirrors lfs.h: a Filesystem is mounted on a device it does not own (the device
// must outlive it); File and Dir handles belong to the Filesystem that opened them and must be closed
// (or destroyed) before it unmounts. Not thread-safe: one thread at a time per Filesystem.
// Errors: kNotFound (no such entry), kAlreadyExists, kNoSpace, kInvalidArgument (bad path, name
// too long), kFailedPrecondition (not empty, is a dir / not a dir), kCorrupt (structure broken:
// bad CRC in committed metadata, impossible pointers), kDataLoss (the device failed authentication;
// passed through untouched), kIoError.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "coffer/base/status.h"
#include "coffer/blockdev/block_device.h"

namespace coffer::fs {

enum class DiskVersion : uint32_t { k2_0 = 0x00020000, k2_1 = 0x00020001 };

// The littlefs configuration (lfs_config minus the callbacks, which are the BlockDevice).
// Zero means "take it from the device geometry / superblock / littlefs default".
struct Config {
  uint32_t read_size = 0;
  uint32_t prog_size = 0;
  uint32_t block_size = 0;
  uint32_t block_count = 0;      // 0 on mount: read from the superblock
  int32_t block_cycles = 500;    // -1 disables wear levelling
  uint32_t cache_size = 0;       // default: max(read, prog) (must divide block_size)
  uint32_t lookahead_size = 0;   // bytes of lookahead bitmap; default 16
  uint32_t name_max = 0;         // default 255
  uint32_t file_max = 0;         // default 2147483647
  uint32_t attr_max = 0;         // default 1022
  uint32_t metadata_max = 0;     // default block_size
  uint32_t inline_max = 0;       // 0: littlefs default min(cache, attr_max, block/8) (also v2.4's rule);
                                 // UINT32_MAX: no inline files
  // block_size may be a multiple of the device's erase block (each fs block erases several).
  // A device kCorrupt from Prog/Erase means "bad block" (relocated); other device errors,
  // notably kDataLoss, are returned as they are.
  DiskVersion disk_version = DiskVersion::k2_1;  // used by Format only; Mount keeps the disk's
};

enum OpenFlags : uint32_t {
  kRdOnly = 1,
  kWrOnly = 2,
  kRdWr = 3,
  kCreat = 0x0100,
  kExcl = 0x0200,
  kTrunc = 0x0400,
  kAppend = 0x0800,
};

enum class Whence { kSet, kCur, kEnd };
enum class EntryType : uint8_t { kFile = 1, kDir = 2 };

struct EntryInfo {
  EntryType type;
  uint32_t size;  // files only
  std::string name;
};

struct FsInfo {  // the superblock, as mounted
  DiskVersion disk_version;
  uint32_t block_size, block_count, name_max, file_max, attr_max;
};

class Filesystem;

class File {
 public:
  ~File();  // closes (and syncs) if still open; errors are lost: call Close() to see them
  File(File&&) noexcept;
  File& operator=(File&&) noexcept;

  Result<size_t> Read(std::span<uint8_t> out);         // short read at end of file
  Result<size_t> Write(std::span<const uint8_t> data);
  Result<uint32_t> Seek(int64_t offset, Whence whence);  // new position
  uint32_t Tell() const;
  Result<uint32_t> Size() const;
  Status Truncate(uint32_t size);
  Status Sync();   // durable on the device (calls BlockDevice::Sync)
  Status Close();  // sync + release

 private:
  friend class Filesystem;
  struct Impl;
  explicit File(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Dir {
 public:
  ~Dir();
  Dir(Dir&&) noexcept;
  Dir& operator=(Dir&&) noexcept;
  // Next entry (including "." and ".." as littlefs does), or nullopt at the end.
  Result<std::optional<EntryInfo>> Read();
  Status Seek(uint32_t offset);
  uint32_t Tell() const;
  Status Rewind();

 private:
  friend class Filesystem;
  struct Impl;
  explicit Dir(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Filesystem {
 public:
  // Writes an empty filesystem of config.disk_version (2.1 by default, 2.0 for old devices).
  static Status Format(BlockDevice& device, const Config& config);
  // Mounts; the disk keeps its own version (a 2.0 disk is never upgraded). An interrupted
  // rename found at mount is completed (one commit) so reads see every entry.
  static Result<std::unique_ptr<Filesystem>> Mount(BlockDevice& device, const Config& config);
  // Reads the superblock of an image without mounting (geometry discovery for --image).
  // Tries the given block_size, or every power of two from 128 to 1 MiB when 0.
  static Result<FsInfo> Probe(BlockDevice& device, uint32_t block_size = 0);
  ~Filesystem();  // unmounts

  Status Unmount();
  const FsInfo& info() const;

  Result<File> Open(const std::string& path, uint32_t flags);
  Result<Dir> OpenDir(const std::string& path);
  Status Mkdir(const std::string& path);
  Status Remove(const std::string& path);  // file, or empty dir
  Status Rename(const std::string& from, const std::string& to);
  Result<EntryInfo> Stat(const std::string& path);

  // Custom attributes (type 0..255), as lfs_getattr/setattr/removeattr.
  Result<std::vector<uint8_t>> GetAttr(const std::string& path, uint8_t type);
  Status SetAttr(const std::string& path, uint8_t type, std::span<const uint8_t> value);
  Status RemoveAttr(const std::string& path, uint8_t type);

  Result<uint32_t> BlocksInUse();  // lfs_fs_size
  Status Traverse(const std::function<Status(uint32_t block)>& visit);
  Status MakeConsistent();         // lfs_fs_mkconsistent
  Status GarbageCollect();         // lfs_fs_gc
  Status Grow(uint32_t block_count);  // lfs_fs_grow

 private:
  struct Impl;
  explicit Filesystem(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::fs
