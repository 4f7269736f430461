// Power-loss sweep for coffer's littlefs: a scripted workload of user-visible atomic steps runs on a
// FaultBlockDevice that cuts the power after N progs/erases, for every N in a schedule. After each
// cut the device powers back on and the filesystem must mount, show exactly the state before or
// after the interrupted step (a file being created may also show as empty, as littlefs creates the
// entry at open), read every file completely, and accept new writes that survive another remount.
// Test-only; single-threaded.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coffer/blockdev/fault_block_device.h"
#include "coffer/blockdev/memory_block_device.h"
#include "coffer/fs/filesystem.h"
#include "fstest/fs_test_util.h"

namespace coffer::fstest {

struct PowerLossSetup {
  std::string name;
  BlockGeometry geometry;
  int32_t block_cycles;
  fs::DiskVersion disk_version;
};

struct WorkloadStep {
  std::string what;
  std::function<Status(fs::Filesystem&)> run;
  std::function<void(Tree&)> apply;
  std::string created;  // a file this step creates (may survive a cut as an empty file)
};

inline std::vector<WorkloadStep> MakeWorkload(uint32_t block_size) {
  std::vector<WorkloadStep> w;
  auto put = [&](std::string path, uint32_t seed, size_t size, bool create) {
    std::string data = Content(seed, size);
    w.push_back({"write " + path, [path, data](fs::Filesystem& f) { return WriteWholeFile(f, path, data); },
                 [path, data](Tree& t) { t[path] = data; }, create ? path : ""});
  };
  auto mkdir = [&](std::string path) {
    w.push_back({"mkdir " + path, [path](fs::Filesystem& f) { return f.Mkdir(path); },
                 [path](Tree& t) { t[path] = kDirMarker; }, ""});
  };
  auto rename = [&](std::string from, std::string to) {
    w.push_back({"rename " + from + " " + to, [from, to](fs::Filesystem& f) { return f.Rename(from, to); },
                 [from, to](Tree& t) {
                   Tree moved;
                   for (auto it = t.begin(); it != t.end();) {
                     if (it->first == from || it->first.rfind(from + "/", 0) == 0) {
                       moved[to + it->first.substr(from.size())] = it->second;
                       it = t.erase(it);
                     } else {
                       ++it;
                     }
                   }
                   for (auto& [p, c] : moved) t[p] = c;
                 },
                 ""});
  };
  auto remove = [&](std::string path) {
    w.push_back({"remove " + path, [path](fs::Filesystem& f) { return f.Remove(path); },
                 [path](Tree& t) { t.erase(path); }, ""});
  };
  auto append = [&](std::string path, uint32_t seed, size_t size) {
    std::string data = Content(seed, size);
    w.push_back({"append " + path,
                 [path, data](fs::Filesystem& f) { return WriteWholeFile(f, path, data, fs::kWrOnly | fs::kAppend); },
                 [path, data](Tree& t) { t[path] += data; }, ""});
  };
  auto truncate = [&](std::string path, uint32_t size) {
    w.push_back({"truncate " + path,
                 [path, size](fs::Filesystem& f) -> Status {
                   COFFER_ASSIGN_OR_RETURN(fs::File file, f.Open(path, fs::kRdWr));
                   COFFER_RETURN_IF_ERROR(file.Truncate(size));
                   return file.Close();
                 },
                 [path, size](Tree& t) { t[path].resize(size); }, ""});
  };
  mkdir("/a");
  put("/a/small", 1, 40, true);
  put("/big", 2, 3 * block_size + 100, true);
  mkdir("/a/b");
  put("/a/b/mid", 3, block_size / 2 + 7, true);
  put("/big", 4, 2 * block_size + 5, false);
  append("/a/small", 5, 300);
  rename("/a/small", "/a/b/moved");
  remove("/a/b/mid");
  rename("/big", "/a/big2");
  for (int i = 0; i < 6; ++i) put("/f" + std::to_string(i), 10 + i, 20 + 30 * i, true);
  put("/a/b/moved", 6, 9, false);
  for (int i = 0; i < 3; ++i) remove("/f" + std::to_string(i));
  mkdir("/c");
  rename("/a/b", "/c/b");
  truncate("/a/big2", 10);
  append("/a/big2", 7, block_size + 3);
  return w;
}

inline fs::Config ConfigFor(const PowerLossSetup& s) {
  fs::Config c;
  c.read_size = s.geometry.read_size;
  c.prog_size = s.geometry.prog_size;
  c.block_size = s.geometry.block_size;
  c.block_count = s.geometry.block_count;
  c.block_cycles = s.block_cycles;
  c.lookahead_size = 16;
  c.disk_version = s.disk_version;
  return c;
}

// Runs the workload with a cut after `cut_after` progs/erases. Returns false if the workload finished
// before the cut (the sweep is past its end).
inline bool RunOneCut(const PowerLossSetup& setup, PowerCutMode mode, uint64_t cut_after, uint64_t seed) {
  auto fault = std::make_unique<FaultBlockDevice>(std::make_unique<MemoryBlockDevice>(setup.geometry), seed);
  FaultBlockDevice& dev = *fault;
  fs::Config config = ConfigFor(setup);
  Status fmt = fs::Filesystem::Format(dev, config);
  EXPECT_TRUE(fmt.ok()) << fmt.ToString();
  if (!fmt.ok()) return false;
  auto steps = MakeWorkload(setup.geometry.block_size);
  std::vector<Tree> after(steps.size() + 1);
  for (size_t i = 0; i < steps.size(); ++i) {
    after[i + 1] = after[i];
    steps[i].apply(after[i + 1]);
  }
  std::string where = setup.name + " cut after " + std::to_string(cut_after) + " ops, seed " + std::to_string(seed);
  dev.ArmPowerCut(cut_after, mode);
  size_t failed_step = steps.size();
  {
    auto mounted = fs::Filesystem::Mount(dev, config);
    if (mounted.ok()) {
      for (size_t i = 0; i < steps.size(); ++i) {
        Status s = steps[i].run(**mounted);
        if (!s.ok()) {
          EXPECT_TRUE(dev.powered_off()) << where << ": step '" << steps[i].what << "' failed without a power cut: "
                                         << s.ToString();
          failed_step = i;
          break;
        }
      }
    } else {
      EXPECT_TRUE(dev.powered_off()) << where << ": mount failed: " << mounted.status().ToString();
      failed_step = 0;
    }
  }  // the filesystem goes away with the power off (its unmount writes fail)
  if (!dev.powered_off()) return false;
  dev.Reset();
  std::vector<Tree> allowed = {after[failed_step]};
  if (failed_step < steps.size()) {
    allowed.push_back(after[failed_step + 1]);
    if (!steps[failed_step].created.empty()) {
      Tree empty = after[failed_step];
      empty[steps[failed_step].created] = "";
      allowed.push_back(empty);
    }
  }
  std::string in_step = failed_step < steps.size() ? steps[failed_step].what : "(mount)";
  auto mounted = fs::Filesystem::Mount(dev, config);
  EXPECT_TRUE(mounted.ok()) << where << " during '" << in_step << "': remount failed: "
                            << mounted.status().ToString();
  if (!mounted.ok()) return true;
  auto tree = ReadTree(**mounted);
  EXPECT_TRUE(tree.ok()) << where << " during '" << in_step << "': " << tree.status().ToString();
  if (!tree.ok()) return true;
  bool match = std::find(allowed.begin(), allowed.end(), *tree) != allowed.end();
  EXPECT_TRUE(match) << where << " during '" << in_step << "': state after remount is neither before nor after:\n"
                     << "found:\n" << DescribeTree(*tree) << "before:\n" << DescribeTree(after[failed_step])
                     << "after:\n" << DescribeTree(allowed.size() > 1 ? allowed[1] : allowed[0]);
  if (!match) return true;
  // The recovered filesystem takes new writes, and they survive a clean remount.
  std::string probe = Content(uint32_t(cut_after), 123);
  Status w = WriteWholeFile(**mounted, "/after-recovery", probe);
  EXPECT_TRUE(w.ok()) << where << ": write after recovery: " << w.ToString();
  Status u = (*mounted)->Unmount();
  EXPECT_TRUE(u.ok()) << where << ": " << u.ToString();
  mounted = fs::Filesystem::Mount(dev, config);
  EXPECT_TRUE(mounted.ok()) << where << ": second remount: " << mounted.status().ToString();
  if (!mounted.ok()) return true;
  auto again = ReadTree(**mounted);
  EXPECT_TRUE(again.ok()) << where << ": " << again.status().ToString();
  if (again.ok()) {
    Tree want = *tree;
    want["/after-recovery"] = probe;
    EXPECT_EQ(*again, want) << where << ": after recovery write\n" << DescribeTree(*again);
  }
  return true;
}

// How many progs/erases the whole workload takes without faults (the sweep's length).
inline uint64_t WorkloadOps(const PowerLossSetup& setup) {
  FaultBlockDevice dev(std::make_unique<MemoryBlockDevice>(setup.geometry));
  fs::Config config = ConfigFor(setup);
  EXPECT_TRUE(fs::Filesystem::Format(dev, config).ok());
  uint64_t start = dev.mutating_ops();
  auto mounted = fs::Filesystem::Mount(dev, config);
  EXPECT_TRUE(mounted.ok()) << mounted.status().ToString();
  if (!mounted.ok()) return 0;
  Tree want;
  for (auto& step : MakeWorkload(setup.geometry.block_size)) {
    Status s = step.run(**mounted);
    EXPECT_TRUE(s.ok()) << step.what << ": " << s.ToString();
    step.apply(want);
  }
  auto tree = ReadTree(**mounted);
  EXPECT_TRUE(tree.ok() && *tree == want) << "the workload itself is wrong without faults";
  EXPECT_TRUE((*mounted)->Unmount().ok());
  return dev.mutating_ops() - start;
}

// Cuts at every `stride`-th op (and the first and last few) of the workload.
inline void Sweep(const PowerLossSetup& setup, PowerCutMode mode, uint64_t stride, uint64_t seeds = 1) {
  uint64_t total = WorkloadOps(setup);
  ASSERT_GT(total, 10u);
  uint64_t runs = 0;
  for (uint64_t n = 0; n < total + 1; ++n) {
    bool edge = n < 4 || n + 4 > total;
    if (!edge && n % stride != 0) continue;
    for (uint64_t seed = 1; seed <= seeds; ++seed) {
      if (RunOneCut(setup, mode, n, seed * 1000003 + n)) runs++;
      if (::testing::Test::HasFailure()) {
        ADD_FAILURE() << "stopping the sweep at the first failure (" << setup.name << ", op " << n << ")";
        return;
      }
    }
  }
  EXPECT_GT(runs, 0u);
  std::printf("[ sweep    ] %s: %llu ops in the workload, %llu crashes checked\n", setup.name.c_str(),
              (unsigned long long)total, (unsigned long long)runs);
}

inline void PrintTo(const PowerLossSetup& s, std::ostream* os) { *os << s.name; }

inline std::vector<PowerLossSetup> PowerLossSetups() {
  return {
      {"nor16x512_disk21", BlockGeometry{16, 16, 512, 64}, 500, fs::DiskVersion::k2_1},
      {"remote256_disk20", BlockGeometry{256, 256, 256, 96}, 500, fs::DiskVersion::k2_0},
      {"nor16x512_wear8_disk21", BlockGeometry{16, 16, 512, 64}, 8, fs::DiskVersion::k2_1},
  };
}

}  // namespace coffer::fstest
