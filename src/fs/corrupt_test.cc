// Hostile and damaged images: every mount/walk/read returns a Status (kCorrupt for broken
// structure), never a crash, a hang or an out-of-bounds read (run under ASan in CI).
#include <filesystem>
#include <fstream>
#include <random>

#include "coffer/fs/filesystem.h"
#include "fs/fs_test_util.h"
#include "gtest/gtest.h"

namespace coffer::fs {
namespace {

using testing::Pattern;

// Walks and reads everything reachable; returns the number of files read fully.
int WalkAll(Filesystem& fs, const std::string& dir, int depth = 0) {
  if (depth > 16) return 0;
  auto d = fs.OpenDir(dir);
  if (!d.ok()) return 0;
  int files = 0;
  for (int guard = 0; guard < 5000; guard++) {
    auto e = d->Read();
    if (!e.ok() || !e->has_value()) break;
    const EntryInfo& info = **e;
    if (info.name == "." || info.name == "..") continue;
    std::string path = (dir == "/" ? "" : dir) + "/" + info.name;
    if (info.type == EntryType::kDir) {
      files += WalkAll(fs, path, depth + 1);
    } else if (auto f = fs.Open(path, kRdOnly); f.ok()) {
      std::vector<uint8_t> buf(std::min<uint32_t>(info.size, 1 << 20) + 1);
      if (f->Read(buf).ok()) files++;
    }
    (void)fs.GetAttr(path, 1);
  }
  return files;
}

std::vector<uint8_t> ReadImage(const std::string& name) {
  std::ifstream in(std::filesystem::path(COFFER_VECTORS_DIR) / "littlefs" / name / "image.bin",
                   std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(CorruptImageTest, GarbageAndBlankDevicesAreCorrupt) {
  BlockGeometry g{16, 16, 512, 64, 0xff};
  for (int fill : {0x00, 0xff, -1}) {
    MemoryBlockDevice dev(g, 0);
    if (fill >= 0) {
      std::fill(dev.raw().begin(), dev.raw().end(), uint8_t(fill));
    } else {
      dev.raw() = Pattern(dev.raw().size(), 5);
    }
    auto m = Filesystem::Mount(dev, Config{});
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), StatusCode::kCorrupt) << m.status().ToString();
    auto p = Filesystem::Probe(dev);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), StatusCode::kCorrupt) << p.status().ToString();
  }
}

TEST(CorruptImageTest, WrongGeometryIsAClearError) {
  BlockGeometry g{16, 16, 512, 64, 0xff};
  MemoryBlockDevice dev(g);
  Config cfg;
  ASSERT_TRUE(Filesystem::Format(dev, cfg).ok());
  cfg.block_count = 32;
  auto m = Filesystem::Mount(dev, cfg);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("blocks"), std::string::npos) << m.status().ToString();
  Config bad;
  bad.block_cycles = 0;
  EXPECT_EQ(Filesystem::Format(dev, bad).code(), StatusCode::kInvalidArgument);
  Config small;
  small.block_size = 64;
  EXPECT_EQ(Filesystem::Format(dev, small).code(), StatusCode::kInvalidArgument);
}

TEST(CorruptImageTest, ByteFlipsInReferenceImagesNeverCrash) {
  auto original = ReadImage("esp_v2.11.2_disk2.1");
  if (original.empty()) GTEST_SKIP() << "reference image missing";
  BlockGeometry g{16, 16, 4096, uint32_t(original.size() / 4096), 0xff};
  std::mt19937 rng(99);
  int mounted = 0;
  for (int round = 0; round < 150; round++) {
    MemoryBlockDevice dev(g, 0);
    dev.raw() = original;
    dev.set_strict_prog(false);
    // damage the metadata-heavy first blocks most of the time, anywhere otherwise
    int flips = 1 + rng() % 4;
    for (int i = 0; i < flips; i++) {
      size_t at = rng() % 3 ? rng() % (24 * 4096) : rng() % original.size();
      dev.raw()[at] ^= uint8_t(1 + rng() % 255);
    }
    auto m = Filesystem::Mount(dev, Config{});
    if (!m.ok()) {
      EXPECT_TRUE(m.status().code() == StatusCode::kCorrupt ||
                  m.status().code() == StatusCode::kInvalidArgument ||
                  m.status().code() == StatusCode::kUnsupported)
          << m.status().ToString();
      continue;
    }
    mounted++;
    WalkAll(**m, "/");
    (void)(*m)->BlocksInUse();
    // writing to a damaged image fails or succeeds, but stays within the device
    if (auto f = (*m)->Open("/x", kWrOnly | kCreat); f.ok()) {
      (void)f->Write(Pattern(9000, round));
      (void)f->Close();
    }
  }
  EXPECT_GT(mounted, 0);
}

}  // namespace
}  // namespace coffer::fs
