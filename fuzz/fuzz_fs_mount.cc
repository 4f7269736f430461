// libFuzzer target: mount a fuzzed littlefs image, walk the tree, read every file and attribute,
// traverse the blocks, then try a small write. Any input must give a Status, never a crash,
// hang or out-of-bounds access. Input: byte 0 picks the block size (128..1024), the rest is the
// image (padded with 0xff to whole blocks, at least 2 and at most 64 blocks).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "coffer/blockdev/memory_block_device.h"
#include "coffer/fs/filesystem.h"

namespace {

using coffer::fs::Filesystem;

void Walk(Filesystem& fs, const std::string& dir, int depth, int* budget) {
  if (depth > 8) return;
  auto d = fs.OpenDir(dir);
  if (!d.ok()) return;
  while (--*budget > 0) {
    auto e = d->Read();
    if (!e.ok() || !e->has_value()) return;
    const auto& info = **e;
    if (info.name == "." || info.name == "..") continue;
    std::string path = (dir == "/" ? "" : dir) + "/" + info.name;
    (void)fs.Stat(path);
    (void)fs.GetAttr(path, 0x74);
    if (info.type == coffer::fs::EntryType::kDir) {
      Walk(fs, path, depth + 1, budget);
    } else {
      auto f = fs.Open(path, coffer::fs::kRdOnly);
      if (!f.ok()) continue;
      std::vector<uint8_t> buf(4096);
      for (int i = 0; i < 64; i++) {
        auto n = f->Read(buf);
        if (!n.ok() || *n == 0) break;
      }
      (void)f->Seek(-1, coffer::fs::Whence::kEnd);
      (void)f->Read(buf);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t bs = 128u << (data[0] % 4);
  data++;
  size--;
  uint32_t count = uint32_t((size + bs - 1) / bs);
  if (count < 2) count = 2;
  if (count > 64) count = 64;
  coffer::BlockGeometry g;
  g.read_size = 16;
  g.prog_size = 16;
  g.block_size = bs;
  g.block_count = count;
  g.erase_value = 0xff;
  coffer::MemoryBlockDevice dev(g, 0xff);
  std::copy(data, data + std::min<size_t>(size, dev.raw().size()), dev.raw().begin());
  dev.set_strict_prog(false);  // fuzzed images have "programmed" bytes anywhere

  (void)Filesystem::Probe(dev);
  coffer::fs::Config cfg;
  cfg.block_size = bs;
  auto fs = Filesystem::Mount(dev, cfg);
  if (!fs.ok()) return 0;
  int budget = 2000;
  Walk(**fs, "/", 0, &budget);
  (void)(*fs)->BlocksInUse();
  (void)(*fs)->Traverse([](uint32_t) { return coffer::Status::Ok(); });
  // writes on a hostile image must fail cleanly too
  if (auto f = (*fs)->Open("/fuzz", coffer::fs::kWrOnly | coffer::fs::kCreat); f.ok()) {
    std::vector<uint8_t> junk(300, 0x5a);
    (void)f->Write(junk);
    (void)f->Close();
  }
  (void)(*fs)->Mkdir("/fuzzdir");
  (void)(*fs)->Rename("/fuzz", "/fuzzdir/x");
  (void)(*fs)->Unmount();
  return 0;
}
