#include "coffer/volume/sealed_volume.h"

#include <gtest/gtest.h>

#include "coffer/base/random.h"
#include "coffer/blockdev/memory_backing_store.h"
#include "coffer/keys/key_file.h"
#include "volume/volume_format.h"

namespace coffer {
namespace {

// An unlock method with a fixed secret (no files).
class TestKey : public UnlockMethod {
 public:
  explicit TestKey(uint8_t v, KeySlotType type = KeySlotType::kKeyFile) : secret_(32), type_(type) {
    std::fill(secret_.reveal().begin(), secret_.reveal().end(), v);
  }
  KeySlotType slot_type() const override { return type_; }
  std::string Describe() const override { return "test key"; }
  Result<Bytes> NewSlotParams() override { return Bytes{}; }
  Result<SecretBytes> UnlockSecret(ByteSpan) override { return secret_.Clone(); }
  std::string DefaultAnchorPath() const override { return ""; }

 private:
  SecretBytes secret_;
  KeySlotType type_;
};

struct Rig {
  uint32_t sector = 256;
  uint64_t sectors = 64;
  std::shared_ptr<MemoryBackingStore> mem;
  std::shared_ptr<MemoryAnchor> anchor = std::make_shared<MemoryAnchor>();
  TestKey key{1};
  CipherSuite suite = CipherSuite::kXChaCha20Poly1305;

  explicit Rig(uint32_t s = 256, uint64_t n = 64, CipherSuite c = CipherSuite::kXChaCha20Poly1305)
      : sector(s), sectors(n), suite(c) {
    auto l = volume_format::MakeLayout(s, volume_format::PreferredRecordSize(s), n).value();
    mem = std::make_shared<MemoryBackingStore>(l.record_size, l.records_used);
    auto v = SealedVolume::Create(std::make_unique<Shared>(mem), key, anchor,
                                  {.size_bytes = uint64_t(s) * n, .sector_size = s, .suite = c});
    EXPECT_TRUE(v.ok()) << v.status().ToString();
  }
  // A BackingStore view over the shared memory store (the "disk" outlives each open).
  struct Shared : BackingStore {
    explicit Shared(std::shared_ptr<BackingStore> b) : b(std::move(b)) {}
    uint32_t record_size() const override { return b->record_size(); }
    uint64_t record_count() const override { return b->record_count(); }
    Status Read(uint64_t f, uint32_t c, std::span<uint8_t> o) override { return b->Read(f, c, o); }
    Status WriteBatch(std::span<const RecordWrite> w) override { return b->WriteBatch(w); }
    std::string Describe() const override { return "mem:test"; }
    std::shared_ptr<BackingStore> b;
  };
  Result<std::unique_ptr<SealedVolume>> Open(UnlockMethod* k = nullptr) {
    return SealedVolume::Open(std::make_unique<Shared>(mem), k ? *k : key, anchor);
  }
};

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed * 13 + i * 7);
  return b;
}

TEST(SealedVolume, WriteSyncReopenRead) {
  for (CipherSuite c : {CipherSuite::kXChaCha20Poly1305, CipherSuite::kAes256Gcm}) {
    Rig rig(256, 64, c);
    {
      auto v = rig.Open();
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      EXPECT_EQ((*v)->geometry().block_size, 256u);
      EXPECT_EQ((*v)->geometry().block_count, 64u);
      ASSERT_TRUE((*v)->Erase(3).ok());
      ASSERT_TRUE((*v)->Prog(3, 0, Pattern(256, 1)).ok());
      Bytes out(256);
      ASSERT_TRUE((*v)->Read(3, 0, out).ok());  // read-your-writes
      EXPECT_EQ(out, Pattern(256, 1));
      ASSERT_TRUE((*v)->Sync().ok());
      EXPECT_EQ((*v)->Info().counter, 1u);
    }
    auto v = rig.Open();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    Bytes out(256);
    ASSERT_TRUE((*v)->Read(3, 0, out).ok());
    EXPECT_EQ(out, Pattern(256, 1));
    ASSERT_TRUE((*v)->Read(4, 0, out).ok());
    EXPECT_EQ(out, Bytes(256, 0xff));
  }
}

TEST(SealedVolume, UnsyncedWritesAreLostLikeFlash) {
  Rig rig;
  {
    auto v = rig.Open();
    ASSERT_TRUE((*v)->Prog(5, 0, Pattern(256, 2)).ok());
  }
  auto v = rig.Open();
  Bytes out(256);
  ASSERT_TRUE((*v)->Read(5, 0, out).ok());
  EXPECT_EQ(out, Bytes(256, 0xff));
}

TEST(SealedVolume, WrongKeyIsUnauthenticatedAndChangesNothing) {
  Rig rig;
  Bytes before = rig.mem->raw();
  TestKey wrong(2);
  auto v = rig.Open(&wrong);
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(rig.mem->raw(), before);
  TestKey other_type(1, KeySlotType::kPassphrase);
  EXPECT_EQ(rig.Open(&other_type).status().code(), StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace coffer
