// Conformance suite in the spirit of littlefs's own tests (dirs, files, seek, truncate, rename,
// attributes, orphans, moves, relocations, bad blocks, exhaustion), swept over geometries.
#include "coffer/fs/filesystem.h"

#include <algorithm>
#include <map>
#include <random>

#include "fs/fs_test_util.h"
#include "gtest/gtest.h"

namespace coffer::fs {
namespace {

using testing::Geometry;
using testing::Pattern;

#define ASSERT_OK(expr)                                  \
  do {                                                   \
    auto s_ = (expr);                                    \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.ToString(); \
  } while (0)

class FsTest : public ::testing::TestWithParam<Geometry> {
 protected:
  void SetUp() override {
    g_ = GetParam();
    dev_ = std::make_unique<MemoryBlockDevice>(testing::ToBlockGeometry(g_), 0);
    ASSERT_OK(Filesystem::Format(*dev_, cfg()));
    Remount();
  }
  Config cfg(int32_t cycles = 500) const { return testing::ToConfig(g_, cycles); }
  void Remount(BlockDevice* dev = nullptr, int32_t cycles = 500) {
    if (fs_) ASSERT_OK(fs_->Unmount());
    fs_.reset();
    auto m = Filesystem::Mount(dev ? *dev : *dev_, cfg(cycles));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    fs_ = std::move(*m);
  }
  Status WriteFile(const std::string& path, const std::vector<uint8_t>& data,
                   uint32_t flags = kWrOnly | kCreat | kTrunc) {
    auto f = fs_->Open(path, flags);
    if (!f.ok()) return f.status();
    size_t off = 0;
    while (off < data.size()) {  // write in uneven chunks to exercise the caches
      size_t n = std::min<size_t>(data.size() - off, 1 + (off * 7 + 13) % 777);
      auto w = f->Write(std::span<const uint8_t>(data.data() + off, n));
      if (!w.ok()) return w.status();
      off += n;
    }
    return f->Close();
  }
  Result<std::vector<uint8_t>> ReadFile(const std::string& path) {
    auto f = fs_->Open(path, kRdOnly);
    if (!f.ok()) return f.status();
    COFFER_ASSIGN_OR_RETURN(uint32_t size, f->Size());
    std::vector<uint8_t> out(size + 16);
    COFFER_ASSIGN_OR_RETURN(size_t n, f->Read(out));
    out.resize(n);
    COFFER_RETURN_IF_ERROR(f->Close());
    return out;
  }
  std::vector<std::string> List(const std::string& path) {
    std::vector<std::string> names;
    auto d = fs_->OpenDir(path);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    if (!d.ok()) return names;
    while (true) {
      auto e = d->Read();
      EXPECT_TRUE(e.ok()) << e.status().ToString();
      if (!e.ok() || !e->has_value()) break;
      names.push_back((*e)->name);
    }
    return names;
  }
  uint32_t InlineMax() const { return std::min(g_.cache, g_.block / 8); }

  Geometry g_;
  std::unique_ptr<MemoryBlockDevice> dev_;
  std::unique_ptr<Filesystem> fs_;
};

TEST_P(FsTest, FormatGivesEmptyRootAndInfo) {
  EXPECT_EQ(List("/"), (std::vector<std::string>{".", ".."}));
  const FsInfo& info = fs_->info();
  EXPECT_EQ(info.disk_version, g_.version);
  EXPECT_EQ(info.block_size, g_.block);
  EXPECT_EQ(info.block_count, g_.count);
  EXPECT_EQ(info.name_max, 255u);
  EXPECT_EQ(info.file_max, 2147483647u);
  EXPECT_EQ(info.attr_max, 1022u);
  auto st = fs_->Stat("/");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->type, EntryType::kDir);
  auto used = fs_->BlocksInUse();
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, 2u);
  auto probed = Filesystem::Probe(*dev_);
  ASSERT_TRUE(probed.ok()) << probed.status().ToString();
  EXPECT_EQ(probed->block_size, g_.block);
  EXPECT_EQ(probed->block_count, g_.count);
  EXPECT_EQ(probed->disk_version, g_.version);
}

TEST_P(FsTest, DirectoriesCreateListRemove) {
  ASSERT_OK(fs_->Mkdir("potato"));
  EXPECT_EQ(fs_->Mkdir("potato").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(fs_->Mkdir("nope/x").code(), StatusCode::kNotFound);
  ASSERT_OK(fs_->Mkdir("potato/baked"));
  ASSERT_OK(fs_->Mkdir("/potato//sweet/"));
  ASSERT_OK(fs_->Mkdir("potato/fried"));
  EXPECT_EQ(List("potato"), (std::vector<std::string>{".", "..", "baked", "fried", "sweet"}));
  EXPECT_EQ(fs_->Remove("potato").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs_->Remove("/").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_->Stat("potato/./baked/../fried")->name, "fried");
  // enough directories to split the root's metadata pair several times
  const int n = int(std::min<uint32_t>(60, g_.count / 3));
  for (int i = 0; i < n; i++) ASSERT_OK(fs_->Mkdir("dir" + std::to_string(1000 + i)));
  Remount();
  auto names = List("/");
  ASSERT_EQ(names.size(), size_t(n + 3));
  for (int i = 0; i < n; i++) EXPECT_EQ(names[2 + i], "dir" + std::to_string(1000 + i));
  for (int i = 0; i < n; i += 2) ASSERT_OK(fs_->Remove("dir" + std::to_string(1000 + i)));
  Remount();
  EXPECT_EQ(List("/").size(), size_t(n / 2 + 3));
  for (const char* p : {"potato/baked", "potato/sweet", "potato/fried", "potato"}) ASSERT_OK(fs_->Remove(p));
  EXPECT_EQ(fs_->Stat("potato").status().code(), StatusCode::kNotFound);
  ASSERT_OK(fs_->MakeConsistent());
  ASSERT_OK(fs_->GarbageCollect());
}

TEST_P(FsTest, DirSeekTellRewind) {
  ASSERT_OK(fs_->Mkdir("d"));
  for (int i = 0; i < 20; i++) ASSERT_OK(WriteFile("d/f" + std::to_string(10 + i), Pattern(3, i)));
  auto d = fs_->OpenDir("d");
  ASSERT_TRUE(d.ok());
  std::vector<std::pair<uint32_t, std::string>> seen;
  while (true) {
    uint32_t pos = d->Tell();
    auto e = d->Read();
    ASSERT_TRUE(e.ok());
    if (!e->has_value()) break;
    seen.push_back({pos, (*e)->name});
  }
  ASSERT_EQ(seen.size(), 22u);
  for (auto it = seen.rbegin(); it != seen.rend(); ++it) {
    ASSERT_OK(d->Seek(it->first));
    auto e = d->Read();
    ASSERT_TRUE(e.ok() && e->has_value());
    EXPECT_EQ((*e)->name, it->second);
  }
  ASSERT_OK(d->Rewind());
  EXPECT_EQ((*d->Read())->name, ".");
}

TEST_P(FsTest, FilesInlineAndCtzRoundTrip) {
  const uint32_t b = g_.block;
  std::vector<size_t> sizes = {0, 1, 31, InlineMax(), InlineMax() + 1, b - 8, b, b + 1, 3 * b + 5, 20 * b + 17};
  if (b <= 512) sizes.push_back(200 * b + 3);
  for (size_t i = 0; i < sizes.size(); i++) {
    ASSERT_OK(WriteFile("file" + std::to_string(i), Pattern(sizes[i], i)));
  }
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < sizes.size(); i++) {
      auto st = fs_->Stat("file" + std::to_string(i));
      ASSERT_TRUE(st.ok());
      EXPECT_EQ(st->size, sizes[i]);
      auto data = ReadFile("file" + std::to_string(i));
      ASSERT_TRUE(data.ok()) << data.status().ToString();
      EXPECT_TRUE(*data == Pattern(sizes[i], i)) << "size " << sizes[i];
    }
    Remount();
  }
  // reading in small chunks across block boundaries
  auto f = fs_->Open("file8", kRdOnly);
  ASSERT_TRUE(f.ok());
  std::vector<uint8_t> all, chunk(37);
  while (true) {
    auto n = f->Read(chunk);
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    all.insert(all.end(), chunk.begin(), chunk.begin() + *n);
  }
  EXPECT_TRUE(all == Pattern(sizes[8], 8));
}

TEST_P(FsTest, OpenFlags) {
  EXPECT_EQ(fs_->Open("missing", kRdOnly).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_->Open("a/b", kWrOnly | kCreat).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_->Open("x", 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_->Open("", kRdOnly).status().code(), StatusCode::kInvalidArgument);
  ASSERT_OK(WriteFile("f", Pattern(100, 1)));
  EXPECT_EQ(fs_->Open("f", kWrOnly | kCreat | kExcl).status().code(), StatusCode::kAlreadyExists);
  ASSERT_OK(fs_->Mkdir("d"));
  EXPECT_EQ(fs_->Open("d", kRdOnly).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs_->Open("f/", kWrOnly | kCreat).status().code(), StatusCode::kFailedPrecondition);
  {
    auto f = fs_->Open("f", kRdOnly);
    ASSERT_TRUE(f.ok());
    uint8_t x = 1;
    EXPECT_FALSE(f->Write(std::span<const uint8_t>(&x, 1)).ok());
    EXPECT_FALSE(f->Truncate(0).ok());
  }
  {
    auto f = fs_->Open("f", kWrOnly);
    ASSERT_TRUE(f.ok());
    std::vector<uint8_t> buf(10);
    EXPECT_FALSE(f->Read(buf).ok());
  }
  // APPEND always writes at the end
  auto extra = Pattern(3 * g_.block, 2);
  {
    auto f = fs_->Open("f", kWrOnly | kAppend);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(f->Seek(0, Whence::kSet).ok());
    ASSERT_TRUE(f->Write(extra).ok());
    ASSERT_OK(f->Close());
  }
  auto want = Pattern(100, 1);
  want.insert(want.end(), extra.begin(), extra.end());
  EXPECT_TRUE(*ReadFile("f") == want);
  // TRUNC empties; CREAT|EXCL creates new
  ASSERT_OK(WriteFile("f", {}, kWrOnly | kTrunc));
  EXPECT_EQ(fs_->Stat("f")->size, 0u);
  ASSERT_OK(WriteFile("g", Pattern(5, 3), kWrOnly | kCreat | kExcl));
  EXPECT_TRUE(*ReadFile("g") == Pattern(5, 3));
  // names longer than name_max
  EXPECT_EQ(fs_->Open(std::string(256, 'n'), kWrOnly | kCreat).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(FsTest, SeekTellTruncateAgainstModel) {
  std::mt19937 rng(7);
  std::vector<uint8_t> model;
  auto f = fs_->Open("m", kRdWr | kCreat);
  ASSERT_TRUE(f.ok());
  const uint32_t limit = std::min<uint32_t>(12 * g_.block, 40000);
  for (int op = 0; op < 120; op++) {
    int c = rng() % 10;
    if (c < 4) {
      uint32_t pos = rng() % (model.size() + g_.block);
      auto data = Pattern(rng() % (2 * g_.block), op);
      auto s = f->Seek(pos, Whence::kSet);
      ASSERT_TRUE(s.ok());
      EXPECT_EQ(*s, pos);
      EXPECT_EQ(f->Tell(), pos);
      if (pos + data.size() > limit) continue;
      ASSERT_TRUE(f->Write(data).ok());
      if (model.size() < pos + data.size()) model.resize(pos + data.size(), 0);
      std::copy(data.begin(), data.end(), model.begin() + pos);
    } else if (c < 6) {
      uint32_t pos = rng() % (model.size() + 1);
      ASSERT_TRUE(f->Seek(pos, Whence::kSet).ok());
      std::vector<uint8_t> buf(rng() % (2 * g_.block) + 1);
      auto n = f->Read(buf);
      ASSERT_TRUE(n.ok());
      size_t want = std::min(buf.size(), model.size() - pos);
      ASSERT_EQ(*n, want);
      EXPECT_TRUE(std::equal(buf.begin(), buf.begin() + want, model.begin() + pos)) << "op " << op;
    } else if (c < 8) {
      uint32_t size = rng() % 3 == 0 ? rng() % (InlineMax() + 1) : rng() % limit;
      ASSERT_OK(f->Truncate(size));
      model.resize(size, 0);
    } else if (c == 8) {
      ASSERT_OK(f->Sync());
    } else {
      ASSERT_OK(f->Close());
      f = fs_->Open("m", kRdWr);
      ASSERT_TRUE(f.ok());
    }
    auto sz = f->Size();
    ASSERT_TRUE(sz.ok());
    ASSERT_EQ(*sz, model.size()) << "op " << op;
  }
  ASSERT_OK(f->Close());
  EXPECT_TRUE(*ReadFile("m") == model);
  Remount();
  EXPECT_TRUE(*ReadFile("m") == model);
  // seeking relative and from the end, and beyond the end then writing zero-fills
  auto h = fs_->Open("m", kRdWr);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*h->Seek(-1, Whence::kEnd), model.size() - 1);
  EXPECT_EQ(*h->Seek(0, Whence::kCur), model.size() - 1);
  EXPECT_FALSE(h->Seek(-int64_t(model.size()) - 5, Whence::kCur).ok());
  ASSERT_TRUE(h->Seek(10, Whence::kEnd).ok());
  uint8_t x = 0xab;
  ASSERT_TRUE(h->Write(std::span<const uint8_t>(&x, 1)).ok());
  ASSERT_OK(h->Close());
  model.resize(model.size() + 10, 0);
  model.push_back(0xab);
  EXPECT_TRUE(*ReadFile("m") == model);
}

TEST_P(FsTest, Rename) {
  ASSERT_OK(fs_->Mkdir("a"));
  ASSERT_OK(fs_->Mkdir("b"));
  ASSERT_OK(WriteFile("a/x", Pattern(700, 1)));
  ASSERT_OK(WriteFile("a/y", Pattern(10, 2)));
  // same directory
  ASSERT_OK(fs_->Rename("a/x", "a/z"));
  EXPECT_EQ(fs_->Stat("a/x").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(*ReadFile("a/z") == Pattern(700, 1));
  // across directories
  ASSERT_OK(fs_->Rename("a/z", "b/z"));
  EXPECT_TRUE(*ReadFile("b/z") == Pattern(700, 1));
  EXPECT_EQ(List("a"), (std::vector<std::string>{".", "..", "y"}));
  // onto an existing file replaces it
  ASSERT_OK(fs_->Rename("a/y", "b/z"));
  EXPECT_TRUE(*ReadFile("b/z") == Pattern(10, 2));
  EXPECT_EQ(List("a"), (std::vector<std::string>{".", ".."}));
  // onto itself is a no-op
  ASSERT_OK(fs_->Rename("b/z", "b/z"));
  // a dir onto an empty dir replaces it; onto a non-empty dir fails
  ASSERT_OK(fs_->Mkdir("c"));
  ASSERT_OK(fs_->Rename("c", "a"));
  EXPECT_EQ(fs_->Stat("c").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(fs_->Rename("a", "b").code(), StatusCode::kFailedPrecondition);
  // type mismatches
  EXPECT_EQ(fs_->Rename("b/z", "a").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs_->Rename("a", "b/z").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs_->Rename("nope", "q").code(), StatusCode::kNotFound);
  // directories with contents move whole
  ASSERT_OK(fs_->Mkdir("a/deep"));
  ASSERT_OK(WriteFile("a/deep/f", Pattern(3 * g_.block, 3)));
  ASSERT_OK(fs_->Rename("a", "b/moved"));
  Remount();
  EXPECT_TRUE(*ReadFile("b/moved/deep/f") == Pattern(3 * g_.block, 3));
  EXPECT_EQ(List("/"), (std::vector<std::string>{".", "..", "b"}));
  EXPECT_EQ(List("b"), (std::vector<std::string>{".", "..", "moved", "z"}));
}

TEST_P(FsTest, CustomAttributes) {
  ASSERT_OK(WriteFile("f", Pattern(50, 1)));
  ASSERT_OK(fs_->Mkdir("d"));
  for (const char* p : {"f", "d", "/"}) {
    EXPECT_EQ(fs_->GetAttr(p, 'A').status().code(), StatusCode::kNotFound);
    ASSERT_OK(fs_->SetAttr(p, 'A', Pattern(4, 1)));
    ASSERT_OK(fs_->SetAttr(p, 'B', Pattern(0, 2)));
    ASSERT_OK(fs_->SetAttr(p, 0xff, Pattern(std::min<uint32_t>(100, g_.block / 4), 3)));
  }
  Remount();
  for (const char* p : {"f", "d", "/"}) {
    EXPECT_EQ(*fs_->GetAttr(p, 'A'), Pattern(4, 1)) << p;
    EXPECT_TRUE(fs_->GetAttr(p, 'B')->empty()) << p;
    EXPECT_EQ(*fs_->GetAttr(p, 0xff), Pattern(std::min<uint32_t>(100, g_.block / 4), 3)) << p;
    ASSERT_OK(fs_->SetAttr(p, 'A', Pattern(6, 9)));
    EXPECT_EQ(*fs_->GetAttr(p, 'A'), Pattern(6, 9));
    ASSERT_OK(fs_->RemoveAttr(p, 'A'));
    EXPECT_EQ(fs_->GetAttr(p, 'A').status().code(), StatusCode::kNotFound);
  }
  EXPECT_EQ(fs_->SetAttr("f", 1, Pattern(1023, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_->SetAttr("missing", 1, Pattern(1, 1)).code(), StatusCode::kNotFound);
  // attributes survive a rewrite and a rename of the file
  ASSERT_OK(WriteFile("f", Pattern(3 * g_.block, 4)));
  ASSERT_OK(fs_->Rename("f", "d/f2"));
  EXPECT_EQ(fs_->GetAttr("d/f2", 0xff)->size(), std::min<size_t>(100, g_.block / 4));
}

TEST_P(FsTest, ManyFilesSplitAndShrink) {
  const int n = g_.block >= 4096 ? 120 : 60;
  for (int i = 0; i < n; i++) {
    ASSERT_OK(WriteFile("f" + std::to_string(100 + i), Pattern(i % 3 == 0 ? 2 * g_.block : 7, i)));
  }
  Remount();
  auto names = List("/");
  ASSERT_EQ(names.size(), size_t(n + 2));
  for (int i = 0; i < n; i++) {
    auto d = ReadFile("f" + std::to_string(100 + i));
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(*d == Pattern(i % 3 == 0 ? 2 * g_.block : 7, i));
  }
  for (int i = 0; i < n; i++) ASSERT_OK(fs_->Remove("f" + std::to_string(100 + i)));
  Remount();
  EXPECT_EQ(List("/").size(), 2u);
  auto used = fs_->BlocksInUse();
  ASSERT_TRUE(used.ok());
  EXPECT_LE(*used, 6u);
}

TEST_P(FsTest, ExhaustionIsNoSpaceWithoutCorruption) {
  ASSERT_OK(WriteFile("keep", Pattern(2 * g_.block, 5)));
  Status last;
  int i = 0;
  for (; i < 10000; i++) {
    last = WriteFile("fill" + std::to_string(i), Pattern(5 * g_.block, i));
    if (!last.ok()) break;
  }
  ASSERT_EQ(last.code(), StatusCode::kNoSpace) << last.ToString();
  // appending to an existing file also fails cleanly
  auto f = fs_->Open("keep", kWrOnly | kAppend);
  ASSERT_TRUE(f.ok());
  Status ws;
  for (int k = 0; k < 100 && ws.ok(); k++) ws = f->Write(Pattern(g_.block, k)).status();
  (void)f->Close();
  Remount();
  EXPECT_TRUE(*ReadFile("keep") == Pattern(2 * g_.block, 5));
  for (int k = 0; k < i; k++) {
    auto d = ReadFile("fill" + std::to_string(k));
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(*d == Pattern(5 * g_.block, k));
  }
  // space comes back after removal
  for (int k = 0; k < i; k++) ASSERT_OK(fs_->Remove("fill" + std::to_string(k)));
  ASSERT_OK(WriteFile("again", Pattern(5 * g_.block, 99)));
  EXPECT_TRUE(*ReadFile("again") == Pattern(5 * g_.block, 99));
}

TEST_P(FsTest, WearLevellingRelocatesMetadata) {
  Remount(nullptr, /*cycles=*/3);
  ASSERT_OK(fs_->Mkdir("d"));
  std::set<uint32_t> blocks_seen;
  for (int i = 0; i < 60; i++) {
    ASSERT_OK(WriteFile("d/f", Pattern(i % 2 ? 20 : g_.block + 3, i)));
    ASSERT_OK(fs_->Traverse([&](uint32_t b) {
      blocks_seen.insert(b);
      return Status::Ok();
    }));
  }
  Remount(nullptr, 3);
  EXPECT_TRUE(*ReadFile("d/f") == Pattern(59 % 2 ? 20 : g_.block + 3, 59));
  EXPECT_GT(blocks_seen.size(), 10u) << "metadata should have moved around the disk";
}

TEST_P(FsTest, BadBlocksAreRelocated) {
  testing::TestFaultDevice fault(*dev_);
  Remount(&fault);
  // mark a spread of blocks bad in each failure mode (never the superblock pair)
  for (uint32_t b = 2; b < g_.count; b += 7) fault.bad_prog.insert(b);
  for (uint32_t b = 5; b < g_.count; b += 11) fault.bad_erase.insert(b);
  if (g_.erase_value >= 0) {
    for (uint32_t b = 3; b < g_.count; b += 13) fault.noop_prog.insert(b);
  }
  ASSERT_OK(fs_->Mkdir("d"));
  for (int i = 0; i < 12; i++) {
    ASSERT_OK(WriteFile("d/f" + std::to_string(i), Pattern(i * g_.block / 2 + 1, i)));
  }
  ASSERT_OK(fs_->Mkdir("d/e"));
  ASSERT_OK(fs_->Rename("d/f3", "d/e/f3"));
  Remount(&fault);
  for (int i = 0; i < 12; i++) {
    std::string p = i == 3 ? "d/e/f3" : "d/f" + std::to_string(i);
    auto d = ReadFile(p);
    ASSERT_TRUE(d.ok()) << p << ": " << d.status().ToString();
    EXPECT_TRUE(*d == Pattern(i * g_.block / 2 + 1, i)) << p;
  }
  EXPECT_GT(fault.faults, 0u) << "the workload should have hit bad blocks";
  fs_.reset();
}

TEST_P(FsTest, DataLossFromDevicePassesThrough) {
  ASSERT_OK(fs_->Mkdir("d"));
  ASSERT_OK(WriteFile("d/big", Pattern(4 * g_.block, 1)));
  fs_.reset();
  testing::TestFaultDevice fault(*dev_);
  fault.dataloss_blocks = {0, 1};
  auto m = Filesystem::Mount(fault, cfg());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kDataLoss) << m.status().ToString();
  EXPECT_EQ(Filesystem::Probe(fault).status().code(), StatusCode::kDataLoss);
  // a data block failing authentication surfaces on read, as kDataLoss
  fault.dataloss_blocks.clear();
  Remount(&fault);
  std::set<uint32_t> data_blocks;
  ASSERT_OK(fs_->Traverse([&](uint32_t b) {
    data_blocks.insert(b);
    return Status::Ok();
  }));
  fault.dataloss_blocks = data_blocks;
  fault.dataloss_blocks.erase(0);
  fault.dataloss_blocks.erase(1);
  auto d = ReadFile("d/big");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kDataLoss) << d.status().ToString();
  fs_.reset();
}

TEST_P(FsTest, DiskVersionIsKeptAcrossWrites) {
  for (int i = 0; i < 30; i++) ASSERT_OK(WriteFile("f" + std::to_string(i % 5), Pattern(i * 13, i)));
  ASSERT_OK(fs_->Mkdir("d"));
  Remount();
  EXPECT_EQ(fs_->info().disk_version, g_.version);
  fs_.reset();
  auto probed = Filesystem::Probe(*dev_, g_.block);
  ASSERT_TRUE(probed.ok());
  EXPECT_EQ(probed->disk_version, g_.version);
  // the format option decides the version, the mount config does not
  Config other = cfg();
  other.disk_version = g_.version == DiskVersion::k2_0 ? DiskVersion::k2_1 : DiskVersion::k2_0;
  auto m = Filesystem::Mount(*dev_, other);
  ASSERT_TRUE(m.ok());
  ASSERT_OK((*m)->Mkdir("e"));
  EXPECT_EQ((*m)->info().disk_version, g_.version);
}

TEST_P(FsTest, OpenHandlesFollowChanges) {
  ASSERT_OK(WriteFile("a", Pattern(10, 1)));
  auto f = fs_->Open("a", kRdWr);
  ASSERT_TRUE(f.ok());
  // entries created before it in the same directory shift its id; commits must keep it valid
  for (int i = 0; i < 20; i++) ASSERT_OK(WriteFile("0" + std::to_string(i), Pattern(5, i)));
  ASSERT_TRUE(f->Seek(0, Whence::kEnd).ok());
  ASSERT_TRUE(f->Write(Pattern(2 * g_.block, 2)).ok());
  ASSERT_OK(f->Close());
  auto want = Pattern(10, 1);
  auto more = Pattern(2 * g_.block, 2);
  want.insert(want.end(), more.begin(), more.end());
  EXPECT_TRUE(*ReadFile("a") == want);
  // two handles on one file: the later close wins, both stay consistent
  auto h1 = fs_->Open("a", kWrOnly | kTrunc);
  auto h2 = fs_->Open("a", kRdOnly);
  ASSERT_TRUE(h1.ok() && h2.ok());
  ASSERT_TRUE(h1->Write(Pattern(5, 9)).ok());
  ASSERT_OK(h1->Close());
  ASSERT_OK(h2->Close());
  EXPECT_TRUE(*ReadFile("a") == Pattern(5, 9));
  // unmount with a file still open syncs it
  auto h3 = fs_->Open("b", kWrOnly | kCreat);
  ASSERT_TRUE(h3.ok());
  ASSERT_TRUE(h3->Write(Pattern(300, 3)).ok());
  Remount();
  EXPECT_FALSE(h3->Write(Pattern(1, 1)).ok());
  EXPECT_TRUE(*ReadFile("b") == Pattern(300, 3));
}

TEST_P(FsTest, GrowAddsBlocks) {
  fs_.reset();
  Config half = cfg();
  half.block_count = g_.count / 2;
  ASSERT_OK(Filesystem::Format(*dev_, half));
  auto m = Filesystem::Mount(*dev_, half);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->info().block_count, g_.count / 2);
  ASSERT_OK((*m)->Grow(g_.count));
  EXPECT_FALSE((*m)->Grow(g_.count / 4).ok());
  m->reset();
  Config zero = cfg();
  zero.block_count = 0;
  auto m2 = Filesystem::Mount(*dev_, zero);
  ASSERT_TRUE(m2.ok()) << m2.status().ToString();
  EXPECT_EQ((*m2)->info().block_count, g_.count);
}

TEST_P(FsTest, RandomOperationsMatchModel) {
  std::mt19937 rng(1234);
  std::map<std::string, std::vector<uint8_t>> files;
  std::set<std::string> dirs = {""};
  auto pick_dir = [&] {
    auto it = dirs.begin();
    std::advance(it, rng() % dirs.size());
    return *it;
  };
  for (int op = 0; op < 250; op++) {
    int c = rng() % 10;
    std::string dir = pick_dir();
    std::string name = (dir.empty() ? "" : dir + "/") + "n" + std::to_string(rng() % 6);
    bool is_dir = dirs.count(name), is_file = files.count(name);
    if (c < 4) {
      auto data = Pattern(rng() % (3 * g_.block), op);
      Status s = WriteFile(name, data);
      if (is_dir) {
        EXPECT_FALSE(s.ok());
      } else if (s.code() != StatusCode::kNoSpace) {
        ASSERT_OK(s);
        files[name] = data;
      }
    } else if (c < 5) {
      Status s = fs_->Mkdir(name);
      if (is_dir || is_file) {
        EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
      } else if (s.code() != StatusCode::kNoSpace) {
        ASSERT_OK(s);
        dirs.insert(name);
      }
    } else if (c < 7) {
      Status s = fs_->Remove(name);
      bool empty = true;
      for (auto& [p, _] : files) empty &= p.rfind(name + "/", 0) != 0;
      for (auto& p : dirs) empty &= p.rfind(name + "/", 0) != 0;
      if (is_file || (is_dir && empty)) {
        ASSERT_OK(s);
        files.erase(name);
        dirs.erase(name);
      } else {
        EXPECT_FALSE(s.ok());
      }
    } else if (c < 8 && is_file) {
      std::string to = pick_dir();
      to = (to.empty() ? "" : to + "/") + "r" + std::to_string(rng() % 4);
      if (dirs.count(to)) continue;
      ASSERT_OK(fs_->Rename(name, to));
      files[to] = files[name];
      if (to != name) files.erase(name);
    } else if (c < 9) {
      Remount();
    } else {
      for (auto& [p, data] : files) {
        auto d = ReadFile(p);
        ASSERT_TRUE(d.ok()) << p << ": " << d.status().ToString();
        ASSERT_TRUE(*d == data) << p << " after op " << op;
      }
    }
  }
  Remount();
  for (auto& [p, data] : files) EXPECT_TRUE(*ReadFile(p) == data) << p;
}

INSTANTIATE_TEST_SUITE_P(Geometries, FsTest, ::testing::ValuesIn(testing::Geometries()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace coffer::fs
