// Power loss at every prog and erase of a workload that exercises moves (cross-directory
// rename) and orphans (mkdir, directory removal, relocation): every crash state must mount, show
// either the state before or after the interrupted operation, and be repairable.
#include <functional>
#include <map>

#include "coffer/fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "gtest/gtest.h"

namespace coffer::fs {
namespace {

using testing::Geometry;
using testing::Pattern;
using Tree = std::map<std::string, std::vector<uint8_t>>;  // dirs map to {0xd1}

Status Snapshot(Filesystem& fs, const std::string& dir, Tree* out) {
  COFFER_ASSIGN_OR_RETURN(Dir d, fs.OpenDir(dir.empty() ? "/" : dir));
  while (true) {
    COFFER_ASSIGN_OR_RETURN(std::optional<EntryInfo> e, d.Read());
    if (!e) break;
    if (e->name == "." || e->name == "..") continue;
    std::string path = dir + "/" + e->name;
    if (e->type == EntryType::kDir) {
      (*out)[path] = {0xd1};
      COFFER_RETURN_IF_ERROR(Snapshot(fs, path, out));
    } else {
      COFFER_ASSIGN_OR_RETURN(File f, fs.Open(path, kRdOnly));
      std::vector<uint8_t> data(e->size + 1);
      COFFER_ASSIGN_OR_RETURN(size_t n, f.Read(data));
      data.resize(n);
      if (n != e->size) return Corrupt("size mismatch for " + path);
      (*out)[path] = data;
    }
  }
  return Status::Ok();
}

Status Put(Filesystem& fs, const std::string& path, const std::vector<uint8_t>& data) {
  COFFER_ASSIGN_OR_RETURN(File f, fs.Open(path, kWrOnly | kCreat | kTrunc));
  COFFER_RETURN_IF_ERROR(f.Write(data).status());
  return f.Close();
}

struct Step {
  std::function<Status(Filesystem&)> run;
  std::function<void(Tree&)> model;
  std::string created;  // a Put: opening with kCreat commits an empty file before the data
};

std::vector<Step> Workload(uint32_t bs) {
  auto big = Pattern(3 * bs + 7, 1), small = Pattern(9, 2), big2 = Pattern(2 * bs + 1, 3);
  std::vector<Step> s;
  s.push_back({[](Filesystem& fs) { return fs.Mkdir("/a"); }, [](Tree& t) { t["/a"] = {0xd1}; }});
  s.push_back({[](Filesystem& fs) { return fs.Mkdir("/c"); }, [](Tree& t) { t["/c"] = {0xd1}; }});
  s.push_back({[=](Filesystem& fs) { return Put(fs, "/a/f", big); }, [=](Tree& t) { t["/a/f"] = big; }, "/a/f"});
  s.push_back({[=](Filesystem& fs) { return Put(fs, "/a/s", small); }, [=](Tree& t) { t["/a/s"] = small; }, "/a/s"});
  s.push_back({[](Filesystem& fs) { return fs.Mkdir("/a/b"); }, [](Tree& t) { t["/a/b"] = {0xd1}; }});
  s.push_back({[](Filesystem& fs) { return fs.Rename("/a/f", "/c/f"); },
               [](Tree& t) { t["/c/f"] = t["/a/f"]; t.erase("/a/f"); }});
  s.push_back({[](Filesystem& fs) { return fs.Rename("/a/s", "/c/f"); },
               [](Tree& t) { t["/c/f"] = t["/a/s"]; t.erase("/a/s"); }});
  s.push_back({[](Filesystem& fs) { return fs.Rename("/a/b", "/c/b"); },
               [](Tree& t) { t["/c/b"] = t["/a/b"]; t.erase("/a/b"); }});
  s.push_back({[=](Filesystem& fs) { return Put(fs, "/c/b/g", big2); }, [=](Tree& t) { t["/c/b/g"] = big2; }, "/c/b/g"});
  s.push_back({[](Filesystem& fs) { return fs.Remove("/a"); }, [](Tree& t) { t.erase("/a"); }});
  s.push_back({[](Filesystem& fs) { return fs.Mkdir("/e"); }, [](Tree& t) { t["/e"] = {0xd1}; }});
  s.push_back({[](Filesystem& fs) { return fs.Rename("/e", "/c/b/e"); },
               [](Tree& t) { t["/c/b/e"] = t["/e"]; t.erase("/e"); }});
  for (int i = 0; i < 4; i++) {
    auto d = Pattern(i * bs / 3 + 1, 10 + i);
    s.push_back({[=](Filesystem& fs) { return Put(fs, "/c/f", d); }, [=](Tree& t) { t["/c/f"] = d; }, "/c/f"});
  }
  s.push_back({[](Filesystem& fs) { return fs.Remove("/c/b/e"); }, [](Tree& t) { t.erase("/c/b/e"); }});
  return s;
}

class PowerLossTest : public ::testing::TestWithParam<Geometry> {};

TEST_P(PowerLossTest, EveryCrashPointRecovers) {
  const Geometry g = GetParam();
  const Config cfg = testing::ToConfig(g, /*block_cycles=*/4);  // relocations happen too
  auto steps = Workload(g.block);

  // count the writes of a clean run
  uint64_t total = 0;
  {
    MemoryBlockDevice mem(testing::ToBlockGeometry(g), 0);
    ASSERT_TRUE(Filesystem::Format(mem, cfg).ok());
    testing::TestFaultDevice dev(mem);
    auto fs = Filesystem::Mount(dev, cfg);
    ASSERT_TRUE(fs.ok());
    for (auto& s : steps) ASSERT_TRUE(s.run(**fs).ok());
    ASSERT_TRUE((*fs)->Unmount().ok());
    total = dev.writes;
  }
  ASSERT_GT(total, 20u);

  for (uint64_t budget = 0; budget <= total; budget++) {
    MemoryBlockDevice mem(testing::ToBlockGeometry(g), 0);
    ASSERT_TRUE(Filesystem::Format(mem, cfg).ok());
    testing::TestFaultDevice dev(mem);
    dev.budget = int64_t(budget);
    Tree before, after, mid;
    {
      auto fs = Filesystem::Mount(dev, cfg);
      ASSERT_TRUE(fs.ok());
      for (auto& s : steps) {
        after = before;
        s.model(after);
        mid = before;
        if (!s.created.empty() && !mid.count(s.created)) mid[s.created] = {};
        Status st = s.run(**fs);
        if (!st.ok() && getenv("PL_DEBUG")) fprintf(stderr, "budget %lu failed step %ld\n", (unsigned long)budget, long(&s - &steps[0]));
        if (!st.ok()) {
          ASSERT_EQ(st.code(), StatusCode::kIoError) << st.ToString();
          break;
        }
        before = after;
      }
      (*fs).reset();  // the crash: nothing more reaches the device
    }
    // power comes back
    if (getenv("PL_DUMP") && budget == uint64_t(atoi(getenv("PL_DUMP")))) {
      FILE* f = fopen("/tmp/fs_interop/crash.img", "wb");
      fwrite(mem.raw().data(), 1, mem.raw().size(), f);
      fclose(f);
    }
    auto fs = Filesystem::Mount(mem, cfg);
    ASSERT_TRUE(fs.ok()) << "crash after " << budget << " writes: " << fs.status().ToString();
    Tree got;
    ASSERT_TRUE(Snapshot(**fs, "", &got).ok()) << "crash after " << budget;
    EXPECT_TRUE(got == before || got == after || got == mid) << "crash after " << budget << " writes";
    ASSERT_TRUE((*fs)->MakeConsistent().ok()) << "crash after " << budget;
    Tree fixed;
    ASSERT_TRUE(Snapshot(**fs, "", &fixed).ok());
    EXPECT_EQ(fixed, got);
    // the filesystem is writable and its allocator sees no leaked or shared blocks
    ASSERT_TRUE(Put(**fs, "/new", Pattern(2 * g.block, 77)).ok()) << "crash after " << budget;
    ASSERT_TRUE((*fs)->Remove("/new").ok());
    auto used = (*fs)->BlocksInUse();
    ASSERT_TRUE(used.ok());
    EXPECT_LT(*used, g.count);
  }
}

INSTANTIATE_TEST_SUITE_P(Geometries, PowerLossTest,
                         ::testing::Values(Geometry{"b256_noerase_v20", 256, 256, 256, 128, 256, 16, -1, DiskVersion::k2_0},
                                           Geometry{"b512_v21", 64, 64, 512, 64, 128, 8, 0xff, DiskVersion::k2_1},
                                           Geometry{"b128_v21", 16, 16, 128, 128, 64, 8, 0xff, DiskVersion::k2_1}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace coffer::fs
