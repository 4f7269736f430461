// Long sweeps (ctest label `long`, excluded from CI; run with
// `ctest -L long -R coffer_fs_long` or `build/src/fs/coffer_fs_long_tests`): thousands of random
// operations per geometry compared with an in-memory model, with remounts and power cuts.
#include <map>
#include <random>
#include <set>

#include "coffer/fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "gtest/gtest.h"

namespace coffer::fs {
namespace {

using testing::Geometry;
using testing::Pattern;

class LongModelTest : public ::testing::TestWithParam<Geometry> {};

Status Put(Filesystem& fs, const std::string& path, const std::vector<uint8_t>& data, uint32_t flags) {
  COFFER_ASSIGN_OR_RETURN(File f, fs.Open(path, flags));
  COFFER_RETURN_IF_ERROR(f.Write(data).status());
  return f.Close();
}

Result<std::vector<uint8_t>> Get(Filesystem& fs, const std::string& path) {
  COFFER_ASSIGN_OR_RETURN(File f, fs.Open(path, kRdOnly));
  COFFER_ASSIGN_OR_RETURN(uint32_t size, f.Size());
  std::vector<uint8_t> out(size);
  COFFER_ASSIGN_OR_RETURN(size_t n, f.Read(out));
  out.resize(n);
  return out;
}

TEST_P(LongModelTest, ThousandsOfRandomOperations) {
  const Geometry g = GetParam();
  MemoryBlockDevice mem(testing::ToBlockGeometry(g), 0);
  testing::TestFaultDevice dev(mem);
  const Config cfg = testing::ToConfig(g, 16);
  ASSERT_TRUE(Filesystem::Format(mem, cfg).ok());
  auto mounted = Filesystem::Mount(dev, cfg);
  ASSERT_TRUE(mounted.ok());
  std::unique_ptr<Filesystem> fs = std::move(mounted).value();
  std::mt19937 rng(4242);
  std::map<std::string, std::vector<uint8_t>> files;  // synced state
  for (int op = 0; op < 4000; op++) {
    std::string name = "/f" + std::to_string(rng() % 24);
    int c = rng() % 20;
    if (c < 8) {
      auto data = Pattern(rng() % (6 * g.block), op);
      bool append = c == 0 && files.count(name);
      Status s = Put(*fs, name, data, kWrOnly | kCreat | (append ? kAppend : kTrunc));
      if (s.code() == StatusCode::kNoSpace) {
        (void)fs->Remove(name);
        files.erase(name);
        continue;
      }
      ASSERT_TRUE(s.ok()) << s.ToString();
      if (append) {
        files[name].insert(files[name].end(), data.begin(), data.end());
      } else {
        files[name] = data;
      }
    } else if (c < 11) {
      Status s = fs->Remove(name);
      EXPECT_EQ(s.ok(), files.count(name) == 1) << s.ToString();
      files.erase(name);
    } else if (c < 13 && files.count(name)) {
      std::string to = "/f" + std::to_string(rng() % 24);
      ASSERT_TRUE(fs->Rename(name, to).ok());
      auto d = files[name];
      files.erase(name);
      files[to] = d;
    } else if (c < 14) {
      // power cut at a random point of the next write, then remount on the raw device
      dev.budget = rng() % 40;
      std::string victim = "/f" + std::to_string(rng() % 24);
      auto data = Pattern(rng() % (4 * g.block), op + 1000000);
      Status s = Put(*fs, victim, data, kWrOnly | kCreat | kTrunc);
      fs.reset();
      dev.budget = -1;
      auto m = Filesystem::Mount(dev, cfg);
      ASSERT_TRUE(m.ok()) << "op " << op << ": " << m.status().ToString();
      fs = std::move(m).value();
      auto got = Get(*fs, victim);
      const bool existed = files.count(victim) == 1;
      if (got.ok()) {
        bool allowed = *got == data || (existed && *got == files[victim]) || (!existed && got->empty());
        ASSERT_TRUE(allowed) << "op " << op << ": half-written state of " << victim;
        files[victim] = *got;
      } else {
        ASSERT_EQ(got.status().code(), StatusCode::kNotFound) << got.status().ToString();
        ASSERT_FALSE(existed) << "op " << op << ": " << victim << " vanished";
        ASSERT_FALSE(s.ok());
      }
    } else if (c < 15) {
      ASSERT_TRUE(fs->GarbageCollect().ok());
    } else {
      for (auto& [p, d] : files) {
        auto got = Get(*fs, p);
        ASSERT_TRUE(got.ok()) << p << " op " << op << ": " << got.status().ToString();
        ASSERT_TRUE(*got == d) << p << " op " << op;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Geometries, LongModelTest, ::testing::ValuesIn(testing::Geometries()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace coffer::fs
