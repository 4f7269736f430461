// Model-based random test of coffer's littlefs: random operations (mkdir, open/write/seek/truncate/
// sync/read through one handle, append, rename, remove, stat, remount) run against the filesystem and
// an in-memory model; results, error codes (per include/coffer/fs/filesystem.h) and the whole tree
// must agree. Deterministic per seed. Test-only; single-threaded.
#pragma once

#include <gtest/gtest.h>

#include <random>

#include "coffer/blockdev/memory_block_device.h"
#include "coffer/fs/filesystem.h"
#include "fstest/fs_test_util.h"

namespace coffer::fstest {

struct ModelSetup {
  std::string name;
  BlockGeometry geometry;
  int32_t block_cycles;
  fs::DiskVersion disk_version;
};

class ModelRun {
 public:
  ModelRun(const ModelSetup& setup, uint64_t seed) : setup_(setup), rng_(seed), dev_(setup.geometry) {
    config_.read_size = setup.geometry.read_size;
    config_.prog_size = setup.geometry.prog_size;
    config_.block_size = setup.geometry.block_size;
    config_.block_count = setup.geometry.block_count;
    config_.block_cycles = setup.block_cycles;
    config_.disk_version = setup.disk_version;
    config_.lookahead_size = 16;
  }

  void Run(int ops) {
    ASSERT_TRUE(fs::Filesystem::Format(dev_, config_).ok());
    Remount();
    for (op_ = 0; op_ < ops && !::testing::Test::HasFailure(); ++op_) Step();
    if (!::testing::Test::HasFailure()) CompareTree();
    size_t dirs = Dirs().size() - 1;
    std::printf("[ model    ] %s: %d ops, final tree %zu dirs, %zu files, %llu bytes; device %llu progs, %llu erases\n",
                setup_.name.c_str(), ops, dirs, model_.size() - dirs, (unsigned long long)ModelBytes(),
                (unsigned long long)dev_.counters().progs, (unsigned long long)dev_.counters().erases);
    if (fs_) {
      EXPECT_TRUE(fs_->Unmount().ok());
    }
  }

 private:
  uint32_t R(uint32_t n) { return uint32_t(rng_() % n); }
  std::string Where() { return setup_.name + " op " + std::to_string(op_) + ": " + what_; }
  void ExpectCode(const Status& s, StatusCode want) {
    EXPECT_EQ(s.code(), want) << Where() << ": got " << s.ToString();
  }
  std::vector<std::string> Dirs() {
    std::vector<std::string> d = {"/"};
    for (auto& [p, c] : model_) {
      if (c == kDirMarker) d.push_back(p);
    }
    return d;
  }
  static std::string Join(const std::string& dir, const std::string& name) { return (dir == "/" ? "" : dir) + "/" + name; }
  static std::string Parent(const std::string& p) {
    size_t i = p.rfind('/');
    return i == 0 ? "/" : p.substr(0, i);
  }
  bool Exists(const std::string& p) { return p == "/" || model_.count(p); }
  bool IsDir(const std::string& p) { return p == "/" || (model_.count(p) && model_[p] == kDirMarker); }
  bool DirEmpty(const std::string& p) {
    for (auto& [q, c] : model_) {
      if (q.rfind(p + "/", 0) == 0) return false;
    }
    return true;
  }
  // A directory path: existing or not, sometimes under a missing parent.
  std::string DirPath() {
    auto dirs = Dirs();
    // Bounded: enough directories to exercise splits and moves, few enough to never run out of space.
    if (dirs.size() > 10 && R(4) != 0) return dirs[1 + R(uint32_t(dirs.size() - 1))];
    return Join(dirs[R(uint32_t(dirs.size()))], "d" + std::to_string(R(4)));
  }
  std::string FilePath() {
    auto dirs = Dirs();
    std::string parent = dirs[R(uint32_t(dirs.size()))];
    if (R(20) == 0) parent = Join(parent, "missing");
    return Join(parent, "f" + std::to_string(R(6)));
  }
  std::string RandomData(size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = char(rng_());
    return s;
  }
  uint64_t ModelBytes() {
    uint64_t n = 0;
    for (auto& [p, c] : model_) n += c == kDirMarker ? 0 : c.size();
    return n;
  }
  size_t WriteSize() {
    size_t cap = ModelBytes() > budget_ ? 16 : 1500;
    switch (R(4)) {
      case 0: return R(40);                              // inline
      case 1: return R(uint32_t(cap)) + 1;
      default: return std::min<size_t>(cap, setup_.geometry.block_size + R(60));  // around a block edge
    }
  }

  void Remount() {
    if (fs_) {
      Status s = fs_->Unmount();
      EXPECT_TRUE(s.ok()) << Where() << ": unmount: " << s.ToString();
      fs_.reset();
    }
    auto m = fs::Filesystem::Mount(dev_, config_);
    ASSERT_TRUE(m.ok()) << Where() << ": mount: " << m.status().ToString();
    fs_ = std::move(m).value();
  }

  void CompareTree() {
    auto t = ReadTree(*fs_);
    ASSERT_TRUE(t.ok()) << Where() << ": " << t.status().ToString();
    EXPECT_TRUE(*t == model_) << Where() << ": tree differs from the model\nfs:\n"
                              << DescribeTree(*t) << "model:\n" << DescribeTree(model_);
  }

  void Step() {
    switch (R(16)) {
      case 0: case 1: return OpMkdir();
      case 2: case 3: case 4: return OpWriteNew();
      case 5: case 6: return OpEdit();
      case 7: return OpAppend();
      case 8: case 9: return OpRead();
      case 10: return OpRename();
      case 11: return OpRemove();
      case 12: return OpStat();
      case 13: return OpTypeMismatch();
      case 14: what_ = "remount"; Remount(); if (R(4) == 0) CompareTree(); return;
      default: return OpListDir();
    }
  }

  void OpMkdir() {
    std::string p = DirPath();
    what_ = "mkdir " + p;
    Status s = fs_->Mkdir(p);
    if (!IsDir(Parent(p))) return ExpectCode(s, StatusCode::kNotFound);
    if (Exists(p)) return ExpectCode(s, StatusCode::kAlreadyExists);
    EXPECT_TRUE(s.ok()) << Where() << ": " << s.ToString();
    if (s.ok()) model_[p] = kDirMarker;
  }

  void OpWriteNew() {
    std::string p = FilePath();
    bool excl = R(4) == 0;
    what_ = std::string("create ") + (excl ? "excl " : "trunc ") + p;
    uint32_t flags = fs::kWrOnly | fs::kCreat | (excl ? fs::kExcl : fs::kTrunc);
    auto f = fs_->Open(p, flags);
    if (!IsDir(Parent(p))) return ExpectCode(f.status(), StatusCode::kNotFound);
    if (excl && Exists(p)) return ExpectCode(f.status(), StatusCode::kAlreadyExists);
    ASSERT_TRUE(f.ok()) << Where() << ": " << f.status().ToString();
    std::string data = RandomData(WriteSize());
    auto n = f->Write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
    ASSERT_TRUE(n.ok() && *n == data.size()) << Where() << ": write: " << n.status().ToString();
    Status c = f->Close();
    ASSERT_TRUE(c.ok()) << Where() << ": close: " << c.ToString();
    model_[p] = data;
  }

  // Open an existing file read-write, seek, write, maybe truncate/sync/read back through the handle.
  void OpEdit() {
    std::string p = FilePath();
    what_ = "edit " + p;
    auto f = fs_->Open(p, fs::kRdWr);
    if (!Exists(p)) return ExpectCode(f.status(), StatusCode::kNotFound);
    ASSERT_TRUE(f.ok()) << Where() << ": " << f.status().ToString();
    std::string content = model_[p];
    for (int k = 0, n = 1 + int(R(3)); k < n; ++k) {
      switch (R(4)) {
        case 0: {  // truncate (shrink or grow with zeros)
          uint32_t size = R(uint32_t(content.size()) + 300);
          what_ = "edit " + p + " truncate " + std::to_string(size);
          Status s = f->Truncate(size);
          ASSERT_TRUE(s.ok()) << Where() << ": " << s.ToString();
          content.resize(size, '\0');
          break;
        }
        case 1: {  // sync mid-way
          what_ = "edit " + p + " sync";
          Status s = f->Sync();
          ASSERT_TRUE(s.ok()) << Where() << ": " << s.ToString();
          break;
        }
        default: {  // seek and write (past the end leaves a zero-filled gap)
          uint32_t off = R(uint32_t(content.size()) + 100);
          std::string data = RandomData(WriteSize());
          what_ = "edit " + p + " write " + std::to_string(data.size()) + " at " + std::to_string(off);
          auto pos = f->Seek(off, fs::Whence::kSet);
          ASSERT_TRUE(pos.ok() && *pos == off) << Where() << ": seek: " << pos.status().ToString();
          auto w = f->Write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
          ASSERT_TRUE(w.ok() && *w == data.size()) << Where() << ": write: " << w.status().ToString();
          if (content.size() < off + data.size()) content.resize(off + data.size(), '\0');
          content.replace(off, data.size(), data);
          EXPECT_EQ(f->Tell(), off + data.size()) << Where();
        }
      }
      auto size = f->Size();
      ASSERT_TRUE(size.ok()) << Where();
      EXPECT_EQ(*size, content.size()) << Where() << ": size through the handle";
    }
    if (R(2) == 0) {  // read back through the same handle before closing
      what_ = "edit " + p + " read back";
      auto pos = f->Seek(0, fs::Whence::kSet);
      ASSERT_TRUE(pos.ok()) << Where();
      std::string got(content.size() + 10, '\0');
      auto n = f->Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(got.data()), got.size()));
      ASSERT_TRUE(n.ok()) << Where() << ": " << n.status().ToString();
      got.resize(*n);
      EXPECT_TRUE(got == content) << Where() << ": read " << got.size() << " bytes, model has " << content.size();
    }
    Status c = f->Close();
    ASSERT_TRUE(c.ok()) << Where() << ": close: " << c.ToString();
    model_[p] = content;
  }

  void OpAppend() {
    std::string p = FilePath();
    what_ = "append " + p;
    auto f = fs_->Open(p, fs::kWrOnly | fs::kAppend | (R(2) ? uint32_t(fs::kCreat) : 0u));
    if (!IsDir(Parent(p))) return ExpectCode(f.status(), StatusCode::kNotFound);
    if (!f.ok() && !Exists(p)) return ExpectCode(f.status(), StatusCode::kNotFound);
    ASSERT_TRUE(f.ok()) << Where() << ": " << f.status().ToString();
    std::string data = RandomData(WriteSize());
    auto n = f->Write(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
    ASSERT_TRUE(n.ok() && *n == data.size()) << Where() << ": " << n.status().ToString();
    ASSERT_TRUE(f->Close().ok()) << Where();
    model_[p] += data;
  }

  void OpRead() {
    std::string p = FilePath();
    what_ = "read " + p;
    auto got = ReadWholeFile(*fs_, p);
    if (!Exists(p)) return ExpectCode(got.status(), StatusCode::kNotFound);
    ASSERT_TRUE(got.ok()) << Where() << ": " << got.status().ToString();
    EXPECT_TRUE(*got == model_[p]) << Where() << ": " << got->size() << " bytes read, model " << model_[p].size();
  }

  void OpRename() {
    bool dir = R(3) == 0;
    std::string from = dir ? DirPath() : FilePath();
    std::string to = dir ? DirPath() : FilePath();
    what_ = "rename " + from + " " + to;
    if (to.rfind(from + "/", 0) == 0) return;  // into its own subtree: not something littlefs guards
    Status s = fs_->Rename(from, to);
    if (!Exists(from)) return ExpectCode(s, StatusCode::kNotFound);
    if (!IsDir(Parent(to))) return ExpectCode(s, StatusCode::kNotFound);
    if (from == to) {
      EXPECT_TRUE(s.ok()) << Where() << ": " << s.ToString();
      return;
    }
    if (Exists(to) && IsDir(to) && !DirEmpty(to)) return ExpectCode(s, StatusCode::kFailedPrecondition);
    EXPECT_TRUE(s.ok()) << Where() << ": " << s.ToString();
    if (!s.ok()) return;
    Tree moved;
    model_.erase(to);
    for (auto it = model_.begin(); it != model_.end();) {
      if (it->first == from || it->first.rfind(from + "/", 0) == 0) {
        moved[to + it->first.substr(from.size())] = it->second;
        it = model_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [p, c] : moved) model_[p] = c;
  }

  void OpRemove() {
    std::string p = R(3) == 0 ? DirPath() : FilePath();
    what_ = "remove " + p;
    Status s = fs_->Remove(p);
    if (!Exists(p)) return ExpectCode(s, StatusCode::kNotFound);
    if (IsDir(p) && !DirEmpty(p)) return ExpectCode(s, StatusCode::kFailedPrecondition);
    EXPECT_TRUE(s.ok()) << Where() << ": " << s.ToString();
    if (s.ok()) model_.erase(p);
  }

  void OpStat() {
    std::string p = R(3) == 0 ? DirPath() : FilePath();
    what_ = "stat " + p;
    auto st = fs_->Stat(p);
    if (!Exists(p)) return ExpectCode(st.status(), StatusCode::kNotFound);
    ASSERT_TRUE(st.ok()) << Where() << ": " << st.status().ToString();
    if (IsDir(p)) {
      EXPECT_EQ(st->type, fs::EntryType::kDir) << Where();
    } else {
      EXPECT_EQ(st->type, fs::EntryType::kFile) << Where();
      EXPECT_EQ(st->size, model_[p].size()) << Where();
    }
  }

  // Opening a directory as a file, and mkdir over a file, are refused and change nothing.
  void OpTypeMismatch() {
    auto dirs = Dirs();
    std::string d = dirs[R(uint32_t(dirs.size()))];
    if (d != "/") {
      what_ = "open dir " + d + " as file";
      auto f = fs_->Open(d, fs::kRdWr | fs::kCreat);
      EXPECT_FALSE(f.ok()) << Where();
      if (!f.ok()) ExpectCode(f.status(), StatusCode::kFailedPrecondition);
    }
    for (auto& [p, c] : model_) {
      if (c != kDirMarker) {
        what_ = "mkdir over file " + p;
        ExpectCode(fs_->Mkdir(p), StatusCode::kAlreadyExists);
        break;
      }
    }
  }

  void OpListDir() {
    auto dirs = Dirs();
    std::string d = dirs[R(uint32_t(dirs.size()))];
    what_ = "list " + d;
    auto dir = fs_->OpenDir(d);
    ASSERT_TRUE(dir.ok()) << Where() << ": " << dir.status().ToString();
    std::set<std::string> got, want;
    int dots = 0;
    for (;;) {
      auto e = dir->Read();
      ASSERT_TRUE(e.ok()) << Where() << ": " << e.status().ToString();
      if (!*e) break;
      if ((*e)->name == "." || (*e)->name == "..") {
        dots++;
        continue;
      }
      got.insert((*e)->name);
    }
    EXPECT_EQ(dots, 2) << Where();
    for (auto& [p, c] : model_) {
      if (Parent(p) == d) want.insert(p.substr(p.rfind('/') + 1));
    }
    EXPECT_EQ(got, want) << Where();
  }

  ModelSetup setup_;
  std::mt19937_64 rng_;
  MemoryBlockDevice dev_;
  fs::Config config_;
  std::unique_ptr<fs::Filesystem> fs_;
  Tree model_;
  uint64_t budget_ = 48 * 1024;
  int op_ = 0;
  std::string what_;
};

inline void PrintTo(const ModelSetup& s, std::ostream* os) { *os << s.name; }

inline std::vector<ModelSetup> ModelSetups() {
  return {
      {"nor16x512_disk21", BlockGeometry{16, 16, 512, 512}, 500, fs::DiskVersion::k2_1},
      {"remote256_disk20", BlockGeometry{256, 256, 256, 1024}, 500, fs::DiskVersion::k2_0},
      {"flash4096_wear16_disk21", BlockGeometry{16, 16, 4096, 256}, 16, fs::DiskVersion::k2_1},
  };
}

}  // namespace coffer::fstest
