// Internal engine of coffer's littlefs: metadata pairs, commits, CTZ lists, gstate, allocator.
// Works with littlefs-style negative error codes internally (cheap to pass through the deep call
// chains of commit/relocate); filesystem.cc maps them to Status at the API edge. A device failure
// other than "bad block" (kCorrupt from the device) is kept in device_status() and reported as
// kErrDevice so kDataLoss etc. reach the caller untouched. Not thread-safe; owned by Filesystem.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "coffer/base/status.h"
#include "coffer/blockdev/block_device.h"
#include "coffer/fs/filesystem.h"

namespace coffer::fs::internal {

enum : int {
  kErrOk = 0,
  kErrIo = -5,
  kErrCorrupt = -84,
  kErrNoEnt = -2,
  kErrExist = -17,
  kErrNotDir = -20,
  kErrIsDir = -21,
  kErrNotEmpty = -39,
  kErrBadF = -9,
  kErrFBig = -27,
  kErrInval = -22,
  kErrNoSpc = -28,
  kErrNoMem = -12,
  kErrNoAttr = -61,
  kErrNameTooLong = -36,
  kErrDevice = -1000,  // see Core::device_status()
};

using Tag = uint32_t;
using STag = int32_t;
constexpr uint32_t kBlockNull = 0xffffffff;
constexpr uint32_t kBlockInline = 0xfffffffe;

struct Cache {
  uint32_t block = kBlockNull;
  uint32_t off = 0;
  uint32_t size = 0;
  std::vector<uint8_t> buffer;
};

struct MDir {
  uint32_t pair[2] = {0, 0};
  uint32_t rev = 0;
  uint32_t off = 0;
  uint32_t etag = 0;
  uint16_t count = 0;
  bool erased = false;
  bool split = false;
  uint32_t tail[2] = {0, 0};
};

struct GState {
  uint32_t tag = 0;
  uint32_t pair[2] = {0, 0};
};

// Open handles live on an intrusive list so commits can fix them up (as lfs_mlist).
struct MList {
  MList* next = nullptr;
  uint16_t id = 0;
  uint8_t type = 0;  // 1 = file, 2 = dir, 0 = temporary
  MDir m;
};

struct Ctz {
  uint32_t head = 0;
  uint32_t size = 0;
};

struct FileState : MList {
  Ctz ctz;
  uint32_t flags = 0;
  uint32_t pos = 0;
  uint32_t block = 0;
  uint32_t off = 0;
  Cache cache;
};

struct DirState : MList {
  uint32_t pos = 0;
  uint32_t head[2] = {0, 0};
};

struct Info {
  uint8_t type = 0;
  uint32_t size = 0;
  std::string name;
};

struct MAttr {
  Tag tag;
  const void* buffer;
};

class Core {
 public:
  Core(BlockDevice& device, const Config& config);

  // Validates config and sets derived values; returns kErrInval with reason in device_status().
  int Init(bool for_format);
  int Format();
  int Mount();

  int FileOpen(FileState* file, const char* path, uint32_t flags);
  int FileClose(FileState* file);
  int FileSync(FileState* file);
  int32_t FileRead(FileState* file, uint8_t* buffer, uint32_t size);
  int32_t FileWrite(FileState* file, const uint8_t* buffer, uint32_t size);
  int64_t FileSeek(FileState* file, int64_t off, Whence whence);
  int FileTruncate(FileState* file, uint32_t size);
  uint32_t FileSize(const FileState* file) const;

  int DirOpen(DirState* dir, const char* path);
  int DirClose(DirState* dir);
  int DirRead(DirState* dir, Info* info);  // 1 = entry, 0 = end
  int DirSeek(DirState* dir, uint32_t off);
  int DirRewind(DirState* dir);

  int Mkdir(const char* path);
  int Remove(const char* path);
  int Rename(const char* oldpath, const char* newpath);
  int Stat(const char* path, Info* info);
  int32_t GetAttr(const char* path, uint8_t type, void* buffer, uint32_t size);
  int SetAttr(const char* path, uint8_t type, const void* buffer, uint32_t size);
  int RemoveAttr(const char* path, uint8_t type);

  int32_t FsSize();
  int FsTraverse(const std::function<int(uint32_t)>& cb, bool includeorphans);
  int MkConsistent();
  int Gc();
  int Grow(uint32_t block_count);

  const FsInfo& info() const { return info_; }
  const Status& device_status() const { return device_status_; }
  void set_error(Status s) { device_status_ = std::move(s); }
  uint32_t attr_max() const { return attr_max_; }
  uint32_t name_max() const { return name_max_; }
  uint32_t file_max() const { return file_max_; }
  bool IsOpen(const MList* node) const;
  // Syncs every open file and forgets all handles (unmount); returns the first error.
  int CloseAll();

 private:
  // Block device with caches (lfs_bd_*).
  int DevRead(uint32_t block, uint32_t off, uint8_t* data, uint32_t size);
  int DevProg(uint32_t block, uint32_t off, const uint8_t* data, uint32_t size);
  int DevErase(uint32_t block);
  int DevSync();
  int MapStatus(const Status& s);
  int BdRead(const Cache* pcache, Cache* rcache, uint32_t hint, uint32_t block, uint32_t off,
             void* buffer, uint32_t size);
  int BdCmp(const Cache* pcache, Cache* rcache, uint32_t hint, uint32_t block, uint32_t off,
            const void* buffer, uint32_t size);
  int BdCrc(const Cache* pcache, Cache* rcache, uint32_t hint, uint32_t block, uint32_t off,
            uint32_t size, uint32_t* crc);
  int BdFlush(Cache* pcache, Cache* rcache, bool validate);
  int BdSync(Cache* pcache, Cache* rcache, bool validate);
  int BdProg(Cache* pcache, Cache* rcache, bool validate, uint32_t block, uint32_t off,
             const void* buffer, uint32_t size);
  int BdErase(uint32_t block);
  void CacheDrop(Cache* c) { c->block = kBlockNull; }
  void CacheZero(Cache* c);

  // Allocator.
  void AllocCkpoint() { lookahead_ckpoint_ = block_count_; }
  void AllocDrop();
  int AllocScan();
  int Alloc(uint32_t* block);

  // Metadata.
  STag DirGetSlice(const MDir* dir, Tag gmask, Tag gtag, uint32_t goff, void* gbuffer,
                   uint32_t gsize);
  STag DirGet(const MDir* dir, Tag gmask, Tag gtag, void* buffer);
  int DirGetRead(const MDir* dir, const Cache* pcache, Cache* rcache, uint32_t hint, Tag gmask,
                 Tag gtag, uint32_t off, void* buffer, uint32_t size);
  using TraverseCb = std::function<int(Tag, const void*)>;
  int DirTraverse(const MDir* dir, uint32_t off, Tag ptag, const MAttr* attrs, int attrcount,
                  Tag tmask, Tag ttag, uint16_t begin, uint16_t end, int16_t diff,
                  const TraverseCb* cb, Tag* filtertag);
  STag DirFetchMatch(MDir* dir, const uint32_t pair[2], Tag fmask, Tag ftag, uint16_t* id,
                     const std::function<int(Tag, uint32_t, uint32_t)>* cb);
  int DirFetch(MDir* dir, const uint32_t pair[2]);
  int DirGetGState(const MDir* dir, GState* gstate);
  int DirGetInfo(MDir* dir, uint16_t id, Info* info);
  int FindMatch(const char* name, uint32_t size, Tag tag, uint32_t block, uint32_t off);
  STag DirFind(MDir* dir, const char** path, uint16_t* id);

  struct Commit {
    uint32_t block, off;
    Tag ptag;
    uint32_t crc;
    uint32_t begin, end;
  };
  int CommitProg(Commit* c, const void* buffer, uint32_t size);
  int CommitAttr(Commit* c, Tag tag, const void* buffer);
  int CommitCrc(Commit* c);
  int DirAlloc(MDir* dir);
  int DirDrop(MDir* dir, MDir* tail);
  int DirSplit(MDir* dir, const MAttr* attrs, int attrcount, MDir* source, uint16_t split,
               uint16_t end);
  bool DirNeedsRelocation(const MDir* dir) const;
  int DirCompact(MDir* dir, const MAttr* attrs, int attrcount, MDir* source, uint16_t begin,
                 uint16_t end);
  int DirSplittingCompact(MDir* dir, const MAttr* attrs, int attrcount, MDir* source,
                          uint16_t begin, uint16_t end);
  int DirRelocatingCommit(MDir* dir, const uint32_t pair[2], const MAttr* attrs, int attrcount,
                          MDir* pdir);
  int DirOrphaningCommit(MDir* dir, const MAttr* attrs, int attrcount);
  int DirCommit(MDir* dir, const MAttr* attrs, int attrcount);

  // CTZ skip-lists.
  int CtzIndex(uint32_t* off) const;
  int CtzFind(const Cache* pcache, Cache* rcache, uint32_t head, uint32_t size, uint32_t pos,
              uint32_t* block, uint32_t* off);
  int CtzExtend(Cache* pcache, Cache* rcache, uint32_t head, uint32_t size, uint32_t* block,
                uint32_t* off);
  int CtzTraverse(const Cache* pcache, Cache* rcache, uint32_t head, uint32_t size,
                  const std::function<int(uint32_t)>& cb);

  // Files.
  int FileRelocate(FileState* file);
  int FileOutline(FileState* file);
  int FileFlush(FileState* file);
  int32_t FileFlushedRead(FileState* file, uint8_t* buffer, uint32_t size);
  int32_t FileFlushedWrite(FileState* file, const uint8_t* buffer, uint32_t size);

  // Global state and repair.
  int FsPred(const uint32_t pair[2], MDir* pdir);
  STag FsParent(const uint32_t pair[2], MDir* parent);
  void PrepSuperblock(bool needs);
  int PrepOrphans(int8_t orphans);
  int PrepDirRemoval(MDir* parent, uint16_t id, MList* dir);
  int DropRemovedDir(MDir* pred, MList* dir);
  void PrepMove(uint16_t id, const uint32_t pair[2]);
  int DeSuperblock();
  int DeMove();
  int DeOrphan(bool powerloss);
  int ForceConsistency();

  void MlistRemove(MList* node);
  void MlistAppend(MList* node);
  bool Multiversion20() const { return disk_version_ < 0x00020001; }

  BlockDevice& device_;
  Config cfg_;
  Status device_status_;
  uint32_t block_size_ = 0, block_count_ = 0, read_size_ = 0, prog_size_ = 0, cache_size_ = 0;
  uint32_t lookahead_size_ = 0, metadata_max_ = 0;
  uint32_t name_max_ = 0, file_max_ = 0, attr_max_ = 0, inline_max_ = 0;
  int32_t block_cycles_ = 0;
  uint32_t disk_version_ = 0x00020001;
  Cache rcache_, pcache_;
  uint32_t root_[2] = {kBlockNull, kBlockNull};
  MList* mlist_ = nullptr;
  uint32_t seed_ = 0;
  GState gstate_, gdisk_, gdelta_;
  struct {
    uint32_t start = 0, size = 0, next = 0, ckpoint = 0;
    std::vector<uint8_t> buffer;
  } lookahead_;
  uint32_t& lookahead_ckpoint_ = lookahead_.ckpoint;
  FsInfo info_{};
  std::vector<uint8_t> devbuf_;
};

uint32_t Crc32(uint32_t crc, const void* buffer, size_t size);

}  // namespace coffer::fs::internal
