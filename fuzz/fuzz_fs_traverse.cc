// libFuzzer target: a fuzzed littlefs image is mounted on a MemoryBlockDevice, the whole tree is
// listed and every file is read, within fixed bounds. Any crash, sanitizer report or hang is a bug;
// errors (kCorrupt, kInvalidArgument...) are the expected outcome for most inputs.
// Input: byte 0 picks the geometry (block size 128 << (b & 3), read/prog 16 or block size), the
// rest is the image (padded with 0xff to whole blocks, at most 64 blocks).
// Seeds: fuzz/corpus/fuzz_fs_traverse/ (tiny images made with `coffer fs pack`, plus the header byte).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "coffer/blockdev/memory_block_device.h"
#include "coffer/fs/filesystem.h"

namespace {

using namespace coffer;

struct Budget {
  int entries = 4096;
  uint64_t bytes = 1 << 20;
};

void Walk(fs::Filesystem& f, const std::string& dir, int depth, Budget& budget) {
  if (depth > 32) return;
  auto d = f.OpenDir(dir);
  if (!d.ok()) return;
  std::vector<fs::EntryInfo> entries;
  while (budget.entries-- > 0) {
    auto e = d->Read();
    if (!e.ok() || !e->has_value()) break;
    if ((*e)->name == "." || (*e)->name == "..") continue;
    if ((*e)->name.empty() || (*e)->name.find('/') != std::string::npos) continue;  // not a path we can form
    entries.push_back(**e);
  }
  (void)d->Rewind();
  (void)d->Tell();
  for (const auto& e : entries) {
    std::string path = (dir == "/" ? "" : dir) + "/" + e.name;
    (void)f.Stat(path);
    (void)f.GetAttr(path, 0x74);
    if (e.type == fs::EntryType::kDir) {
      Walk(f, path, depth + 1, budget);
      continue;
    }
    auto file = f.Open(path, fs::kRdOnly);
    if (!file.ok()) continue;
    uint8_t buf[512];
    while (budget.bytes > 0) {
      auto n = file->Read(buf);
      if (!n.ok() || *n == 0) break;
      budget.bytes -= std::min<uint64_t>(budget.bytes, *n);
    }
    (void)file->Seek(-1, fs::Whence::kEnd);
    (void)file->Size();
    (void)file->Close();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint32_t block_size = 128u << (data[0] & 3);
  uint32_t io = (data[0] & 4) ? block_size : 16;
  data++;
  size--;
  uint32_t blocks = uint32_t(std::min<size_t>(64, std::max<size_t>(2, (size + block_size - 1) / block_size)));
  MemoryBlockDevice dev(BlockGeometry{io, io, block_size, blocks});
  std::memcpy(dev.raw().data(), data, std::min<size_t>(size, dev.raw().size()));
  fs::Config config;
  config.read_size = io;
  config.prog_size = io;
  config.block_size = block_size;
  config.block_count = 0;  // from the superblock: hostile values must be refused
  (void)fs::Filesystem::Probe(dev, block_size);
  auto mounted = fs::Filesystem::Mount(dev, config);
  if (!mounted.ok()) return 0;
  Budget budget;
  Walk(**mounted, "/", 0, budget);
  int visits = 0;
  (void)(*mounted)->Traverse([&](uint32_t) { return ++visits > 100000 ? Corrupt("too many") : Status::Ok(); });
  (void)(*mounted)->BlocksInUse();
  (void)(*mounted)->Unmount();
  return 0;
}
