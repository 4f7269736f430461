// The backends the store tests run on.
#include "objects/store_test_backends.h"

#include "coffer/blockdev/memory_block_device.h"
#include "coffer/objects/fs_backend.h"

namespace coffer::objects {
namespace {

class MemoryHolder : public BackendHolder {
 public:
  std::unique_ptr<ObjectBackend> TakeBackend() override { return NewMemoryBackend(); }
};

// littlefs on a RAM device: 512-byte blocks, 2 MiB.
class FsHolder : public BackendHolder {
 public:
  FsHolder() : device_(BlockGeometry{16, 16, 512, 4096, 0xff}) {}
  ~FsHolder() override {
    if (fs_) (void)fs_->Unmount();
  }
  std::unique_ptr<ObjectBackend> TakeBackend() override {
    Status st = FormatIfBlank(device_);
    if (!st.ok()) return nullptr;
    auto fs = fs::Filesystem::Mount(device_, {});
    if (!fs.ok()) return nullptr;
    fs_ = std::move(fs).value();
    auto b = NewFsBackend(*fs_);
    return b.ok() ? std::move(b).value() : nullptr;
  }

 private:
  MemoryBlockDevice device_;
  std::unique_ptr<fs::Filesystem> fs_;
};

}  // namespace

std::vector<BackendFactory> AllBackendFactories() {
  std::vector<BackendFactory> out;
  out.push_back({"Memory", [] { return std::unique_ptr<BackendHolder>(new MemoryHolder()); }});
  out.push_back({"Littlefs", [] { return std::unique_ptr<BackendHolder>(new FsHolder()); }});
  return out;
}

}  // namespace coffer::objects
