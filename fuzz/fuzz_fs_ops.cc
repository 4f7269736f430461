// libFuzzer target: a byte-coded sequence of filesystem operations (mkdir, open with flags, write,
// read, seek, truncate, sync, close, remove, rename, stat, setattr, remount, gc) on a small memory
// device. Any crash, sanitizer report or hang is a bug; so is a read that disagrees with what the
// filesystem said the file's size was. Errors such as kNoSpace or kNotFound are expected.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coffer/blockdev/memory_block_device.h"
#include "coffer/fs/filesystem.h"

namespace {

using namespace coffer;

class Reader {
 public:
  Reader(const uint8_t* d, size_t n) : d_(d), n_(n) {}
  bool more() const { return i_ < n_; }
  uint8_t Byte() { return i_ < n_ ? d_[i_++] : 0; }
  uint32_t U16() { return uint32_t(Byte()) | uint32_t(Byte()) << 8; }

 private:
  const uint8_t* d_;
  size_t n_, i_ = 0;
};

std::string Path(Reader& r) {
  static const char* const kParts[] = {"a", "b", "dir", "x", "long_name_for_splitting_metadata_pairs"};
  std::string p;
  int depth = 1 + r.Byte() % 3;
  for (int i = 0; i < depth; ++i) p += "/" + std::string(kParts[r.Byte() % 5]);
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  uint8_t g = r.Byte();
  BlockGeometry geo = (g & 1) ? BlockGeometry{16, 16, 512, 24} : BlockGeometry{256, 256, 256, 48};
  MemoryBlockDevice dev(geo);
  fs::Config config;
  config.read_size = geo.read_size;
  config.prog_size = geo.prog_size;
  config.block_size = geo.block_size;
  config.block_count = geo.block_count;
  config.block_cycles = (g & 2) ? 4 : 500;
  config.disk_version = (g & 4) ? fs::DiskVersion::k2_0 : fs::DiskVersion::k2_1;
  if (!fs::Filesystem::Format(dev, config).ok()) __builtin_trap();
  auto m = fs::Filesystem::Mount(dev, config);
  if (!m.ok()) __builtin_trap();
  std::unique_ptr<fs::Filesystem> f = std::move(m).value();
  std::vector<fs::File> files;
  std::vector<uint8_t> buf(2048);
  for (int steps = 0; r.more() && steps < 400; ++steps) {
    uint8_t op = r.Byte() % 15;
    switch (op) {
      case 0: (void)f->Mkdir(Path(r)); break;
      case 1: {
        if (files.size() >= 4) break;
        static const uint32_t kFlags[] = {fs::kRdOnly, fs::kWrOnly | fs::kCreat, fs::kRdWr | fs::kCreat | fs::kTrunc,
                                          fs::kWrOnly | fs::kAppend | fs::kCreat, fs::kRdWr | fs::kCreat | fs::kExcl};
        auto file = f->Open(Path(r), kFlags[r.Byte() % 5]);
        if (file.ok()) files.push_back(std::move(file).value());
        break;
      }
      case 2: {
        if (files.empty()) break;
        fs::File& file = files[r.Byte() % files.size()];
        size_t n = r.U16() % buf.size();
        for (size_t i = 0; i < n; ++i) buf[i] = uint8_t(i * 7 + steps);
        (void)file.Write(std::span<const uint8_t>(buf.data(), n));
        break;
      }
      case 3: {
        if (files.empty()) break;
        fs::File& file = files[r.Byte() % files.size()];
        auto n = file.Read(std::span<uint8_t>(buf.data(), r.U16() % buf.size()));
        if (n.ok() && *n > buf.size()) __builtin_trap();
        break;
      }
      case 4: {
        if (files.empty()) break;
        fs::File& file = files[r.Byte() % files.size()];
        (void)file.Seek(int64_t(r.U16()) - 1000, fs::Whence(r.Byte() % 3));
        break;
      }
      case 5: {
        if (files.empty()) break;
        (void)files[r.Byte() % files.size()].Truncate(r.U16() % 5000);
        break;
      }
      case 6: {
        if (files.empty()) break;
        (void)files[r.Byte() % files.size()].Sync();
        break;
      }
      case 7: {
        if (files.empty()) break;
        size_t i = r.Byte() % files.size();
        (void)files[i].Close();
        files.erase(files.begin() + long(i));
        break;
      }
      case 8: (void)f->Remove(Path(r)); break;
      case 9: {
        std::string from = Path(r), to = Path(r);
        if (to.rfind(from + "/", 0) == 0) break;  // moving a directory into itself is the caller's error
        (void)f->Rename(from, to);
        break;
      }
      case 10: {
        std::string p = Path(r);
        auto st = f->Stat(p);
        if (st.ok() && st->type == fs::EntryType::kFile && files.empty()) {
          // With no file open, the size in the directory is what a full read returns.
          auto file = f->Open(p, fs::kRdOnly);
          if (file.ok()) {
            uint64_t total = 0;
            for (;;) {
              auto n = file->Read(buf);
              if (!n.ok() || *n == 0) break;
              total += *n;
            }
            if (total != st->size) __builtin_trap();
          }
        }
        break;
      }
      case 11: {
        std::vector<uint8_t> v(r.Byte() % 64, 0x5a);
        (void)f->SetAttr(Path(r), r.Byte(), v);
        break;
      }
      case 12: {  // remount (closes the files first, as the API requires)
        files.clear();
        (void)f->Unmount();
        f.reset();
        auto again = fs::Filesystem::Mount(dev, config);
        if (!again.ok()) __builtin_trap();  // a cleanly unmounted filesystem always mounts
        f = std::move(again).value();
        break;
      }
      case 13: (void)f->GarbageCollect(); break;
      default: {
        auto d = f->OpenDir(Path(r));
        if (d.ok()) {
          for (int i = 0; i < 64; ++i) {
            auto e = d->Read();
            if (!e.ok() || !e->has_value()) break;
          }
        }
      }
    }
  }
  files.clear();
  (void)f->Unmount();
  return 0;
}
