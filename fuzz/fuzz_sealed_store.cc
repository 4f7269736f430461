// Fuzzes opening and reading a sealed volume whose backing store bytes come from the input (the
// attacker's view). Seeds the first records with a valid volume so the fuzzer can reach the tree
// and sector code; any outcome is fine except a crash, or a read that returns data other than the
// committed bytes (the volume only ever holds sector 0 = 0x42...).
#include <cstring>

#include "coffer/blockdev/memory_backing_store.h"
#include "coffer/keys/anchor.h"
#include "coffer/volume/sealed_volume.h"

namespace {

class FixedKey : public coffer::UnlockMethod {
 public:
  coffer::KeySlotType slot_type() const override { return coffer::KeySlotType::kKeyFile; }
  std::string Describe() const override { return "fuzz key"; }
  coffer::Result<coffer::Bytes> NewSlotParams() override { return coffer::Bytes{}; }
  coffer::Result<coffer::SecretBytes> UnlockSecret(coffer::ByteSpan) override { return coffer::SecretBytes(32); }
  std::string DefaultAnchorPath() const override { return ""; }
};

struct Base {
  coffer::Bytes image;
  std::shared_ptr<coffer::MemoryAnchor> anchor = std::make_shared<coffer::MemoryAnchor>();
  Base() {
    FixedKey key;
    auto store = std::make_unique<coffer::MemoryBackingStore>(304, 64);
    auto* raw = store.get();
    auto v = coffer::SealedVolume::Create(std::move(store), key, anchor, {.size_bytes = 256 * 16, .sector_size = 256});
    coffer::Bytes data(256, 0x42);
    (void)(*v)->Prog(0, 0, data);
    (void)(*v)->Sync();
    image = raw->raw();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  static Base base;
  auto store = std::make_unique<MemoryBackingStore>(304, 64);
  store->raw() = base.image;
  // The input overwrites a window of the store at an offset it chooses.
  if (size >= 2) {
    size_t off = (size_t(data[0]) << 8 | data[1]) * 3 % base.image.size();
    size_t n = std::min(size - 2, base.image.size() - off);
    std::memcpy(store->raw().data() + off, data + 2, n);
  }
  auto anchor = std::make_shared<MemoryAnchor>(*base.anchor);
  FixedKey key;
  auto v = SealedVolume::Open(std::move(store), key, anchor);
  if (!v.ok()) return 0;
  Bytes out(256);
  for (uint32_t b = 0; b < (*v)->geometry().block_count; ++b) {
    if (!(*v)->Read(b, 0, out).ok()) continue;
    uint8_t want = b == 0 ? 0x42 : 0xff;
    for (uint8_t x : out) {
      if (x != want) __builtin_trap();  // wrong data passed authentication
    }
  }
  return 0;
}
