// coffer's littlefs engine. The algorithms follow littlefs's SPEC.md/DESIGN.md (and the reference
// implementation's behaviour, so that images and I/O patterns match): metadata pairs are logs of
// XOR-chained big-endian tags closed by CRC commits, files are inline or CTZ skip-lists, global
// state (moves, orphans) is the XOR of per-pair deltas.
#include "fs/lfs_core.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace coffer::fs::internal {
namespace {

// Tag types (SPEC.md "Metadata tags").
enum : uint16_t {
  kTypeReg = 0x001,
  kTypeDir = 0x002,
  kTypeSplice = 0x400,
  kTypeName = 0x000,
  kTypeStruct = 0x200,
  kTypeUserAttr = 0x300,
  kTypeFrom = 0x100,
  kTypeTail = 0x600,
  kTypeGlobals = 0x700,
  kTypeCrc = 0x500,
  kTypeCreate = 0x401,
  kTypeDelete = 0x4ff,
  kTypeSuperblock = 0x0ff,
  kTypeDirStruct = 0x200,
  kTypeCtzStruct = 0x202,
  kTypeInlineStruct = 0x201,
  kTypeSoftTail = 0x600,
  kTypeHardTail = 0x601,
  kTypeMoveState = 0x7ff,
  kTypeCcrc = 0x500,
  kTypeFcrc = 0x5ff,
  kFromNoop = 0x000,
  kFromMove = 0x101,
};

// Internal file flags (beyond the open flags).
enum : uint32_t {
  kFDirty = 0x010000,
  kFWriting = 0x020000,
  kFReading = 0x040000,
  kFErred = 0x080000,
  kFInline = 0x100000,
};

enum { kOkRelocated = 1, kOkDropped = 2, kOkOrphaned = 3 };
enum { kCmpEq = 0, kCmpLt = 1, kCmpGt = 2 };

constexpr Tag MkTag(uint32_t type, uint32_t id, uint32_t size) {
  return (type << 20) | (id << 10) | size;
}
constexpr Tag MkTagIf(bool cond, uint32_t type, uint32_t id, uint32_t size) {
  return cond ? MkTag(type, id, size) : MkTag(kFromNoop, 0, 0);
}
inline bool TagIsValid(Tag t) { return !(t & 0x80000000); }
inline bool TagIsDelete(Tag t) { return (int32_t(t << 22) >> 22) == -1; }
inline uint16_t TagType1(Tag t) { return (t & 0x70000000) >> 20; }
inline uint16_t TagType2(Tag t) { return (t & 0x78000000) >> 20; }
inline uint16_t TagType3(Tag t) { return (t & 0x7ff00000) >> 20; }
inline uint8_t TagChunk(Tag t) { return (t & 0x0ff00000) >> 20; }
inline int8_t TagSplice(Tag t) { return int8_t(TagChunk(t)); }
inline uint16_t TagId(Tag t) { return (t & 0x000ffc00) >> 10; }
inline uint32_t TagSize(Tag t) { return t & 0x000003ff; }
inline uint32_t TagDsize(Tag t) { return 4 + TagSize(t + TagIsDelete(t)); }
// A splice tag's signed id step, as it adds into a tag's id field (MKTAG(0, splice, 0)).
inline uint32_t SpliceDelta(Tag t) { return uint32_t(int32_t(TagSplice(t))) << 10; }

inline uint32_t Min(uint32_t a, uint32_t b) { return a < b ? a : b; }
inline uint32_t Max(uint32_t a, uint32_t b) { return a > b ? a : b; }
inline uint32_t AlignDown(uint32_t a, uint32_t al) { return a - (a % al); }
inline uint32_t AlignUp(uint32_t a, uint32_t al) { return AlignDown(a + al - 1, al); }
inline uint32_t Npw2(uint32_t a) { return a <= 1 ? 0 : 32 - __builtin_clz(a - 1); }
inline uint32_t Ctz32(uint32_t a) { return a ? __builtin_ctz(a) : 32; }
inline uint32_t Popc(uint32_t a) { return __builtin_popcount(a); }
inline int Scmp(uint32_t a, uint32_t b) { return int(unsigned(a - b)); }

inline uint32_t GetLe32(const void* p) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}
inline void PutLe32(void* p, uint32_t v) {
  uint8_t* b = static_cast<uint8_t*>(p);
  b[0] = v; b[1] = v >> 8; b[2] = v >> 16; b[3] = v >> 24;
}
inline uint32_t GetBe32(const void* p) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  return uint32_t(b[3]) | uint32_t(b[2]) << 8 | uint32_t(b[1]) << 16 | uint32_t(b[0]) << 24;
}
inline void PutBe32(void* p, uint32_t v) {
  uint8_t* b = static_cast<uint8_t*>(p);
  b[3] = v; b[2] = v >> 8; b[1] = v >> 16; b[0] = v >> 24;
}

// A block pair encoded little-endian for commit buffers.
struct LePair {
  uint8_t b[8];
  explicit LePair(const uint32_t p[2]) { PutLe32(b, p[0]); PutLe32(b + 4, p[1]); }
};

inline bool PairIsNull(const uint32_t p[2]) { return p[0] == kBlockNull || p[1] == kBlockNull; }
inline int PairCmp(const uint32_t a[2], const uint32_t b[2]) {
  return !(a[0] == b[0] || a[1] == b[1] || a[0] == b[1] || a[1] == b[0]);
}
inline bool PairIsSync(const uint32_t a[2], const uint32_t b[2]) {
  return (a[0] == b[0] && a[1] == b[1]) || (a[0] == b[1] && a[1] == b[0]);
}
inline void PairSwap(uint32_t p[2]) { std::swap(p[0], p[1]); }

inline void GXor(GState* a, const GState* b) {
  a->tag ^= b->tag; a->pair[0] ^= b->pair[0]; a->pair[1] ^= b->pair[1];
}
inline bool GIsZero(const GState* a) { return a->tag == 0 && a->pair[0] == 0 && a->pair[1] == 0; }
inline bool GHasOrphans(const GState* a) { return TagSize(a->tag); }
inline uint8_t GGetOrphans(const GState* a) { return TagSize(a->tag) & 0x1ff; }
inline bool GHasMove(const GState* a) { return TagType1(a->tag); }
inline bool GNeedsSuperblock(const GState* a) { return TagSize(a->tag) >> 9; }
inline bool GHasMoveHere(const GState* a, const uint32_t* pair) {
  return TagType1(a->tag) && PairCmp(a->pair, pair) == 0;
}
void GToLe(const GState& g, uint8_t out[12]) {
  PutLe32(out, g.tag); PutLe32(out + 4, g.pair[0]); PutLe32(out + 8, g.pair[1]);
}

// Brent's cycle detection over tail lists (a hostile image must not loop forever).
struct Tortoise {
  uint32_t pair[2] = {kBlockNull, kBlockNull};
  uint32_t i = 1, period = 1;
  int Check(const MDir* dir) {
    if (PairIsSync(dir->tail, pair)) return kErrCorrupt;
    if (i == period) {
      pair[0] = dir->tail[0]; pair[1] = dir->tail[1];
      i = 0; period *= 2;
    }
    i += 1;
    return 0;
  }
};

struct SuperblockRaw {
  uint32_t version, block_size, block_count, name_max, file_max, attr_max;
  void ToLe(uint8_t out[24]) const {
    PutLe32(out, version); PutLe32(out + 4, block_size); PutLe32(out + 8, block_count);
    PutLe32(out + 12, name_max); PutLe32(out + 16, file_max); PutLe32(out + 20, attr_max);
  }
  void FromLe(const uint8_t in[24]) {
    version = GetLe32(in); block_size = GetLe32(in + 4); block_count = GetLe32(in + 8);
    name_max = GetLe32(in + 12); file_max = GetLe32(in + 16); attr_max = GetLe32(in + 20);
  }
};

constexpr uint32_t kNameMax = 255;
constexpr uint32_t kFileMax = 2147483647;
constexpr uint32_t kAttrMax = 1022;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0xedb88320 : c >> 1;
    t[i] = c;
  }
  return t;
}

}  // namespace

uint32_t Crc32(uint32_t crc, const void* buffer, size_t size) {
  static const std::array<uint32_t, 256> table = MakeCrcTable();
  const uint8_t* d = static_cast<const uint8_t*>(buffer);
  for (size_t i = 0; i < size; i++) crc = (crc >> 8) ^ table[(crc ^ d[i]) & 0xff];
  return crc;
}

Core::Core(BlockDevice& device, const Config& config) : device_(device), cfg_(config) {}

// ---------------------------------------------------------------------------------------------
// Device access (translates fs blocks onto device blocks when the sizes differ).

int Core::MapStatus(const Status& s) {
  device_status_ = s;
  if (s.code() == StatusCode::kCorrupt) return kErrCorrupt;  // device says: bad block
  return kErrDevice;
}

int Core::DevRead(uint32_t block, uint32_t off, uint8_t* data, uint32_t size) {
  const uint32_t dbs = device_.geometry().block_size;
  uint64_t addr = uint64_t(block) * block_size_ + off;
  while (size > 0) {
    uint32_t db = uint32_t(addr / dbs), doff = uint32_t(addr % dbs);
    uint32_t n = Min(size, dbs - doff);
    Status s = device_.Read(db, doff, std::span<uint8_t>(data, n));
    if (!s.ok()) return MapStatus(s);
    addr += n; data += n; size -= n;
  }
  return 0;
}

int Core::DevProg(uint32_t block, uint32_t off, const uint8_t* data, uint32_t size) {
  const uint32_t dbs = device_.geometry().block_size;
  uint64_t addr = uint64_t(block) * block_size_ + off;
  while (size > 0) {
    uint32_t db = uint32_t(addr / dbs), doff = uint32_t(addr % dbs);
    uint32_t n = Min(size, dbs - doff);
    Status s = device_.Prog(db, doff, std::span<const uint8_t>(data, n));
    if (!s.ok()) return MapStatus(s);
    addr += n; data += n; size -= n;
  }
  return 0;
}

int Core::DevErase(uint32_t block) {
  const BlockGeometry& g = device_.geometry();
  if (block_size_ % g.block_size != 0) {
    if (g.erase_value < 0) return 0;  // erase is a no-op on this device anyway
    device_status_ = InvalidArgument("fs block size is not a multiple of the device's erase unit");
    return kErrDevice;
  }
  uint32_t per = block_size_ / g.block_size;
  for (uint32_t i = 0; i < per; i++) {
    Status s = device_.Erase(block * per + i);
    if (!s.ok()) return MapStatus(s);
  }
  return 0;
}

int Core::DevSync() {
  Status s = device_.Sync();
  if (!s.ok()) return MapStatus(s);
  return 0;
}

void Core::CacheZero(Cache* c) {
  std::fill(c->buffer.begin(), c->buffer.end(), 0xff);
  c->block = kBlockNull;
}

int Core::BdRead(const Cache* pcache, Cache* rcache, uint32_t hint, uint32_t block, uint32_t off,
                 void* buffer, uint32_t size) {
  uint8_t* data = static_cast<uint8_t*>(buffer);
  if (uint64_t(off) + size > block_size_ || (block_count_ && block >= block_count_)) {
    return kErrCorrupt;
  }
  while (size > 0) {
    uint32_t diff = size;
    if (pcache && block == pcache->block && off < pcache->off + pcache->size) {
      if (off >= pcache->off) {
        diff = Min(diff, pcache->size - (off - pcache->off));
        std::memcpy(data, &pcache->buffer[off - pcache->off], diff);
        data += diff; off += diff; size -= diff;
        continue;
      }
      diff = Min(diff, pcache->off - off);
    }
    if (block == rcache->block && off < rcache->off + rcache->size) {
      if (off >= rcache->off) {
        diff = Min(diff, rcache->size - (off - rcache->off));
        std::memcpy(data, &rcache->buffer[off - rcache->off], diff);
        data += diff; off += diff; size -= diff;
        continue;
      }
      diff = Min(diff, rcache->off - off);
    }
    if (size >= hint && off % read_size_ == 0 && size >= read_size_) {
      diff = AlignDown(diff, read_size_);
      int err = DevRead(block, off, data, diff);
      if (err) return err;
      data += diff; off += diff; size -= diff;
      continue;
    }
    rcache->block = block;
    rcache->off = AlignDown(off, read_size_);
    rcache->size = Min(Min(AlignUp(off + hint, read_size_), block_size_) - rcache->off, cache_size_);
    int err = DevRead(rcache->block, rcache->off, rcache->buffer.data(), rcache->size);
    if (err) {
      rcache->block = kBlockNull;
      return err;
    }
  }
  return 0;
}

int Core::BdCmp(const Cache* pcache, Cache* rcache, uint32_t hint, uint32_t block, uint32_t off,
                const void* buffer, uint32_t size) {
  const uint8_t* data = static_cast<const uint8_t*>(buffer);
  uint32_t diff = 0;
  for (uint32_t i = 0; i < size; i += diff) {
    uint8_t dat[8];
    diff = Min(size - i, sizeof(dat));
    int err = BdRead(pcache, rcache, hint - i, block, off + i, dat, diff);
    if (err) return err;
    int res = std::memcmp(dat, data + i, diff);
    if (res) return res < 0 ? kCmpLt : kCmpGt;
  }
  return kCmpEq;
}

int Core::BdCrc(const Cache* pcache, Cache* rcache, uint32_t hint, uint32_t block, uint32_t off,
                uint32_t size, uint32_t* crc) {
  uint32_t diff = 0;
  for (uint32_t i = 0; i < size; i += diff) {
    uint8_t dat[8];
    diff = Min(size - i, sizeof(dat));
    int err = BdRead(pcache, rcache, hint - i, block, off + i, dat, diff);
    if (err) return err;
    *crc = Crc32(*crc, dat, diff);
  }
  return 0;
}

int Core::BdFlush(Cache* pcache, Cache* rcache, bool validate) {
  if (pcache->block != kBlockNull && pcache->block != kBlockInline) {
    uint32_t diff = AlignUp(pcache->size, prog_size_);
    int err = DevProg(pcache->block, pcache->off, pcache->buffer.data(), diff);
    if (err) return err;
    if (validate) {
      CacheDrop(rcache);
      int res = BdCmp(nullptr, rcache, diff, pcache->block, pcache->off, pcache->buffer.data(), diff);
      if (res < 0) return res;
      if (res != kCmpEq) return kErrCorrupt;
    }
    CacheZero(pcache);
  }
  return 0;
}

int Core::BdSync(Cache* pcache, Cache* rcache, bool validate) {
  CacheDrop(rcache);
  int err = BdFlush(pcache, rcache, validate);
  if (err) return err;
  return DevSync();
}

int Core::BdProg(Cache* pcache, Cache* rcache, bool validate, uint32_t block, uint32_t off,
                 const void* buffer, uint32_t size) {
  const uint8_t* data = static_cast<const uint8_t*>(buffer);
  if (block != kBlockInline && (block >= block_count_ || uint64_t(off) + size > block_size_)) {
    device_status_ = Internal("prog outside the filesystem");
    return kErrDevice;
  }
  while (size > 0) {
    if (block == pcache->block && off >= pcache->off && off < pcache->off + cache_size_) {
      uint32_t diff = Min(size, cache_size_ - (off - pcache->off));
      std::memcpy(&pcache->buffer[off - pcache->off], data, diff);
      data += diff; off += diff; size -= diff;
      pcache->size = Max(pcache->size, off - pcache->off);
      if (pcache->size == cache_size_) {
        int err = BdFlush(pcache, rcache, validate);
        if (err) return err;
      }
      continue;
    }
    // A cache still holding another block's bytes belongs to an operation that failed part way
    // (littlefs asserts here in debug builds and drops the bytes in release builds): drop them,
    // the aborted commit was never completed and its CRC will not validate.
    pcache->block = block;
    pcache->off = AlignDown(off, prog_size_);
    pcache->size = 0;
  }
  return 0;
}

int Core::BdErase(uint32_t block) {
  if (block >= block_count_) {
    device_status_ = Internal("erase outside the filesystem");
    return kErrDevice;
  }
  return DevErase(block);
}

// ---------------------------------------------------------------------------------------------
// Block allocator: a lookahead bitmap window over the disk, refilled by traversing the tree.

void Core::AllocDrop() {
  lookahead_.size = 0;
  lookahead_.next = 0;
  AllocCkpoint();
}

int Core::AllocScan() {
  lookahead_.start = (lookahead_.start + lookahead_.next) % block_count_;
  lookahead_.next = 0;
  lookahead_.size = Min(8 * lookahead_size_, lookahead_.ckpoint);
  std::fill(lookahead_.buffer.begin(), lookahead_.buffer.end(), 0);
  int err = FsTraverse(
      [this](uint32_t block) {
        uint32_t off = ((block - lookahead_.start) + block_count_) % block_count_;
        if (off < lookahead_.size) lookahead_.buffer[off / 8] |= 1U << (off % 8);
        return 0;
      },
      true);
  if (err) {
    AllocDrop();
    return err;
  }
  return 0;
}

int Core::Alloc(uint32_t* block) {
  while (true) {
    while (lookahead_.next < lookahead_.size) {
      if (!(lookahead_.buffer[lookahead_.next / 8] & (1U << (lookahead_.next % 8)))) {
        *block = (lookahead_.start + lookahead_.next) % block_count_;
        while (true) {
          lookahead_.next += 1;
          lookahead_.ckpoint -= 1;
          if (lookahead_.next >= lookahead_.size ||
              !(lookahead_.buffer[lookahead_.next / 8] & (1U << (lookahead_.next % 8)))) {
            return 0;
          }
        }
      }
      lookahead_.next += 1;
      lookahead_.ckpoint -= 1;
    }
    if (int32_t(lookahead_.ckpoint) <= 0) return kErrNoSpc;
    int err = AllocScan();
    if (err) return err;
  }
}

// ---------------------------------------------------------------------------------------------
// Metadata pairs.

STag Core::DirGetSlice(const MDir* dir, Tag gmask, Tag gtag, uint32_t goff, void* gbuffer,
                       uint32_t gsize) {
  uint32_t off = dir->off;
  Tag ntag = dir->etag;
  STag gdiff = 0;

  if (GHasMoveHere(&gdisk_, dir->pair) && TagId(gmask) != 0) {
    if (TagId(gdisk_.tag) == TagId(gtag)) {
      return kErrNoEnt;
    } else if (TagId(gdisk_.tag) < TagId(gtag)) {
      gdiff -= MkTag(0, 1, 0);
    }
  }

  while (off >= 4 + TagDsize(ntag)) {
    off -= TagDsize(ntag);
    Tag tag = ntag;
    uint8_t raw[4];
    int err = BdRead(nullptr, &rcache_, 4, dir->pair[0], off, raw, 4);
    if (err) return err;
    ntag = (GetBe32(raw) ^ tag) & 0x7fffffff;

    if (TagId(gmask) != 0 && TagType1(tag) == kTypeSplice && TagId(tag) <= TagId(gtag - gdiff)) {
      if (tag == (MkTag(kTypeCreate, 0, 0) | (MkTag(0, 0x3ff, 0) & (gtag - gdiff)))) {
        return kErrNoEnt;
      }
      gdiff += SpliceDelta(tag);
    }

    if ((gmask & tag) == (gmask & (gtag - gdiff))) {
      if (TagIsDelete(tag)) return kErrNoEnt;
      uint32_t diff = Min(TagSize(tag), gsize);
      err = BdRead(nullptr, &rcache_, diff, dir->pair[0], off + 4 + goff, gbuffer, diff);
      if (err) return err;
      std::memset(static_cast<uint8_t*>(gbuffer) + diff, 0, gsize - diff);
      return tag + gdiff;
    }
  }
  return kErrNoEnt;
}

STag Core::DirGet(const MDir* dir, Tag gmask, Tag gtag, void* buffer) {
  return DirGetSlice(dir, gmask, gtag, 0, buffer, TagSize(gtag));
}

int Core::DirGetRead(const MDir* dir, const Cache* pcache, Cache* rcache, uint32_t hint, Tag gmask,
                     Tag gtag, uint32_t off, void* buffer, uint32_t size) {
  uint8_t* data = static_cast<uint8_t*>(buffer);
  if (uint64_t(off) + size > block_size_) return kErrCorrupt;
  while (size > 0) {
    uint32_t diff = size;
    if (pcache && pcache->block == kBlockInline && off < pcache->off + pcache->size) {
      if (off >= pcache->off) {
        diff = Min(diff, pcache->size - (off - pcache->off));
        std::memcpy(data, &pcache->buffer[off - pcache->off], diff);
        data += diff; off += diff; size -= diff;
        continue;
      }
      diff = Min(diff, pcache->off - off);
    }
    if (rcache->block == kBlockInline && off < rcache->off + rcache->size) {
      if (off >= rcache->off) {
        diff = Min(diff, rcache->size - (off - rcache->off));
        std::memcpy(data, &rcache->buffer[off - rcache->off], diff);
        data += diff; off += diff; size -= diff;
        continue;
      }
    }
    rcache->block = kBlockInline;
    rcache->off = AlignDown(off, read_size_);
    rcache->size = Min(AlignUp(off + hint, read_size_), cache_size_);
    STag err = DirGetSlice(dir, gmask, gtag, rcache->off, rcache->buffer.data(), rcache->size);
    if (err < 0) {
      rcache->block = kBlockNull;
      return err;
    }
  }
  return 0;
}

namespace {
struct DiskOff {
  uint32_t block;
  uint32_t off;
};

// Is `tag` made redundant by a later tag (`*filtertag` is the earlier one being tested)?
bool TraverseFilter(Tag* filtertag, Tag tag) {
  uint32_t mask = (tag & MkTag(0x100, 0, 0)) ? MkTag(0x7ff, 0x3ff, 0) : MkTag(0x700, 0x3ff, 0);
  if ((mask & tag) == (mask & *filtertag) || TagIsDelete(*filtertag) ||
      (MkTag(0x7ff, 0x3ff, 0) & tag) ==
          (MkTag(kTypeDelete, 0, 0) | (MkTag(0, 0x3ff, 0) & *filtertag))) {
    *filtertag = MkTag(kFromNoop, 0, 0);
    return true;
  }
  if (TagType1(tag) == kTypeSplice && TagId(tag) <= TagId(*filtertag)) {
    *filtertag += SpliceDelta(tag);
  }
  return false;
}
}  // namespace

// Walks the tags of `dir` from `off`, then `attrs`, calling cb for each (as lfs_dir_traverse).
// filtertag != nullptr: this walk is the duplicate filter for *filtertag (cb unused); it returns 1
// when the tag is superseded. Recursion is bounded: commit -> move -> filter.
int Core::DirTraverse(const MDir* dir, uint32_t off, Tag ptag, const MAttr* attrs, int attrcount,
                      Tag tmask, Tag ttag, uint16_t begin, uint16_t end, int16_t diff,
                      const TraverseCb* cb, Tag* filtertag) {
  while (true) {
    Tag tag;
    const void* buffer;
    DiskOff disk{0, 0};
    if (off + TagDsize(ptag) < dir->off) {
      off += TagDsize(ptag);
      uint8_t raw[4];
      int err = BdRead(nullptr, &rcache_, 4, dir->pair[0], off, raw, 4);
      if (err) return err;
      tag = (GetBe32(raw) ^ ptag) | 0x80000000;
      disk.block = dir->pair[0];
      disk.off = off + 4;
      buffer = &disk;
      ptag = tag;
    } else if (attrcount > 0) {
      tag = attrs[0].tag;
      buffer = attrs[0].buffer;
      attrs += 1;
      attrcount -= 1;
    } else {
      return 0;
    }

    Tag mask = MkTag(0x7ff, 0, 0);
    if ((mask & tmask & tag) != (mask & tmask & ttag)) continue;

    if (TagId(tmask) != 0) {
      // scan the rest for duplicates and update the tag for creates/deletes
      int res = DirTraverse(dir, off, ptag, attrs, attrcount, 0, 0, 0, 0, 0, nullptr, &tag);
      if (res < 0) return res;
      if (res) continue;
      if (!(TagId(tag) >= begin && TagId(tag) < end)) continue;
    }

    const bool from_disk = tag & 0x80000000;
    if (TagType3(tag) == kFromNoop || (from_disk && TagType1(tag) == kTypeFrom)) {
      // nothing (a "from" tag is an in-memory instruction; on disk it is junk to drop)
    } else if (TagType3(tag) == kFromMove) {
      if (filtertag) continue;  // duplicates inside a move cannot affect filtering
      uint16_t fromid = TagSize(tag);
      uint16_t toid = TagId(tag);
      int err = DirTraverse(static_cast<const MDir*>(buffer), 0, 0xffffffff, nullptr, 0,
                            MkTag(0x600, 0x3ff, 0), MkTag(kTypeStruct, 0, 0), fromid, fromid + 1,
                            int16_t(toid - fromid + diff), cb, filtertag);
      if (err) return err;
    } else {
      Tag t = tag + (uint32_t(int32_t(diff)) << 10);
      if (filtertag) {
        if (TraverseFilter(filtertag, t)) return 1;
      } else {
        int err = (*cb)(t, buffer);
        if (err) return err;
      }
    }
  }
}

STag Core::DirFetchMatch(MDir* dir, const uint32_t pair[2], Tag fmask, Tag ftag, uint16_t* id,
                         const std::function<int(Tag, uint32_t, uint32_t)>* cb) {
  STag besttag = -1;
  if (block_count_ && (pair[0] >= block_count_ || pair[1] >= block_count_)) return kErrCorrupt;

  uint32_t revs[2] = {0, 0};
  int r = 0;
  for (int i = 0; i < 2; i++) {
    uint8_t raw[4];
    int err = BdRead(nullptr, &rcache_, 4, pair[i], 0, raw, 4);
    revs[i] = GetLe32(raw);
    if (err && err != kErrCorrupt) return err;
    if (err == kErrCorrupt) revs[i] = 0;
    if (err != kErrCorrupt && Scmp(revs[i], revs[(i + 1) % 2]) > 0) r = i;
  }

  dir->pair[0] = pair[(r + 0) % 2];
  dir->pair[1] = pair[(r + 1) % 2];
  dir->rev = revs[(r + 0) % 2];
  dir->off = 0;

  for (int i = 0; i < 2; i++) {
    uint32_t off = 0;
    Tag ptag = 0xffffffff;
    uint16_t tempcount = 0;
    uint32_t temptail[2] = {kBlockNull, kBlockNull};
    bool tempsplit = false;
    STag tempbesttag = besttag;
    bool maybeerased = false;
    bool hasfcrc = false;
    uint32_t fcrc_size = 0, fcrc_crc = 0;

    uint8_t revraw[4];
    PutLe32(revraw, dir->rev);
    uint32_t crc = Crc32(0xffffffff, revraw, 4);

    while (true) {
      off += TagDsize(ptag);
      uint8_t raw[8];
      int err = BdRead(nullptr, &rcache_, block_size_, dir->pair[0], off, raw, 4);
      if (err) {
        if (err == kErrCorrupt) break;
        return err;
      }
      crc = Crc32(crc, raw, 4);
      Tag tag = GetBe32(raw) ^ ptag;

      if (!TagIsValid(tag)) {
        maybeerased = (TagType2(ptag) == kTypeCcrc);
        break;
      } else if (uint64_t(off) + TagDsize(tag) > block_size_) {
        break;
      }
      ptag = tag;

      if (TagType2(tag) == kTypeCcrc) {
        err = BdRead(nullptr, &rcache_, block_size_, dir->pair[0], off + 4, raw, 4);
        if (err) {
          if (err == kErrCorrupt) break;
          return err;
        }
        if (crc != GetLe32(raw)) break;
        ptag ^= Tag(TagChunk(tag) & 1U) << 31;
        uint8_t crcraw[4];
        PutLe32(crcraw, crc);
        seed_ = Crc32(seed_, crcraw, 4);
        besttag = tempbesttag;
        dir->off = off + TagDsize(tag);
        dir->etag = ptag;
        dir->count = tempcount;
        dir->tail[0] = temptail[0];
        dir->tail[1] = temptail[1];
        dir->split = tempsplit;
        crc = 0xffffffff;
        continue;
      }

      err = BdCrc(nullptr, &rcache_, block_size_, dir->pair[0], off + 4, TagDsize(tag) - 4, &crc);
      if (err) {
        if (err == kErrCorrupt) break;
        return err;
      }

      if (TagType1(tag) == kTypeName) {
        if (TagId(tag) >= tempcount) tempcount = TagId(tag) + 1;
      } else if (TagType1(tag) == kTypeSplice) {
        tempcount += TagSplice(tag);
        if (tempcount > 0x3fe) break;  // ids underflowed or overflowed: not a real commit
        if (tag == (MkTag(kTypeDelete, 0, 0) | (MkTag(0, 0x3ff, 0) & Tag(tempbesttag)))) {
          tempbesttag |= 0x80000000;
        } else if (tempbesttag != -1 && TagId(tag) <= TagId(tempbesttag)) {
          tempbesttag = STag(Tag(tempbesttag) + SpliceDelta(tag));
        }
      } else if (TagType1(tag) == kTypeTail) {
        tempsplit = (TagChunk(tag) & 1);
        err = BdRead(nullptr, &rcache_, block_size_, dir->pair[0], off + 4, raw, 8);
        if (err) {
          if (err == kErrCorrupt) break;
          return err;
        }
        temptail[0] = GetLe32(raw);
        temptail[1] = GetLe32(raw + 4);
      } else if (TagType3(tag) == kTypeFcrc) {
        err = BdRead(nullptr, &rcache_, block_size_, dir->pair[0], off + 4, raw, 8);
        if (err) {
          if (err == kErrCorrupt) break;
          return err;
        }
        fcrc_size = GetLe32(raw);
        fcrc_crc = GetLe32(raw + 4);
        hasfcrc = true;
      }

      if ((fmask & tag) == (fmask & ftag) && cb) {
        int res = (*cb)(tag, dir->pair[0], off + 4);
        if (res < 0) {
          if (res == kErrCorrupt) break;
          return res;
        }
        if (res == kCmpEq) {
          tempbesttag = tag;
        } else if ((MkTag(0x7ff, 0x3ff, 0) & tag) == (MkTag(0x7ff, 0x3ff, 0) & Tag(tempbesttag))) {
          tempbesttag = -1;
        } else if (res == kCmpGt && TagId(tag) <= TagId(tempbesttag)) {
          tempbesttag = tag | 0x80000000;
        }
      }
    }

    if (dir->off == 0) {
      PairSwap(dir->pair);
      dir->rev = revs[(r + 1) % 2];
      continue;
    }

    dir->erased = false;
    if (maybeerased && dir->off % prog_size_ == 0) {
      if (Multiversion20()) {
        // disk 2.0 has no fcrc: trust the erased state, as littlefs does for 2.0 disks
        dir->erased = true;
      } else if (hasfcrc) {
        uint32_t fcrc = 0xffffffff;
        int err = BdCrc(nullptr, &rcache_, block_size_, dir->pair[0], dir->off, fcrc_size, &fcrc);
        if (err && err != kErrCorrupt) return err;
        dir->erased = (err == 0 && fcrc == fcrc_crc);
      }
    }

    if (GHasMoveHere(&gdisk_, dir->pair)) {
      if (TagId(gdisk_.tag) == TagId(besttag)) {
        besttag |= 0x80000000;
      } else if (besttag != -1 && TagId(gdisk_.tag) < TagId(besttag)) {
        besttag -= MkTag(0, 1, 0);
      }
    }

    if (id) *id = Min(TagId(besttag), dir->count);
    if (TagIsValid(besttag)) {
      return besttag;
    } else if (TagId(besttag) < dir->count) {
      return kErrNoEnt;
    } else {
      return 0;
    }
  }
  device_status_ = Corrupt("no valid commit in metadata pair {" + std::to_string(pair[0]) + ", " +
                           std::to_string(pair[1]) + "}");
  return kErrCorrupt;
}

int Core::DirFetch(MDir* dir, const uint32_t pair[2]) {
  uint32_t p[2] = {pair[0], pair[1]};  // pair may alias dir->tail
  return int(DirFetchMatch(dir, p, Tag(-1), Tag(-1), nullptr, nullptr));
}

int Core::DirGetGState(const MDir* dir, GState* gstate) {
  uint8_t raw[12];
  STag res = DirGet(dir, MkTag(0x7ff, 0, 0), MkTag(kTypeMoveState, 0, 12), raw);
  if (res < 0 && res != kErrNoEnt) return res;
  if (res != kErrNoEnt) {
    GState t{GetLe32(raw), {GetLe32(raw + 4), GetLe32(raw + 8)}};
    GXor(gstate, &t);
  }
  return 0;
}

int Core::DirGetInfo(MDir* dir, uint16_t id, Info* info) {
  if (id == 0x3ff) {
    info->name = "/";
    info->type = kTypeDir;
    info->size = 0;
    return 0;
  }
  std::vector<uint8_t> name(name_max_ + 1);
  STag tag = DirGet(dir, MkTag(0x780, 0x3ff, 0), MkTag(kTypeName, id, name_max_ + 1), name.data());
  if (tag < 0) return int(tag);
  info->type = TagType3(tag);
  info->name.assign(reinterpret_cast<const char*>(name.data()), Min(TagSize(tag), name_max_ + 1));
  // names are NUL-free on disk; stop at a NUL like the C API would
  info->name = std::string(info->name.c_str());
  uint8_t ctz[8];
  tag = DirGet(dir, MkTag(0x700, 0x3ff, 0), MkTag(kTypeStruct, id, 8), ctz);
  if (tag < 0) return int(tag);
  info->size = 0;
  if (TagType3(tag) == kTypeCtzStruct) {
    info->size = GetLe32(ctz + 4);
  } else if (TagType3(tag) == kTypeInlineStruct) {
    info->size = TagSize(tag);
  }
  return 0;
}

int Core::FindMatch(const char* name, uint32_t size, Tag tag, uint32_t block, uint32_t off) {
  uint32_t diff = Min(size, TagSize(tag));
  int res = BdCmp(nullptr, &rcache_, diff, block, off, name, diff);
  if (res != kCmpEq) return res;
  if (size != TagSize(tag)) return size < TagSize(tag) ? kCmpLt : kCmpGt;
  return kCmpEq;
}

STag Core::DirFind(MDir* dir, const char** path, uint16_t* id) {
  const char* name = *path;
  STag tag = MkTag(kTypeDir, 0x3ff, 0);
  dir->tail[0] = root_[0];
  dir->tail[1] = root_[1];
  if (*name == '\0') return kErrInval;

  // bound the walk: a hostile image could link directories into a loop
  for (uint32_t steps = 0;; steps++) {
  nextname:
    if (TagType3(tag) == kTypeDir) name += strspn(name, "/");
    uint32_t namelen = strcspn(name, "/");
    if (namelen == 1 && std::memcmp(name, ".", 1) == 0) {
      name += namelen;
      goto nextname;
    }
    if (namelen == 2 && std::memcmp(name, "..", 2) == 0) return kErrInval;

    const char* suffix = name + namelen;
    int depth = 1;
    while (true) {
      suffix += strspn(suffix, "/");
      uint32_t sufflen = strcspn(suffix, "/");
      if (sufflen == 0) break;
      if (sufflen == 1 && std::memcmp(suffix, ".", 1) == 0) {
      } else if (sufflen == 2 && std::memcmp(suffix, "..", 2) == 0) {
        depth -= 1;
        if (depth == 0) {
          name = suffix + sufflen;
          goto nextname;
        }
      } else {
        depth += 1;
      }
      suffix += sufflen;
    }

    if (*name == '\0') return tag;
    *path = name;
    if (TagType3(tag) != kTypeDir) return kErrNotDir;

    if (TagId(tag) != 0x3ff) {
      uint8_t raw[8];
      STag res = DirGet(dir, MkTag(0x700, 0x3ff, 0), MkTag(kTypeStruct, TagId(tag), 8), raw);
      if (res < 0) return res;
      dir->tail[0] = GetLe32(raw);
      dir->tail[1] = GetLe32(raw + 4);
    }

    std::function<int(Tag, uint32_t, uint32_t)> match = [&](Tag t, uint32_t b, uint32_t o) {
      return FindMatch(name, namelen, t, b, o);
    };
    Tortoise tortoise;
    while (true) {
      tag = DirFetchMatch(dir, dir->tail, MkTag(0x780, 0, 0), MkTag(kTypeName, 0, namelen), id,
                          &match);
      if (tag < 0) return tag;
      if (tag) break;
      if (!dir->split) return kErrNoEnt;
      if (tortoise.Check(dir)) return kErrCorrupt;
    }
    name += namelen;
    if (steps > block_count_) return kErrCorrupt;
  }
}

// ---------------------------------------------------------------------------------------------
// Commits.

int Core::CommitProg(Commit* c, const void* buffer, uint32_t size) {
  int err = BdProg(&pcache_, &rcache_, false, c->block, c->off, buffer, size);
  if (err) return err;
  c->crc = Crc32(c->crc, buffer, size);
  c->off += size;
  return 0;
}

int Core::CommitAttr(Commit* c, Tag tag, const void* buffer) {
  uint32_t dsize = TagDsize(tag);
  if (c->off + dsize > c->end) return kErrNoSpc;
  uint8_t ntag[4];
  PutBe32(ntag, (tag & 0x7fffffff) ^ c->ptag);
  int err = CommitProg(c, ntag, 4);
  if (err) return err;
  if (!(tag & 0x80000000)) {
    err = CommitProg(c, buffer, dsize - 4);
    if (err) return err;
  } else {
    const DiskOff* disk = static_cast<const DiskOff*>(buffer);
    for (uint32_t i = 0; i < dsize - 4; i++) {
      uint8_t dat;
      err = BdRead(nullptr, &rcache_, dsize - 4 - i, disk->block, disk->off + i, &dat, 1);
      if (err) return err;
      err = CommitProg(c, &dat, 1);
      if (err) return err;
    }
  }
  c->ptag = tag & 0x7fffffff;
  return 0;
}

int Core::CommitCrc(Commit* c) {
  // Pad to the program unit with CRC tags; the last one carries an FCRC (2.1) describing the
  // erased state of the next prog unit so a torn later commit can be detected.
  const uint32_t end = AlignUp(Min(c->off + 5 * 4, block_size_), prog_size_);
  uint32_t off1 = 0;
  uint32_t crc1 = 0;

  while (c->off < end) {
    uint32_t noff = Min(end - (c->off + 4), 0x3fe) + (c->off + 4);
    if (noff < end) noff = Min(noff, end - 5 * 4);

    uint8_t eperturb = 0xff;
    if (noff >= end && noff <= block_size_ - prog_size_) {
      int err = BdRead(nullptr, &rcache_, prog_size_, c->block, noff, &eperturb, 1);
      if (err && err != kErrCorrupt) return err;
      if (!Multiversion20()) {
        uint32_t fcrc = 0xffffffff;
        err = BdCrc(nullptr, &rcache_, prog_size_, c->block, noff, prog_size_, &fcrc);
        if (err && err != kErrCorrupt) return err;
        uint8_t raw[8];
        PutLe32(raw, prog_size_);
        PutLe32(raw + 4, fcrc);
        err = CommitAttr(c, MkTag(kTypeFcrc, 0x3ff, 8), raw);
        if (err) return err;
      }
    }

    Tag ntag = MkTag(kTypeCcrc + ((uint8_t(~eperturb)) >> 7), 0x3ff, noff - (c->off + 4));
    uint8_t ccrc[8];
    PutBe32(ccrc, ntag ^ c->ptag);
    c->crc = Crc32(c->crc, ccrc, 4);
    PutLe32(ccrc + 4, c->crc);
    int err = BdProg(&pcache_, &rcache_, false, c->block, c->off, ccrc, 8);
    if (err) return err;

    if (off1 == 0) {
      off1 = c->off + 4;
      crc1 = c->crc;
    }
    c->off = noff;
    c->ptag = ntag ^ ((0x80UL & ~uint32_t(eperturb)) << 24);
    c->crc = 0xffffffff;

    if (noff >= end || noff >= pcache_.off + cache_size_) {
      err = BdSync(&pcache_, &rcache_, false);
      if (err) return err;
    }
  }

  // read back what we wrote: a bad block shows up here
  uint32_t off = c->begin;
  uint32_t crc = 0xffffffff;
  int err = BdCrc(nullptr, &rcache_, off1 + 4, c->block, off, off1 - off, &crc);
  if (err) return err;
  if (crc != crc1) return kErrCorrupt;
  err = BdCrc(nullptr, &rcache_, 4, c->block, off1, 4, &crc);
  if (err) return err;
  if (crc != 0) return kErrCorrupt;
  return 0;
}

int Core::DirAlloc(MDir* dir) {
  for (int i = 0; i < 2; i++) {
    int err = Alloc(&dir->pair[(i + 1) % 2]);
    if (err) return err;
  }
  dir->rev = 0;
  uint8_t raw[4];
  int err = BdRead(nullptr, &rcache_, 4, dir->pair[0], 0, raw, 4);
  if (err && err != kErrCorrupt) return err;
  if (!err) dir->rev = GetLe32(raw);
  if (block_cycles_ > 0) dir->rev = AlignUp(dir->rev, ((block_cycles_ + 1) | 1));
  dir->off = 4;
  dir->etag = 0xffffffff;
  dir->count = 0;
  dir->tail[0] = kBlockNull;
  dir->tail[1] = kBlockNull;
  dir->erased = false;
  dir->split = false;
  return 0;
}

int Core::DirDrop(MDir* dir, MDir* tail) {
  int err = DirGetGState(tail, &gdelta_);
  if (err) return err;
  LePair t(tail->tail);
  MAttr a[] = {{MkTag(kTypeTail + tail->split, 0x3ff, 8), t.b}};
  return DirCommit(dir, a, 1);
}

int Core::DirSplit(MDir* dir, const MAttr* attrs, int attrcount, MDir* source, uint16_t split,
                   uint16_t end) {
  MDir tail;
  int err = DirAlloc(&tail);
  if (err) return err;
  tail.split = dir->split;
  tail.tail[0] = dir->tail[0];
  tail.tail[1] = dir->tail[1];
  int res = DirCompact(&tail, attrs, attrcount, source, split, end);
  if (res < 0) return res;
  dir->tail[0] = tail.pair[0];
  dir->tail[1] = tail.pair[1];
  dir->split = true;
  if (PairCmp(dir->pair, root_) == 0 && split == 0) {
    root_[0] = tail.pair[0];
    root_[1] = tail.pair[1];
  }
  return 0;
}

bool Core::DirNeedsRelocation(const MDir* dir) const {
  return block_cycles_ > 0 && ((dir->rev + 1) % uint32_t((block_cycles_ + 1) | 1) == 0);
}

int Core::DirCompact(MDir* dir, const MAttr* attrs, int attrcount, MDir* source, uint16_t begin,
                     uint16_t end) {
  bool relocated = false;
  bool tired = DirNeedsRelocation(dir);
  dir->rev += 1;
  const uint32_t superpair[2] = {0, 1};
  bool do_relocate = tired && PairCmp(dir->pair, superpair) != 0;

  // bounded: every relocation consumes a block from the allocator
  for (uint32_t attempts = 0;; attempts++) {
    if (attempts > block_count_ + 2) return kErrNoSpc;
    if (!do_relocate) {
      Commit commit{dir->pair[1], 0, 0xffffffff, 0xffffffff, 0,
                    (metadata_max_ ? metadata_max_ : block_size_) - 8};
      int err = BdErase(dir->pair[1]);
      if (err) {
        if (err != kErrCorrupt) return err;
        goto relocate;
      }
      {
        uint8_t revraw[4];
        PutLe32(revraw, dir->rev);
        err = CommitProg(&commit, revraw, 4);
        if (err) {
          if (err != kErrCorrupt) return err;
          goto relocate;
        }
      }
      {
        TraverseCb cb = [&](Tag tag, const void* buffer) { return CommitAttr(&commit, tag, buffer); };
        err = DirTraverse(source, 0, 0xffffffff, attrs, attrcount, MkTag(0x400, 0x3ff, 0),
                          MkTag(kTypeName, 0, 0), begin, end, int16_t(-int(begin)), &cb, nullptr);
        if (err) {
          if (err != kErrCorrupt) return err;
          goto relocate;
        }
      }
      if (!PairIsNull(dir->tail)) {
        LePair t(dir->tail);
        err = CommitAttr(&commit, MkTag(kTypeTail + dir->split, 0x3ff, 8), t.b);
        if (err) {
          if (err != kErrCorrupt) return err;
          goto relocate;
        }
      }
      {
        GState delta{};
        if (!relocated) {
          GXor(&delta, &gdisk_);
          GXor(&delta, &gstate_);
        }
        GXor(&delta, &gdelta_);
        delta.tag &= ~MkTag(0, 0, 0x3ff);
        err = DirGetGState(dir, &delta);
        if (err) return err;
        if (!GIsZero(&delta)) {
          uint8_t raw[12];
          GToLe(delta, raw);
          err = CommitAttr(&commit, MkTag(kTypeMoveState, 0x3ff, 12), raw);
          if (err) {
            if (err != kErrCorrupt) return err;
            goto relocate;
          }
        }
      }
      err = CommitCrc(&commit);
      if (err) {
        if (err != kErrCorrupt) return err;
        goto relocate;
      }
      PairSwap(dir->pair);
      dir->count = end - begin;
      dir->off = commit.off;
      dir->etag = commit.ptag;
      gdelta_ = GState{};
      if (!relocated) gdisk_ = gstate_;
      break;
    }
  relocate:
    relocated = true;
    CacheDrop(&pcache_);
    if (PairCmp(dir->pair, superpair) == 0) {
      device_status_ = Corrupt("superblock block has become unwritable");
      return kErrNoSpc;
    }
    {
      int err = Alloc(&dir->pair[1]);
      if (err && (err != kErrNoSpc || !tired)) return err;
    }
    tired = false;
    do_relocate = false;
  }
  return relocated ? kOkRelocated : 0;
}

int Core::DirSplittingCompact(MDir* dir, const MAttr* attrs, int attrcount, MDir* source,
                              uint16_t begin, uint16_t end) {
  while (true) {
    uint32_t split = begin;
    while (end - split > 1) {
      uint32_t size = 0;
      TraverseCb cb = [&](Tag tag, const void*) {
        size += TagDsize(tag);
        return 0;
      };
      int err = DirTraverse(source, 0, 0xffffffff, attrs, attrcount, MkTag(0x400, 0x3ff, 0),
                            MkTag(kTypeName, 0, 0), split, end, int16_t(-int(split)), &cb, nullptr);
      if (err) return err;
      uint32_t mmax = metadata_max_ ? metadata_max_ : block_size_;
      if (end - split < 0xff && size <= Min(mmax - 40, AlignUp(mmax / 2, prog_size_))) break;
      split = split + ((end - split) / 2);
    }
    if (split == begin) break;
    int err = DirSplit(dir, attrs, attrcount, source, split, end);
    if (err && err != kErrNoSpc) return err;
    if (err) break;
    end = split;
  }

  const uint32_t superpair[2] = {0, 1};
  if (DirNeedsRelocation(dir) && PairCmp(dir->pair, superpair) == 0) {
    int32_t size = FsSize();
    if (size < 0) return size;
    if (block_count_ - uint32_t(size) > block_count_ / 8) {
      int err = DirSplit(dir, attrs, attrcount, source, begin, end);
      if (err && err != kErrNoSpc) return err;
      if (!err) end = 1;
    }
  }
  return DirCompact(dir, attrs, attrcount, source, begin, end);
}

int Core::DirRelocatingCommit(MDir* dir, const uint32_t pair[2], const MAttr* attrs,
                              int attrcount, MDir* pdir) {
  int state = 0;
  bool hasdelete = false;
  for (int i = 0; i < attrcount; i++) {
    if (TagType3(attrs[i].tag) == kTypeCreate) {
      dir->count += 1;
    } else if (TagType3(attrs[i].tag) == kTypeDelete) {
      if (dir->count == 0) return kErrCorrupt;
      dir->count -= 1;
      hasdelete = true;
    } else if (TagType1(attrs[i].tag) == kTypeTail) {
      const uint8_t* b = static_cast<const uint8_t*>(attrs[i].buffer);
      dir->tail[0] = GetLe32(b);
      dir->tail[1] = GetLe32(b + 4);
      dir->split = (TagChunk(attrs[i].tag) & 1);
    }
  }

  if (hasdelete && dir->count == 0) {
    if (!pdir) return kErrCorrupt;
    int err = FsPred(dir->pair, pdir);
    if (err && err != kErrNoEnt) return err;
    if (err != kErrNoEnt && pdir->split) {
      state = kOkDropped;
      goto fixmlist;
    }
  }

  if (dir->erased && dir->count < 0xff) {
    Commit commit{dir->pair[0], dir->off, dir->etag, 0xffffffff, dir->off,
                  (metadata_max_ ? metadata_max_ : block_size_) - 8};
    int err;
    {
      TraverseCb cb = [&](Tag tag, const void* buffer) { return CommitAttr(&commit, tag, buffer); };
      err = DirTraverse(dir, dir->off, dir->etag, attrs, attrcount, 0, 0, 0, 0, 0, &cb, nullptr);
    }
    if (err) {
      if (err == kErrNoSpc || err == kErrCorrupt) goto compact;
      return err;
    }
    {
      GState delta{};
      GXor(&delta, &gstate_);
      GXor(&delta, &gdisk_);
      GXor(&delta, &gdelta_);
      delta.tag &= ~MkTag(0, 0, 0x3ff);
      if (!GIsZero(&delta)) {
        err = DirGetGState(dir, &delta);
        if (err) return err;
        uint8_t raw[12];
        GToLe(delta, raw);
        err = CommitAttr(&commit, MkTag(kTypeMoveState, 0x3ff, 12), raw);
        if (err) {
          if (err == kErrNoSpc || err == kErrCorrupt) goto compact;
          return err;
        }
      }
    }
    err = CommitCrc(&commit);
    if (err) {
      if (err == kErrNoSpc || err == kErrCorrupt) goto compact;
      return err;
    }
    dir->off = commit.off;
    dir->etag = commit.ptag;
    gdisk_ = gstate_;
    gdelta_ = GState{};
    goto fixmlist;
  }

compact:
  CacheDrop(&pcache_);
  state = DirSplittingCompact(dir, attrs, attrcount, dir, 0, dir->count);
  if (state < 0) return state;

fixmlist : {
  uint32_t oldpair[2] = {pair[0], pair[1]};
  for (MList* d = mlist_; d; d = d->next) {
    if (PairCmp(d->m.pair, oldpair) == 0) {
      d->m = *dir;
      if (d->m.pair != pair) {
        for (int i = 0; i < attrcount; i++) {
          if (TagType3(attrs[i].tag) == kTypeDelete && d->id == TagId(attrs[i].tag) &&
              d->type != kTypeDir) {
            d->m.pair[0] = kBlockNull;
            d->m.pair[1] = kBlockNull;
          } else if (TagType3(attrs[i].tag) == kTypeDelete && d->id > TagId(attrs[i].tag)) {
            d->id -= 1;
            if (d->type == kTypeDir) static_cast<DirState*>(d)->pos -= 1;
          } else if (TagType3(attrs[i].tag) == kTypeCreate && d->id >= TagId(attrs[i].tag)) {
            d->id += 1;
            if (d->type == kTypeDir) static_cast<DirState*>(d)->pos += 1;
          }
        }
      }
      Tortoise tortoise;
      while (d->id >= d->m.count && d->m.split) {
        if (PairCmp(d->m.tail, root_) != 0) d->id -= d->m.count;
        if (tortoise.Check(&d->m)) return kErrCorrupt;
        int err = DirFetch(&d->m, d->m.tail);
        if (err) return err;
      }
    }
  }
}
  return state;
}

int Core::DirOrphaningCommit(MDir* dir, const MAttr* attrs, int attrcount) {
  // inline files bigger than the cache are not RAM-backed: move them out first
  for (MList* m = mlist_; m; m = m->next) {
    if (m->type != kTypeReg) continue;
    FileState* f = static_cast<FileState*>(m);
    if (dir != &f->m && PairCmp(f->m.pair, dir->pair) == 0 && (f->flags & kFInline) &&
        f->ctz.size > cache_size_) {
      int err = FileOutline(f);
      if (err) return err;
      err = FileFlush(f);
      if (err) return err;
    }
  }

  uint32_t lpair[2] = {dir->pair[0], dir->pair[1]};
  MDir ldir = *dir;
  MDir pdir;
  int state = DirRelocatingCommit(&ldir, dir->pair, attrs, attrcount, &pdir);
  if (state < 0) return state;
  if (PairCmp(dir->pair, lpair) == 0) *dir = ldir;

  if (state == kOkDropped) {
    int err = DirGetGState(dir, &gdelta_);
    if (err) return err;
    lpair[0] = pdir.pair[0];
    lpair[1] = pdir.pair[1];
    LePair t(dir->tail);
    MAttr a[] = {{MkTag(kTypeTail + dir->split, 0x3ff, 8), t.b}};
    state = DirRelocatingCommit(&pdir, lpair, a, 1, nullptr);
    if (state < 0) return state;
    ldir = pdir;
  }

  bool orphans = false;
  for (uint32_t rounds = 0; state == kOkRelocated; rounds++) {
    if (rounds > block_count_) return kErrCorrupt;
    state = 0;
    if (PairCmp(lpair, root_) == 0) {
      root_[0] = ldir.pair[0];
      root_[1] = ldir.pair[1];
    }
    for (MList* d = mlist_; d; d = d->next) {
      if (PairCmp(lpair, d->m.pair) == 0) {
        d->m.pair[0] = ldir.pair[0];
        d->m.pair[1] = ldir.pair[1];
      }
      if (d->type == kTypeDir && PairCmp(lpair, static_cast<DirState*>(d)->head) == 0) {
        static_cast<DirState*>(d)->head[0] = ldir.pair[0];
        static_cast<DirState*>(d)->head[1] = ldir.pair[1];
      }
    }

    STag tag = FsParent(lpair, &pdir);
    if (tag < 0 && tag != kErrNoEnt) return tag;
    bool hasparent = (tag != kErrNoEnt);
    if (tag != kErrNoEnt) {
      int err = PrepOrphans(+1);
      if (err) return err;
      uint16_t moveid = 0x3ff;
      if (GHasMoveHere(&gstate_, pdir.pair)) {
        moveid = TagId(gstate_.tag);
        PrepMove(0x3ff, nullptr);
        if (moveid < TagId(tag)) tag -= MkTag(0, 1, 0);
      }
      uint32_t ppair[2] = {pdir.pair[0], pdir.pair[1]};
      LePair lp(ldir.pair);
      MAttr a[] = {{MkTagIf(moveid != 0x3ff, kTypeDelete, moveid, 0), nullptr},
                   {Tag(tag), lp.b}};
      state = DirRelocatingCommit(&pdir, ppair, a, 2, nullptr);
      if (state < 0) return state;
      if (state == kOkRelocated) {
        lpair[0] = ppair[0];
        lpair[1] = ppair[1];
        ldir = pdir;
        orphans = true;
        continue;
      }
    }

    int err = FsPred(lpair, &pdir);
    if (err && err != kErrNoEnt) return err;
    if (hasparent && err == kErrNoEnt) return kErrCorrupt;
    if (err != kErrNoEnt) {
      if (GHasOrphans(&gstate_)) {
        err = PrepOrphans(-int8_t(hasparent));
        if (err) return err;
      }
      uint16_t moveid = 0x3ff;
      if (GHasMoveHere(&gstate_, pdir.pair)) {
        moveid = TagId(gstate_.tag);
        PrepMove(0x3ff, nullptr);
      }
      lpair[0] = pdir.pair[0];
      lpair[1] = pdir.pair[1];
      LePair lp(ldir.pair);
      MAttr a[] = {{MkTagIf(moveid != 0x3ff, kTypeDelete, moveid, 0), nullptr},
                   {MkTag(kTypeTail + pdir.split, 0x3ff, 8), lp.b}};
      state = DirRelocatingCommit(&pdir, lpair, a, 2, nullptr);
      if (state < 0) return state;
      ldir = pdir;
    }
  }
  return orphans ? kOkOrphaned : 0;
}

int Core::DirCommit(MDir* dir, const MAttr* attrs, int attrcount) {
  int orphans = DirOrphaningCommit(dir, attrs, attrcount);
  if (orphans < 0) return orphans;
  if (orphans) {
    int err = DeOrphan(false);
    if (err) return err;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Directories.

int Core::Mkdir(const char* path) {
  int err = ForceConsistency();
  if (err) return err;

  MList cwd;
  cwd.next = mlist_;
  uint16_t id;
  STag ferr = DirFind(&cwd.m, &path, &id);
  if (!(ferr == kErrNoEnt && [&] {
        uint32_t n = strcspn(path, "/");
        return path[n + strspn(path + n, "/")] == '\0';
      }())) {
    return ferr < 0 ? int(ferr) : kErrExist;
  }
  uint32_t nlen = strcspn(path, "/");
  if (nlen > name_max_) return kErrNameTooLong;

  AllocCkpoint();
  MDir dir;
  err = DirAlloc(&dir);
  if (err) return err;

  MDir pred = cwd.m;
  Tortoise tortoise;
  while (pred.split) {
    if (tortoise.Check(&pred)) return kErrCorrupt;
    err = DirFetch(&pred, pred.tail);
    if (err) return err;
  }

  {
    LePair t(pred.tail);
    MAttr a[] = {{MkTag(kTypeSoftTail, 0x3ff, 8), t.b}};
    err = DirCommit(&dir, a, 1);
    if (err) return err;
  }

  if (cwd.m.split) {
    err = PrepOrphans(+1);
    if (err) return err;
    cwd.type = 0;
    cwd.id = 0;
    mlist_ = &cwd;
    LePair t(dir.pair);
    MAttr a[] = {{MkTag(kTypeSoftTail, 0x3ff, 8), t.b}};
    err = DirCommit(&pred, a, 1);
    mlist_ = cwd.next;
    if (err) return err;
    err = PrepOrphans(-1);
    if (err) return err;
  }

  LePair t(dir.pair);
  MAttr a[] = {{MkTag(kTypeCreate, id, 0), nullptr},
               {MkTag(kTypeDir, id, nlen), path},
               {MkTag(kTypeDirStruct, id, 8), t.b},
               {MkTagIf(!cwd.m.split, kTypeSoftTail, 0x3ff, 8), t.b}};
  return DirCommit(&cwd.m, a, 4);
}

int Core::DirOpen(DirState* dir, const char* path) {
  STag tag = DirFind(&dir->m, &path, nullptr);
  if (tag < 0) return tag;
  if (TagType3(tag) != kTypeDir) return kErrNotDir;
  uint32_t pair[2];
  if (TagId(tag) == 0x3ff) {
    pair[0] = root_[0];
    pair[1] = root_[1];
  } else {
    uint8_t raw[8];
    STag res = DirGet(&dir->m, MkTag(0x700, 0x3ff, 0), MkTag(kTypeStruct, TagId(tag), 8), raw);
    if (res < 0) return res;
    pair[0] = GetLe32(raw);
    pair[1] = GetLe32(raw + 4);
  }
  int err = DirFetch(&dir->m, pair);
  if (err) return err;
  dir->head[0] = dir->m.pair[0];
  dir->head[1] = dir->m.pair[1];
  dir->id = 0;
  dir->pos = 0;
  dir->type = kTypeDir;
  MlistAppend(dir);
  return 0;
}

int Core::DirClose(DirState* dir) {
  MlistRemove(dir);
  return 0;
}

int Core::DirRead(DirState* dir, Info* info) {
  *info = Info{};
  if (dir->pos == 0) {
    info->type = kTypeDir;
    info->name = ".";
    dir->pos += 1;
    return 1;
  } else if (dir->pos == 1) {
    info->type = kTypeDir;
    info->name = "..";
    dir->pos += 1;
    return 1;
  }
  Tortoise tortoise;
  while (true) {
    if (dir->id == dir->m.count) {
      if (!dir->m.split) return 0;
      if (tortoise.Check(&dir->m)) return kErrCorrupt;
      int err = DirFetch(&dir->m, dir->m.tail);
      if (err) return err;
      dir->id = 0;
    }
    int err = DirGetInfo(&dir->m, dir->id, info);
    if (err && err != kErrNoEnt) return err;
    dir->id += 1;
    if (err != kErrNoEnt) break;
  }
  dir->pos += 1;
  return 1;
}

int Core::DirSeek(DirState* dir, uint32_t off) {
  int err = DirRewind(dir);
  if (err) return err;
  dir->pos = Min(2, off);
  off -= dir->pos;
  dir->id = (off > 0 && PairCmp(dir->head, root_) == 0);
  Tortoise tortoise;
  while (off > 0) {
    if (dir->id == dir->m.count) {
      if (!dir->m.split) return kErrInval;
      if (tortoise.Check(&dir->m)) return kErrCorrupt;
      err = DirFetch(&dir->m, dir->m.tail);
      if (err) return err;
      dir->id = 0;
    }
    uint32_t diff = Min(dir->m.count - dir->id, off);
    dir->id += diff;
    dir->pos += diff;
    off -= diff;
  }
  return 0;
}

int Core::DirRewind(DirState* dir) {
  int err = DirFetch(&dir->m, dir->head);
  if (err) return err;
  dir->id = 0;
  dir->pos = 0;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// CTZ skip-lists: block i of a file holds ctz(i)+1 back pointers (SPEC.md "CTZ skip-lists").

int Core::CtzIndex(uint32_t* off) const {
  uint32_t size = *off;
  uint32_t b = block_size_ - 2 * 4;
  uint32_t i = size / b;
  if (i == 0) return 0;
  i = (size - 4 * (Popc(i - 1) + 2)) / b;
  *off = size - b * i - 4 * Popc(i);
  return int(i);
}

int Core::CtzFind(const Cache* pcache, Cache* rcache, uint32_t head, uint32_t size, uint32_t pos,
                  uint32_t* block, uint32_t* off) {
  if (size == 0) {
    *block = kBlockNull;
    *off = 0;
    return 0;
  }
  uint32_t last = size - 1;
  uint32_t current = CtzIndex(&last);
  uint32_t target = CtzIndex(&pos);
  while (current > target) {
    uint32_t skip = Min(Npw2(current - target + 1) - 1, Ctz32(current));
    uint8_t raw[4];
    int err = BdRead(pcache, rcache, 4, head, 4 * skip, raw, 4);
    if (err) return err;
    head = GetLe32(raw);
    current -= 1 << skip;
  }
  *block = head;
  *off = pos;
  return 0;
}

int Core::CtzExtend(Cache* pcache, Cache* rcache, uint32_t head, uint32_t size, uint32_t* block,
                    uint32_t* off) {
  while (true) {
    uint32_t nblock;
    int err = Alloc(&nblock);
    if (err) return err;
    {
      err = BdErase(nblock);
      if (err) {
        if (err == kErrCorrupt) goto relocate;
        return err;
      }
      if (size == 0) {
        *block = nblock;
        *off = 0;
        return 0;
      }
      uint32_t noff = size - 1;
      uint32_t index = CtzIndex(&noff);
      noff = noff + 1;
      if (noff != block_size_) {
        for (uint32_t i = 0; i < noff; i++) {
          uint8_t data;
          err = BdRead(nullptr, rcache, noff - i, head, i, &data, 1);
          if (err) return err;
          err = BdProg(pcache, rcache, true, nblock, i, &data, 1);
          if (err) {
            if (err == kErrCorrupt) goto relocate;
            return err;
          }
        }
        *block = nblock;
        *off = noff;
        return 0;
      }
      index += 1;
      uint32_t skips = Ctz32(index) + 1;
      uint32_t nhead = head;
      for (uint32_t i = 0; i < skips; i++) {
        uint8_t raw[4];
        PutLe32(raw, nhead);
        err = BdProg(pcache, rcache, true, nblock, 4 * i, raw, 4);
        if (err) {
          if (err == kErrCorrupt) goto relocate;
          return err;
        }
        if (i != skips - 1) {
          err = BdRead(nullptr, rcache, 4, nhead, 4 * i, raw, 4);
          if (err) return err;
          nhead = GetLe32(raw);
        }
      }
      *block = nblock;
      *off = 4 * skips;
      return 0;
    }
  relocate:
    CacheDrop(pcache);
  }
}

int Core::CtzTraverse(const Cache* pcache, Cache* rcache, uint32_t head, uint32_t size,
                      const std::function<int(uint32_t)>& cb) {
  if (size == 0) return 0;
  uint32_t last = size - 1;
  uint32_t index = CtzIndex(&last);
  if (index >= block_count_) return kErrCorrupt;  // more blocks than the disk has
  while (true) {
    int err = cb(head);
    if (err) return err;
    if (index == 0) return 0;
    uint8_t raw[8];
    int count = 2 - (index & 1);
    err = BdRead(pcache, rcache, count * 4, head, 0, raw, count * 4);
    if (err) return err;
    uint32_t heads[2] = {GetLe32(raw), GetLe32(raw + 4)};
    for (int i = 0; i < count - 1; i++) {
      err = cb(heads[i]);
      if (err) return err;
    }
    head = heads[count - 1];
    index -= count;
  }
}

// ---------------------------------------------------------------------------------------------
// Files.

namespace {
bool PathIsLast(const char* path) {
  uint32_t n = strcspn(path, "/");
  return path[n + strspn(path + n, "/")] == '\0';
}
bool PathIsDir(const char* path) { return path[strcspn(path, "/")] != '\0'; }
}  // namespace

int Core::FileOpen(FileState* file, const char* path, uint32_t flags) {
  if ((flags & kWrOnly) == kWrOnly) {
    int err = ForceConsistency();
    if (err) return err;
  }
  int err = 0;
  file->flags = flags;
  file->pos = 0;
  file->off = 0;
  file->cache.buffer.assign(cache_size_, 0xff);

  STag tag = DirFind(&file->m, &path, &file->id);
  if (tag < 0 && !(tag == kErrNoEnt && PathIsLast(path))) return int(tag);

  file->type = kTypeReg;
  MlistAppend(file);

  if (tag == kErrNoEnt) {
    if (!(flags & kCreat)) {
      err = kErrNoEnt;
      goto cleanup;
    }
    if (PathIsDir(path)) {
      err = kErrNotDir;
      goto cleanup;
    }
    {
      uint32_t nlen = strcspn(path, "/");
      if (nlen > name_max_) {
        err = kErrNameTooLong;
        goto cleanup;
      }
      MAttr a[] = {{MkTag(kTypeCreate, file->id, 0), nullptr},
                   {MkTag(kTypeReg, file->id, nlen), path},
                   {MkTag(kTypeInlineStruct, file->id, 0), nullptr}};
      err = DirCommit(&file->m, a, 3);
      if (err == kErrNoSpc) err = kErrNameTooLong;
      if (err) goto cleanup;
    }
    tag = MkTag(kTypeInlineStruct, 0, 0);
  } else if (flags & kExcl) {
    err = kErrExist;
    goto cleanup;
  } else if (TagType3(tag) != kTypeReg) {
    err = kErrIsDir;
    goto cleanup;
  } else if (flags & kTrunc) {
    tag = MkTag(kTypeInlineStruct, file->id, 0);
    file->flags |= kFDirty;
  } else {
    uint8_t raw[8];
    tag = DirGet(&file->m, MkTag(0x700, 0x3ff, 0), MkTag(kTypeStruct, file->id, 8), raw);
    if (tag < 0) {
      err = tag;
      goto cleanup;
    }
    file->ctz.head = GetLe32(raw);
    file->ctz.size = GetLe32(raw + 4);
    if (TagType3(tag) == kTypeCtzStruct &&
        (file->ctz.size > file_max_ || (file->ctz.size > 0 && file->ctz.head >= block_count_))) {
      device_status_ = Corrupt("file has an impossible CTZ reference");
      err = kErrCorrupt;
      goto cleanup;
    }
  }

  CacheZero(&file->cache);

  if (TagType3(tag) == kTypeInlineStruct) {
    file->ctz.head = kBlockInline;
    file->ctz.size = TagSize(tag);
    file->flags |= kFInline;
    file->cache.block = file->ctz.head;
    file->cache.off = 0;
    file->cache.size = cache_size_;
    if (file->ctz.size > 0) {
      STag res = DirGet(&file->m, MkTag(0x700, 0x3ff, 0),
                        MkTag(kTypeStruct, file->id, Min(file->cache.size, 0x3fe)),
                        file->cache.buffer.data());
      if (res < 0) {
        err = res;
        goto cleanup;
      }
    }
  } else if (TagType3(tag) != kTypeCtzStruct) {
    device_status_ = Corrupt("file entry has an unknown struct type");
    err = kErrCorrupt;
    goto cleanup;
  }
  return 0;

cleanup:
  file->flags |= kFErred;
  FileClose(file);
  return err;
}

int Core::FileClose(FileState* file) {
  int err = FileSync(file);
  MlistRemove(file);
  return err;
}

int Core::FileRelocate(FileState* file) {
  for (uint32_t attempts = 0;; attempts++) {
    if (attempts > block_count_) return kErrNoSpc;
    uint32_t nblock;
    int err = Alloc(&nblock);
    if (err) return err;
    err = BdErase(nblock);
    if (err) {
      if (err == kErrCorrupt) goto relocate;
      return err;
    }
    for (uint32_t i = 0; i < file->off; i++) {
      uint8_t data;
      if (file->flags & kFInline) {
        err = DirGetRead(&file->m, nullptr, &file->cache, file->off - i, MkTag(0xfff, 0x1ff, 0),
                         MkTag(kTypeInlineStruct, file->id, 0), i, &data, 1);
        if (err) return err;
      } else {
        err = BdRead(&file->cache, &rcache_, file->off - i, file->block, i, &data, 1);
        if (err) return err;
      }
      err = BdProg(&pcache_, &rcache_, true, nblock, i, &data, 1);
      if (err) {
        if (err == kErrCorrupt) goto relocate;
        return err;
      }
    }
    file->cache.buffer = pcache_.buffer;
    file->cache.block = pcache_.block;
    file->cache.off = pcache_.off;
    file->cache.size = pcache_.size;
    CacheZero(&pcache_);
    file->block = nblock;
    file->flags |= kFWriting;
    return 0;
  relocate:
    CacheDrop(&pcache_);
  }
}

int Core::FileOutline(FileState* file) {
  file->off = file->pos;
  AllocCkpoint();
  int err = FileRelocate(file);
  if (err) return err;
  file->flags &= ~kFInline;
  return 0;
}

int Core::FileFlush(FileState* file) {
  if (file->flags & kFReading) {
    if (!(file->flags & kFInline)) CacheDrop(&file->cache);
    file->flags &= ~kFReading;
  }
  if (file->flags & kFWriting) {
    uint32_t pos = file->pos;
    if (!(file->flags & kFInline)) {
      FileState orig;
      orig.ctz = file->ctz;
      orig.flags = kRdOnly;
      orig.pos = file->pos;
      orig.cache = rcache_;
      CacheDrop(&rcache_);
      while (file->pos < file->ctz.size) {
        uint8_t data;
        int32_t res = FileFlushedRead(&orig, &data, 1);
        if (res < 0) return res;
        res = FileFlushedWrite(file, &data, 1);
        if (res < 0) return res;
        if (rcache_.block != kBlockNull) {
          CacheDrop(&orig.cache);
          CacheDrop(&rcache_);
        }
      }
      for (uint32_t attempts = 0;; attempts++) {
        int err = BdFlush(&file->cache, &rcache_, true);
        if (!err) break;
        if (err != kErrCorrupt || attempts > block_count_) return err;
        err = FileRelocate(file);
        if (err) return err;
      }
    } else {
      file->pos = Max(file->pos, file->ctz.size);
    }
    file->ctz.head = file->block;
    file->ctz.size = file->pos;
    file->flags &= ~kFWriting;
    file->flags |= kFDirty;
    file->pos = pos;
  }
  return 0;
}

int Core::FileSync(FileState* file) {
  if (file->flags & kFErred) return 0;
  int err = FileFlush(file);
  if (err) {
    file->flags |= kFErred;
    return err;
  }
  if ((file->flags & kFDirty) && !PairIsNull(file->m.pair)) {
    if (!(file->flags & kFInline)) {
      err = BdSync(&pcache_, &rcache_, false);
      if (err) return err;
    }
    uint16_t type;
    const void* buffer;
    uint32_t size;
    uint8_t ctz[8];
    std::vector<uint8_t> inl;
    if (file->flags & kFInline) {
      type = kTypeInlineStruct;
      inl.assign(file->cache.buffer.begin(), file->cache.buffer.begin() + file->ctz.size);
      buffer = inl.data();
      size = file->ctz.size;
    } else {
      type = kTypeCtzStruct;
      PutLe32(ctz, file->ctz.head);
      PutLe32(ctz + 4, file->ctz.size);
      buffer = ctz;
      size = 8;
    }
    MAttr a[] = {{MkTag(type, file->id, size), buffer}};
    err = DirCommit(&file->m, a, 1);
    if (err) {
      file->flags |= kFErred;
      return err;
    }
    file->flags &= ~kFDirty;
  }
  if (file->flags & kFDirty) return 0;
  return 0;
}

int32_t Core::FileFlushedRead(FileState* file, uint8_t* data, uint32_t size) {
  if (file->pos >= file->ctz.size) return 0;
  size = Min(size, file->ctz.size - file->pos);
  uint32_t nsize = size;
  while (nsize > 0) {
    if (!(file->flags & kFReading) || file->off == block_size_) {
      if (!(file->flags & kFInline)) {
        int err = CtzFind(nullptr, &file->cache, file->ctz.head, file->ctz.size, file->pos,
                          &file->block, &file->off);
        if (err) return err;
      } else {
        file->block = kBlockInline;
        file->off = file->pos;
      }
      file->flags |= kFReading;
    }
    uint32_t diff = Min(nsize, block_size_ - file->off);
    if (file->flags & kFInline) {
      int err = DirGetRead(&file->m, nullptr, &file->cache, block_size_, MkTag(0xfff, 0x1ff, 0),
                           MkTag(kTypeInlineStruct, file->id, 0), file->off, data, diff);
      if (err) return err;
    } else {
      int err = BdRead(nullptr, &file->cache, block_size_, file->block, file->off, data, diff);
      if (err) return err;
    }
    file->pos += diff;
    file->off += diff;
    data += diff;
    nsize -= diff;
  }
  return int32_t(size);
}

int32_t Core::FileRead(FileState* file, uint8_t* buffer, uint32_t size) {
  if ((file->flags & kRdOnly) != kRdOnly) return kErrBadF;
  if (file->flags & kFWriting) {
    int err = FileFlush(file);
    if (err) return err;
  }
  return FileFlushedRead(file, buffer, size);
}

int32_t Core::FileFlushedWrite(FileState* file, const uint8_t* data, uint32_t size) {
  uint32_t nsize = size;
  if ((file->flags & kFInline) && Max(file->pos + nsize, file->ctz.size) > inline_max_) {
    int err = FileOutline(file);
    if (err) {
      file->flags |= kFErred;
      return err;
    }
  }
  while (nsize > 0) {
    if (!(file->flags & kFWriting) || file->off == block_size_) {
      if (!(file->flags & kFInline)) {
        if (!(file->flags & kFWriting) && file->pos > 0) {
          uint32_t dummy;
          int err = CtzFind(nullptr, &file->cache, file->ctz.head, file->ctz.size, file->pos - 1,
                            &file->block, &dummy);
          if (err) {
            file->flags |= kFErred;
            return err;
          }
          CacheZero(&file->cache);
        }
        AllocCkpoint();
        int err = CtzExtend(&file->cache, &rcache_, file->block, file->pos, &file->block, &file->off);
        if (err) {
          file->flags |= kFErred;
          return err;
        }
      } else {
        file->block = kBlockInline;
        file->off = file->pos;
      }
      file->flags |= kFWriting;
    }
    uint32_t diff = Min(nsize, block_size_ - file->off);
    for (uint32_t attempts = 0;; attempts++) {
      int err = BdProg(&file->cache, &rcache_, true, file->block, file->off, data, diff);
      if (!err) break;
      if (err != kErrCorrupt || attempts > block_count_) {
        file->flags |= kFErred;
        return err;
      }
      err = FileRelocate(file);
      if (err) {
        file->flags |= kFErred;
        return err;
      }
    }
    file->pos += diff;
    file->off += diff;
    data += diff;
    nsize -= diff;
    AllocCkpoint();
  }
  return int32_t(size);
}

int32_t Core::FileWrite(FileState* file, const uint8_t* buffer, uint32_t size) {
  if ((file->flags & kWrOnly) != kWrOnly) return kErrBadF;
  if (file->flags & kFReading) {
    int err = FileFlush(file);
    if (err) return err;
  }
  if ((file->flags & kAppend) && file->pos < file->ctz.size) file->pos = file->ctz.size;
  if (uint64_t(file->pos) + size > file_max_) return kErrFBig;
  if (!(file->flags & kFWriting) && file->pos > file->ctz.size) {
    uint32_t pos = file->pos;
    file->pos = file->ctz.size;
    while (file->pos < pos) {
      uint8_t zero = 0;
      int32_t res = FileFlushedWrite(file, &zero, 1);
      if (res < 0) return res;
    }
  }
  int32_t nsize = FileFlushedWrite(file, buffer, size);
  if (nsize < 0) return nsize;
  file->flags &= ~kFErred;
  return nsize;
}

uint32_t Core::FileSize(const FileState* file) const {
  if (file->flags & kFWriting) return Max(file->pos, file->ctz.size);
  return file->ctz.size;
}

int64_t Core::FileSeek(FileState* file, int64_t off, Whence whence) {
  int64_t npos = file->pos;
  if (whence == Whence::kSet) {
    npos = off;
  } else if (whence == Whence::kCur) {
    npos = int64_t(file->pos) + off;
  } else {
    npos = int64_t(FileSize(file)) + off;
  }
  if (npos < 0 || npos > int64_t(file_max_)) return kErrInval;
  if (file->pos == npos) return npos;
  if ((file->flags & kFReading) && file->off != block_size_) {
    uint32_t opos = file->pos;
    int oindex = CtzIndex(&opos);
    uint32_t noff = uint32_t(npos);
    int nindex = CtzIndex(&noff);
    if (oindex == nindex && noff >= file->cache.off && noff < file->cache.off + file->cache.size) {
      file->pos = uint32_t(npos);
      file->off = noff;
      return npos;
    }
  }
  int err = FileFlush(file);
  if (err) return err;
  file->pos = uint32_t(npos);
  return npos;
}

int Core::FileTruncate(FileState* file, uint32_t size) {
  if ((file->flags & kWrOnly) != kWrOnly) return kErrBadF;
  if (size > file_max_) return kErrInval;
  uint32_t pos = file->pos;
  uint32_t oldsize = FileSize(file);
  if (size < oldsize) {
    if (size <= inline_max_) {
      int64_t res = FileSeek(file, 0, Whence::kSet);
      if (res < 0) return int(res);
      CacheDrop(&rcache_);
      std::vector<uint8_t> tmp(Max(size, 1));
      res = FileFlushedRead(file, tmp.data(), size);
      if (res < 0) return int(res);
      file->ctz.head = kBlockInline;
      file->ctz.size = size;
      file->flags |= kFDirty | kFReading | kFInline;
      file->cache.block = file->ctz.head;
      file->cache.off = 0;
      file->cache.size = cache_size_;
      std::memcpy(file->cache.buffer.data(), tmp.data(), size);
    } else {
      int err = FileFlush(file);
      if (err) return err;
      uint32_t dummy;
      err = CtzFind(nullptr, &file->cache, file->ctz.head, file->ctz.size, size - 1, &file->block,
                    &dummy);
      if (err) return err;
      file->pos = size;
      file->ctz.head = file->block;
      file->ctz.size = size;
      file->flags |= kFDirty | kFReading;
    }
  } else if (size > oldsize) {
    int64_t res = FileSeek(file, 0, Whence::kEnd);
    if (res < 0) return int(res);
    while (file->pos < size) {
      uint8_t zero = 0;
      int32_t r = FileWrite(file, &zero, 1);
      if (r < 0) return r;
    }
  }
  int64_t res = FileSeek(file, pos, Whence::kSet);
  if (res < 0) return int(res);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Namespace operations.

int Core::Stat(const char* path, Info* info) {
  MDir cwd;
  STag tag = DirFind(&cwd, &path, nullptr);
  if (tag < 0) return int(tag);
  if (strchr(path, '/') != nullptr && TagType3(tag) != kTypeDir) return kErrNotDir;
  return DirGetInfo(&cwd, TagId(tag), info);
}

// Before directory entry `id` of `parent` is removed or replaced: fetches the directory it names into
// dir->m, refuses a non-empty one, counts it as an orphan until it is dropped, and tracks it in
// mlist_ so that commits in between keep it up to date (littlefs's remove/rename sequence).
int Core::PrepDirRemoval(MDir* parent, uint16_t id, MList* dir) {
  uint8_t raw[8];
  STag res = DirGet(parent, MkTag(0x700, 0x3ff, 0), MkTag(kTypeStruct, id, 8), raw);
  if (res < 0) return int(res);
  uint32_t pair[2] = {GetLe32(raw), GetLe32(raw + 4)};
  int err = DirFetch(&dir->m, pair);
  if (err) return err;
  if (dir->m.count > 0 || dir->m.split) return kErrNotEmpty;
  err = PrepOrphans(+1);
  if (err) return err;
  dir->type = 0;
  dir->id = 0;
  mlist_ = dir;
  return 0;
}

// After the commit that removed or replaced an entry: if it was a directory (PrepDirRemoval counted
// it as an orphan), unlinks it from the metadata thread (its predecessor is found into *pred) and
// takes the orphan count back down.
int Core::DropRemovedDir(MDir* pred, MList* dir) {
  if (!GHasOrphans(&gstate_)) return 0;
  int err = PrepOrphans(-1);
  if (err) return err;
  err = FsPred(dir->m.pair, pred);
  if (err) return err;
  return DirDrop(pred, &dir->m);
}

int Core::Remove(const char* path) {
  int err = ForceConsistency();
  if (err) return err;
  MDir cwd;
  STag tag = DirFind(&cwd, &path, nullptr);
  if (tag < 0 || TagId(tag) == 0x3ff) return tag < 0 ? int(tag) : kErrInval;

  MList dir;
  dir.next = mlist_;
  if (TagType3(tag) == kTypeDir) {
    err = PrepDirRemoval(&cwd, TagId(tag), &dir);
    if (err) return err;
  }

  MAttr a[] = {{MkTag(kTypeDelete, TagId(tag), 0), nullptr}};
  err = DirCommit(&cwd, a, 1);
  mlist_ = dir.next;
  if (err) return err;

  return DropRemovedDir(&cwd, &dir);
}

int Core::Rename(const char* oldpath, const char* newpath) {
  int err = ForceConsistency();
  if (err) return err;
  MDir oldcwd;
  STag oldtag = DirFind(&oldcwd, &oldpath, nullptr);
  if (oldtag < 0 || TagId(oldtag) == 0x3ff) return oldtag < 0 ? int(oldtag) : kErrInval;

  MDir newcwd;
  uint16_t newid = 0;
  STag prevtag = DirFind(&newcwd, &newpath, &newid);
  if ((prevtag < 0 || TagId(prevtag) == 0x3ff) && !(prevtag == kErrNoEnt && PathIsLast(newpath))) {
    return prevtag < 0 ? int(prevtag) : kErrInval;
  }

  bool samepair = PairCmp(oldcwd.pair, newcwd.pair) == 0;
  uint16_t newoldid = TagId(oldtag);

  MList prevdir;
  prevdir.next = mlist_;
  if (prevtag == kErrNoEnt) {
    if (PathIsDir(newpath) && TagType3(oldtag) != kTypeDir) return kErrNotDir;
    uint32_t nlen = strcspn(newpath, "/");
    if (nlen > name_max_) return kErrNameTooLong;
    if (samepair && newid <= newoldid) newoldid += 1;
  } else if (TagType3(prevtag) != TagType3(oldtag)) {
    return TagType3(prevtag) == kTypeDir ? kErrIsDir : kErrNotDir;
  } else if (samepair && newid == newoldid) {
    return 0;
  } else if (TagType3(prevtag) == kTypeDir) {
    // the directory being replaced must be empty; it becomes an orphan until dropped
    err = PrepDirRemoval(&newcwd, newid, &prevdir);
    if (err) return err;
  }

  if (!samepair) PrepMove(newoldid, oldcwd.pair);

  MAttr a[] = {{MkTagIf(prevtag != kErrNoEnt, kTypeDelete, newid, 0), nullptr},
               {MkTag(kTypeCreate, newid, 0), nullptr},
               {MkTag(TagType3(oldtag), newid, strcspn(newpath, "/")), newpath},
               {MkTag(kFromMove, newid, TagId(oldtag)), &oldcwd},
               {MkTagIf(samepair, kTypeDelete, newoldid, 0), nullptr}};
  err = DirCommit(&newcwd, a, 5);
  if (err) {
    mlist_ = prevdir.next;
    return err;
  }

  if (!samepair && GHasMove(&gstate_)) {
    PrepMove(0x3ff, nullptr);
    MAttr d[] = {{MkTag(kTypeDelete, TagId(oldtag), 0), nullptr}};
    err = DirCommit(&oldcwd, d, 1);
    if (err) {
      mlist_ = prevdir.next;
      return err;
    }
  }

  mlist_ = prevdir.next;
  return DropRemovedDir(&newcwd, &prevdir);
}

int32_t Core::GetAttr(const char* path, uint8_t type, void* buffer, uint32_t size) {
  MDir cwd;
  STag tag = DirFind(&cwd, &path, nullptr);
  if (tag < 0) return tag;
  uint16_t id = TagId(tag);
  if (id == 0x3ff) {
    id = 0;
    int err = DirFetch(&cwd, root_);
    if (err) return err;
  }
  tag = DirGet(&cwd, MkTag(0x7ff, 0x3ff, 0), MkTag(kTypeUserAttr + type, id, Min(size, attr_max_)),
               buffer);
  if (tag < 0) return tag == kErrNoEnt ? kErrNoAttr : tag;
  return int32_t(TagSize(tag));
}

int Core::SetAttr(const char* path, uint8_t type, const void* buffer, uint32_t size) {
  if (size > attr_max_) return kErrNoSpc;
  MDir cwd;
  STag tag = DirFind(&cwd, &path, nullptr);
  if (tag < 0) return tag;
  uint16_t id = TagId(tag);
  if (id == 0x3ff) {
    id = 0;
    int err = DirFetch(&cwd, root_);
    if (err) return err;
  }
  MAttr a[] = {{MkTag(kTypeUserAttr + type, id, size), buffer}};
  return DirCommit(&cwd, a, 1);
}

int Core::RemoveAttr(const char* path, uint8_t type) {
  MDir cwd;
  STag tag = DirFind(&cwd, &path, nullptr);
  if (tag < 0) return tag;
  uint16_t id = TagId(tag);
  if (id == 0x3ff) {
    id = 0;
    int err = DirFetch(&cwd, root_);
    if (err) return err;
  }
  MAttr a[] = {{MkTag(kTypeUserAttr + type, id, 0x3ff), nullptr}};
  return DirCommit(&cwd, a, 1);
}

// ---------------------------------------------------------------------------------------------
// Init, format, mount.

int Core::Init(bool for_format) {
  const BlockGeometry& g = device_.geometry();
  auto bad = [&](const std::string& why) {
    device_status_ = InvalidArgument(why);
    return kErrDevice;
  };
  block_size_ = cfg_.block_size ? cfg_.block_size : g.block_size;
  read_size_ = cfg_.read_size ? cfg_.read_size : g.read_size;
  prog_size_ = cfg_.prog_size ? cfg_.prog_size : g.prog_size;
  if (!read_size_ || !prog_size_ || !block_size_) return bad("read, prog and block sizes must be non-zero");
  if (g.read_size && read_size_ % g.read_size) return bad("read_size must be a multiple of the device read size");
  if (g.prog_size && prog_size_ % g.prog_size) return bad("prog_size must be a multiple of the device prog size");
  cache_size_ = cfg_.cache_size ? cfg_.cache_size : Max(read_size_, prog_size_);
  if (cache_size_ % read_size_ || cache_size_ % prog_size_) {
    return bad("cache_size must be a multiple of read_size and prog_size");
  }
  if (block_size_ % cache_size_) return bad("block_size must be a multiple of cache_size");
  if (block_size_ < 128) return bad("block_size must be at least 128");
  if (4 * Npw2(0xffffffff / (block_size_ - 2 * 4)) > block_size_) return bad("block_size too small");
  if (block_size_ % g.block_size && g.block_size % block_size_) {
    return bad("block_size must be a multiple or a divisor of the device block size");
  }
  uint64_t dev_blocks = g.total_bytes() / block_size_;
  block_count_ = cfg_.block_count;
  if (block_count_ > dev_blocks) return bad("block_count exceeds the device");
  if (for_format && !block_count_) block_count_ = uint32_t(dev_blocks);
  if (for_format && block_count_ < 2) return bad("block_count must be at least 2");
  block_cycles_ = cfg_.block_cycles;
  if (block_cycles_ == 0) return bad("block_cycles must be non-zero (-1 disables wear levelling)");
  lookahead_size_ = cfg_.lookahead_size ? cfg_.lookahead_size : 16;
  metadata_max_ = cfg_.metadata_max;
  if (metadata_max_ && (metadata_max_ > block_size_ || metadata_max_ % read_size_ ||
                        metadata_max_ % prog_size_ || block_size_ % metadata_max_)) {
    return bad("metadata_max must divide block_size and be a multiple of read/prog size");
  }
  name_max_ = cfg_.name_max ? cfg_.name_max : kNameMax;
  file_max_ = cfg_.file_max ? cfg_.file_max : kFileMax;
  attr_max_ = cfg_.attr_max ? cfg_.attr_max : kAttrMax;
  if (name_max_ > kNameMax || file_max_ > kFileMax || attr_max_ > kAttrMax) {
    return bad("name_max <= 255, file_max <= 2147483647, attr_max <= 1022");
  }
  uint32_t mmax = metadata_max_ ? metadata_max_ : block_size_;
  if (cfg_.inline_max == 0xffffffff) {
    inline_max_ = 0;
  } else if (cfg_.inline_max == 0) {
    inline_max_ = Min(cache_size_, Min(attr_max_, mmax / 8));
  } else {
    if (cfg_.inline_max > cache_size_ || cfg_.inline_max > attr_max_ || cfg_.inline_max > mmax / 8) {
      return bad("inline_max must be <= cache_size, attr_max and block_size/8");
    }
    inline_max_ = cfg_.inline_max;
  }
  rcache_.buffer.assign(cache_size_, 0xff);
  pcache_.buffer.assign(cache_size_, 0xff);
  CacheZero(&rcache_);
  CacheZero(&pcache_);
  lookahead_.buffer.assign(lookahead_size_, 0);
  root_[0] = root_[1] = kBlockNull;
  mlist_ = nullptr;
  seed_ = 0;
  gdisk_ = gstate_ = gdelta_ = GState{};
  return 0;
}

int Core::Format() {
  int err = Init(true);
  if (err) return err;
  disk_version_ = uint32_t(cfg_.disk_version);
  if (disk_version_ != 0x00020000 && disk_version_ != 0x00020001) {
    device_status_ = Unsupported("disk version must be 2.0 or 2.1");
    return kErrDevice;
  }
  std::fill(lookahead_.buffer.begin(), lookahead_.buffer.end(), 0);
  lookahead_.start = 0;
  lookahead_.size = Min(8 * lookahead_size_, block_count_);
  lookahead_.next = 0;
  AllocCkpoint();

  MDir root;
  err = DirAlloc(&root);
  if (err) return err;
  SuperblockRaw sb{disk_version_, block_size_, block_count_, name_max_, file_max_, attr_max_};
  uint8_t raw[24];
  sb.ToLe(raw);
  MAttr a[] = {{MkTag(kTypeCreate, 0, 0), nullptr},
               {MkTag(kTypeSuperblock, 0, 8), "littlefs"},
               {MkTag(kTypeInlineStruct, 0, 24), raw}};
  err = DirCommit(&root, a, 3);
  if (err) return err;
  // force a compaction so an older filesystem left on the disk cannot be mounted
  root.erased = false;
  err = DirCommit(&root, nullptr, 0);
  if (err) return err;
  const uint32_t superpair[2] = {0, 1};
  return DirFetch(&root, superpair);
}

int Core::Mount() {
  int err = Init(false);
  if (err) return err;
  if (!block_count_) {
    // until the superblock tells us, allow reads anywhere on the device
    block_count_ = uint32_t(device_.geometry().total_bytes() / block_size_);
  }
  const uint32_t configured_count = cfg_.block_count;
  bool found = false;
  MDir dir;
  dir.tail[0] = 0;
  dir.tail[1] = 1;
  Tortoise tortoise;
  while (!PairIsNull(dir.tail)) {
    if (tortoise.Check(&dir)) {
      device_status_ = Corrupt("cycle in the metadata tail list");
      return kErrCorrupt;
    }
    std::function<int(Tag, uint32_t, uint32_t)> match = [&](Tag t, uint32_t b, uint32_t o) {
      return FindMatch("littlefs", 8, t, b, o);
    };
    STag tag = DirFetchMatch(&dir, dir.tail, MkTag(0x7ff, 0x3ff, 0), MkTag(kTypeSuperblock, 0, 8),
                             nullptr, &match);
    if (tag < 0) return tag;
    if (tag && !TagIsDelete(tag)) {
      root_[0] = dir.pair[0];
      root_[1] = dir.pair[1];
      uint8_t raw[24];
      tag = DirGet(&dir, MkTag(0x7ff, 0x3ff, 0), MkTag(kTypeInlineStruct, 0, 24), raw);
      if (tag < 0) return tag;
      SuperblockRaw sb;
      sb.FromLe(raw);
      uint16_t major = sb.version >> 16, minor = sb.version & 0xffff;
      if (major != 2 || minor > 1) {
        device_status_ = Unsupported("littlefs disk version " + std::to_string(major) + "." +
                                     std::to_string(minor) + " is not supported (2.0 and 2.1 are)");
        return kErrDevice;
      }
      disk_version_ = sb.version;  // keep the disk's version: never upgrade a 2.0 disk
      PrepSuperblock(false);
      if (sb.name_max) {
        if (sb.name_max > name_max_) {
          device_status_ = InvalidArgument("image name_max " + std::to_string(sb.name_max) +
                                           " exceeds the configured " + std::to_string(name_max_));
          return kErrDevice;
        }
        name_max_ = sb.name_max;
      }
      if (sb.file_max) {
        if (sb.file_max > file_max_) {
          device_status_ = InvalidArgument("image file_max exceeds the configured limit");
          return kErrDevice;
        }
        file_max_ = sb.file_max;
      }
      if (sb.attr_max) {
        if (sb.attr_max > attr_max_) {
          device_status_ = InvalidArgument("image attr_max exceeds the configured limit");
          return kErrDevice;
        }
        attr_max_ = sb.attr_max;
        inline_max_ = Min(inline_max_, attr_max_);
      }
      if (configured_count && sb.block_count != configured_count) {
        device_status_ = InvalidArgument("image has " + std::to_string(sb.block_count) +
                                         " blocks, configured " + std::to_string(configured_count));
        return kErrDevice;
      }
      if (sb.block_size != block_size_) {
        device_status_ = InvalidArgument("image block size is " + std::to_string(sb.block_size) +
                                         ", configured " + std::to_string(block_size_));
        return kErrDevice;
      }
      if (sb.block_count < 2 || uint64_t(sb.block_count) * block_size_ > device_.geometry().total_bytes()) {
        device_status_ = Corrupt("superblock block count " + std::to_string(sb.block_count) +
                                 " does not fit the device");
        return kErrCorrupt;
      }
      block_count_ = sb.block_count;
      found = true;
      info_ = FsInfo{DiskVersion(sb.version), block_size_, block_count_, name_max_, file_max_,
                     attr_max_};
    }
    err = DirGetGState(&dir, &gstate_);
    if (err) return err;
  }
  if (!found) {
    device_status_ = Corrupt("no littlefs superblock found");
    return kErrCorrupt;
  }
  gstate_.tag += !TagIsValid(gstate_.tag);
  gdisk_ = gstate_;
  if (GHasMove(&gstate_) && TagType3(gstate_.tag) != kTypeDelete) {
    device_status_ = Corrupt("global state holds an unknown move type");
    return kErrCorrupt;
  }
  lookahead_.start = seed_ % block_count_;
  AllocDrop();
  if (GHasMove(&gdisk_)) {
    // A rename was interrupted between its two commits. littlefs repairs this lazily on the
    // first write and, until then, its synthetic-move id mapping hides the entries after the
    // moved one from lookups and listings. Finish the move now so reads see the whole tree;
    // if the device refuses writes, keep the pending state and mount anyway.
    GState saved = gstate_;
    int err = DeMove();
    if (err) {
      gstate_ = saved;
      gdisk_ = saved;
      CacheDrop(&pcache_);
      CacheDrop(&rcache_);
      AllocDrop();
      device_status_ = Status::Ok();
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Whole-filesystem operations.

int Core::FsTraverse(const std::function<int(uint32_t)>& cb, bool includeorphans) {
  MDir dir;
  dir.tail[0] = 0;
  dir.tail[1] = 1;
  Tortoise tortoise;
  while (!PairIsNull(dir.tail)) {
    if (tortoise.Check(&dir)) return kErrCorrupt;
    for (int i = 0; i < 2; i++) {
      int err = cb(dir.tail[i]);
      if (err) return err;
    }
    int err = DirFetch(&dir, dir.tail);
    if (err) return err;
    for (uint16_t id = 0; id < dir.count; id++) {
      uint8_t raw[8];
      STag tag = DirGet(&dir, MkTag(0x700, 0x3ff, 0), MkTag(kTypeStruct, id, 8), raw);
      if (tag < 0) {
        if (tag == kErrNoEnt) continue;
        return tag;
      }
      uint32_t a = GetLe32(raw), b = GetLe32(raw + 4);
      if (TagType3(tag) == kTypeCtzStruct) {
        err = CtzTraverse(nullptr, &rcache_, a, b, cb);
        if (err) return err;
      } else if (includeorphans && TagType3(tag) == kTypeDirStruct) {
        err = cb(a);
        if (err) return err;
        err = cb(b);
        if (err) return err;
      }
    }
  }
  for (MList* m = mlist_; m; m = m->next) {
    if (m->type != kTypeReg) continue;
    FileState* f = static_cast<FileState*>(m);
    if ((f->flags & kFDirty) && !(f->flags & kFInline)) {
      int err = CtzTraverse(&f->cache, &rcache_, f->ctz.head, f->ctz.size, cb);
      if (err) return err;
    }
    if ((f->flags & kFWriting) && !(f->flags & kFInline)) {
      int err = CtzTraverse(&f->cache, &rcache_, f->block, f->pos, cb);
      if (err) return err;
    }
  }
  return 0;
}

int Core::FsPred(const uint32_t pair[2], MDir* pdir) {
  pdir->tail[0] = 0;
  pdir->tail[1] = 1;
  Tortoise tortoise;
  while (!PairIsNull(pdir->tail)) {
    if (tortoise.Check(pdir)) return kErrCorrupt;
    if (PairCmp(pdir->tail, pair) == 0) return 0;
    int err = DirFetch(pdir, pdir->tail);
    if (err) return err;
  }
  return kErrNoEnt;
}

STag Core::FsParent(const uint32_t pair[2], MDir* parent) {
  parent->tail[0] = 0;
  parent->tail[1] = 1;
  Tortoise tortoise;
  uint32_t want[2] = {pair[0], pair[1]};
  std::function<int(Tag, uint32_t, uint32_t)> match = [&](Tag, uint32_t b, uint32_t o) {
    uint8_t raw[8];
    int err = BdRead(&pcache_, &rcache_, block_size_, b, o, raw, 8);
    if (err) return err;
    uint32_t child[2] = {GetLe32(raw), GetLe32(raw + 4)};
    return PairCmp(child, want) == 0 ? int(kCmpEq) : int(kCmpLt);
  };
  while (!PairIsNull(parent->tail)) {
    if (tortoise.Check(parent)) return kErrCorrupt;
    STag tag = DirFetchMatch(parent, parent->tail, MkTag(0x7ff, 0, 0x3ff),
                             MkTag(kTypeDirStruct, 0, 8), nullptr, &match);
    if (tag && tag != kErrNoEnt) return tag;
  }
  return kErrNoEnt;
}

void Core::PrepSuperblock(bool needs) {
  gstate_.tag = (gstate_.tag & ~MkTag(0, 0, 0x200)) | (uint32_t(needs) << 9);
}

int Core::PrepOrphans(int8_t orphans) {
  gstate_.tag += int32_t(orphans);
  gstate_.tag = (gstate_.tag & ~MkTag(0x800, 0, 0)) | (uint32_t(GHasOrphans(&gstate_)) << 31);
  return 0;
}

void Core::PrepMove(uint16_t id, const uint32_t pair[2]) {
  gstate_.tag = (gstate_.tag & ~MkTag(0x7ff, 0x3ff, 0)) |
                ((id != 0x3ff) ? MkTag(kTypeDelete, id, 0) : 0);
  gstate_.pair[0] = (id != 0x3ff) ? pair[0] : 0;
  gstate_.pair[1] = (id != 0x3ff) ? pair[1] : 0;
}

int Core::DeSuperblock() {
  // We never rewrite the superblock to a newer minor version (see docs/format/littlefs.md).
  PrepSuperblock(false);
  return 0;
}

int Core::DeMove() {
  if (!GHasMove(&gdisk_)) return 0;
  if (TagType3(gdisk_.tag) != kTypeDelete) return kErrCorrupt;
  MDir movedir;
  int err = DirFetch(&movedir, gdisk_.pair);
  if (err) return err;
  uint16_t moveid = TagId(gdisk_.tag);
  PrepMove(0x3ff, nullptr);
  MAttr a[] = {{MkTag(kTypeDelete, moveid, 0), nullptr}};
  return DirCommit(&movedir, a, 1);
}

int Core::DeOrphan(bool powerloss) {
  if (!GHasOrphans(&gstate_)) return 0;
  int pass = 0;
  uint32_t rounds = 0;
  while (pass < 2) {
    if (++rounds > 4 * block_count_ + 8) return kErrCorrupt;
    MDir pdir;
    pdir.split = true;
    pdir.tail[0] = 0;
    pdir.tail[1] = 1;
    MDir dir;
    bool moreorphans = false;
    uint32_t steps = 0;
    while (!PairIsNull(pdir.tail)) {
      if (++steps > 4 * block_count_ + 8) return kErrCorrupt;
      int err = DirFetch(&dir, pdir.tail);
      if (err) return err;
      if (!pdir.split) {
        MDir parent;
        STag tag = FsParent(pdir.tail, &parent);
        if (tag < 0 && tag != kErrNoEnt) return tag;
        if (pass == 0 && tag != kErrNoEnt) {
          uint8_t raw[8];
          STag state = DirGet(&parent, MkTag(0x7ff, 0x3ff, 0), Tag(tag), raw);
          if (state < 0) return state;
          uint32_t pair[2] = {GetLe32(raw), GetLe32(raw + 4)};
          if (!PairIsSync(pair, pdir.tail)) {
            uint16_t moveid = 0x3ff;
            if (GHasMoveHere(&gstate_, pdir.pair)) {
              moveid = TagId(gstate_.tag);
              PrepMove(0x3ff, nullptr);
            }
            LePair lp(pair);
            MAttr a[] = {{MkTagIf(moveid != 0x3ff, kTypeDelete, moveid, 0), nullptr},
                         {MkTag(kTypeSoftTail, 0x3ff, 8), lp.b}};
            int st = DirOrphaningCommit(&pdir, a, 2);
            if (st < 0) return st;
            if (st == kOkOrphaned) moreorphans = true;
            continue;
          }
        }
        if (pass == 1 && tag == kErrNoEnt && powerloss) {
          err = DirGetGState(&dir, &gdelta_);
          if (err) return err;
          LePair lp(dir.tail);
          MAttr a[] = {{MkTag(kTypeTail + dir.split, 0x3ff, 8), lp.b}};
          int st = DirOrphaningCommit(&pdir, a, 1);
          if (st < 0) return st;
          if (st == kOkOrphaned) moreorphans = true;
          continue;
        }
      }
      pdir = dir;
    }
    pass = moreorphans ? 0 : pass + 1;
  }
  return PrepOrphans(-int8_t(GGetOrphans(&gstate_)));
}

int Core::ForceConsistency() {
  int err = DeSuperblock();
  if (err) return err;
  err = DeMove();
  if (err) return err;
  return DeOrphan(true);
}

int Core::MkConsistent() {
  int err = ForceConsistency();
  if (err) return err;
  GState delta{};
  GXor(&delta, &gdisk_);
  GXor(&delta, &gstate_);
  if (!GIsZero(&delta)) {
    MDir root;
    err = DirFetch(&root, root_);
    if (err) return err;
    err = DirCommit(&root, nullptr, 0);
    if (err) return err;
  }
  return 0;
}

int32_t Core::FsSize() {
  uint32_t size = 0;
  int err = FsTraverse(
      [&](uint32_t) {
        size += 1;
        return 0;
      },
      false);
  if (err) return err;
  return int32_t(size);
}

int Core::Gc() {
  int err = ForceConsistency();
  if (err) return err;
  // compact_thresh = 0: compact metadata past 7/8 of a block (littlefs's default)
  MDir mdir;
  mdir.tail[0] = 0;
  mdir.tail[1] = 1;
  Tortoise tortoise;
  while (!PairIsNull(mdir.tail)) {
    if (tortoise.Check(&mdir)) return kErrCorrupt;
    err = DirFetch(&mdir, mdir.tail);
    if (err) return err;
    if (!mdir.erased || mdir.off > block_size_ - block_size_ / 8) {
      mdir.erased = false;
      err = DirCommit(&mdir, nullptr, 0);
      if (err) return err;
    }
  }
  if (lookahead_.size < Min(8 * lookahead_size_, block_count_)) {
    err = AllocScan();
    if (err) return err;
  }
  return 0;
}

int Core::Grow(uint32_t block_count) {
  if (block_count == block_count_) return 0;
  if (block_count < block_count_) {
    device_status_ = InvalidArgument("shrinking a filesystem is not supported");
    return kErrDevice;
  }
  if (uint64_t(block_count) * block_size_ > device_.geometry().total_bytes()) {
    device_status_ = InvalidArgument("the device has fewer blocks than requested");
    return kErrDevice;
  }
  int err = ForceConsistency();
  if (err) return err;
  uint32_t old = block_count_;
  block_count_ = block_count;
  MDir root;
  err = DirFetch(&root, root_);
  if (err) {
    block_count_ = old;
    return err;
  }
  uint8_t raw[24];
  STag tag = DirGet(&root, MkTag(0x7ff, 0x3ff, 0), MkTag(kTypeInlineStruct, 0, 24), raw);
  if (tag < 0) {
    block_count_ = old;
    return tag;
  }
  SuperblockRaw sb;
  sb.FromLe(raw);
  sb.block_count = block_count_;
  sb.ToLe(raw);
  MAttr a[] = {{Tag(tag), raw}};
  err = DirCommit(&root, a, 1);
  if (err) {
    block_count_ = old;
    return err;
  }
  info_.block_count = block_count_;
  return 0;
}

void Core::MlistRemove(MList* node) {
  for (MList** p = &mlist_; *p; p = &(*p)->next) {
    if (*p == node) {
      *p = (*p)->next;
      break;
    }
  }
}

void Core::MlistAppend(MList* node) {
  node->next = mlist_;
  mlist_ = node;
}

int Core::CloseAll() {
  int first = 0;
  while (mlist_) {
    MList* m = mlist_;
    int err = 0;
    if (m->type == kTypeReg) {
      err = FileClose(static_cast<FileState*>(m));
    } else {
      MlistRemove(m);
    }
    if (err && !first) first = err;
  }
  return first;
}

bool Core::IsOpen(const MList* node) const {
  for (MList* p = mlist_; p; p = p->next) {
    if (p == node) return true;
  }
  return false;
}

}  // namespace coffer::fs::internal
