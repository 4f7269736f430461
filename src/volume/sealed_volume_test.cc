#include "volume/volume_test_util.h"

#include "blockdev/block_device_conformance.h"

namespace coffer {
namespace {

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

// ---- BlockDevice conformance ----

std::unique_ptr<BlockDevice> MakeSealed(uint32_t s, uint64_t n, CipherSuite c) {
  Rig rig(s, n, c);
  auto v = rig.Open();
  return v.ok() ? std::move(v).value() : nullptr;
}

using ::coffer::testing::BlockDeviceConformance;
INSTANTIATE_TEST_SUITE_P(
    Sealed, BlockDeviceConformance,
    ::testing::Values(
        ::coffer::testing::BlockDeviceFactory{"XChaCha256",
                                              [] { return MakeSealed(256, 32, CipherSuite::kXChaCha20Poly1305); }},
        ::coffer::testing::BlockDeviceFactory{"XChaCha4096",
                                              [] { return MakeSealed(4096, 8, CipherSuite::kXChaCha20Poly1305); }},
        ::coffer::testing::BlockDeviceFactory{"Gcm1024", [] { return MakeSealed(1024, 16, CipherSuite::kAes256Gcm); }}),
    [](const auto& info) { return info.param.name; });

// ---- tamper suite ----

// Writes `count` sectors with known patterns (two commits, so versions differ) and returns the layout.
volume_format::Layout Fill(Rig& rig, uint64_t count) {
  auto v = rig.Open();
  EXPECT_TRUE(v.ok());
  for (uint32_t i = 0; i < count; ++i) {
    EXPECT_TRUE((*v)->Erase(i).ok());
    EXPECT_TRUE((*v)->Prog(i, 0, Pattern(rig.sector, uint8_t(i))).ok());
    if (i == count / 2) EXPECT_TRUE((*v)->Sync().ok());
  }
  EXPECT_TRUE((*v)->Sync().ok());
  return volume_format::MakeLayout(rig.sector, volume_format::PreferredRecordSize(rig.sector), rig.sectors).value();
}

TEST(SealedVolumeTamper, EveryByteOfASealedSectorIsAuthenticated) {
  Rig rig;
  auto l = Fill(rig, 10);
  size_t base = l.first_sector_record * l.record_size + 4 * size_t(l.record_size);  // sector 4
  for (size_t off = 0; off < rig.sector + volume_format::kSectorOverhead; off += (off < 40 || off > 260) ? 1 : 5) {
    rig.mem->raw()[base + off] ^= 0x20;
    auto v = rig.Open();
    ASSERT_TRUE(v.ok());
    Bytes out(256);
    Status s = (*v)->Read(4, 0, out);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << "byte " << off << " of sector 4 changed undetected";
    EXPECT_NE(s.message().find("sector 4"), std::string::npos) << s.message();
    EXPECT_EQ(ReadAllChecked(**v, 256, 10), 1);
    rig.mem->raw()[base + off] ^= 0x20;
  }
}

TEST(SealedVolumeTamper, TreeNodeFlipsAreDetected) {
  Rig rig;
  auto l = Fill(rig, 20);
  size_t tree = l.first_tree_record * l.record_size;
  size_t tree_bytes = l.total_nodes * l.records_per_node * size_t(l.record_size);
  for (size_t off = 0; off < tree_bytes; off += 13) {
    rig.mem->raw()[tree + off] ^= 0x01;
    auto v = rig.Open();
    ASSERT_TRUE(v.ok());
    ReadAllChecked(**v, 256, 20);  // never wrong data
    auto report = (*v)->Verify();
    ASSERT_TRUE(report.ok());
    size_t node = off / (l.records_per_node * size_t(l.record_size));
    size_t in_node = off % (l.records_per_node * size_t(l.record_size));
    bool meaningful = in_node < l.fanout * 32;
    bool populated = node == l.total_nodes - 1 || node < 3;  // 20 sectors on fanout 9: nodes 0..2 + top
    if (meaningful && populated) EXPECT_FALSE(report->ok()) << "tree byte " << off << " changed undetected";
    rig.mem->raw()[tree + off] ^= 0x01;
  }
}

TEST(SealedVolumeTamper, HeaderFlipsAreDataLossNotUnlockFailure) {
  Rig rig;
  Fill(rig, 4);
  for (size_t off = 0; off < volume_format::kHeaderSize; off += 7) {
    rig.mem->raw()[off] ^= 0x08;
    auto v = rig.Open();
    EXPECT_EQ(v.status().code(), StatusCode::kDataLoss) << "header byte " << off;
    rig.mem->raw()[off] ^= 0x08;
  }
  EXPECT_TRUE(rig.Open().ok());
}

TEST(SealedVolumeTamper, SwappedSectorsAreDetected) {
  Rig rig;
  auto l = Fill(rig, 8);
  uint8_t* a = rig.mem->raw().data() + (l.first_sector_record + 2) * l.record_size;
  uint8_t* b = rig.mem->raw().data() + (l.first_sector_record + 6) * l.record_size;
  std::swap_ranges(a, a + l.record_size, b);
  auto v = rig.Open();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(ReadAllChecked(**v, 256, 8), 2);
}

TEST(SealedVolumeTamper, ReplayedOlderSectorIsDetected) {
  Rig rig;
  auto l = Fill(rig, 8);
  size_t off = (l.first_sector_record + 3) * l.record_size;
  Bytes old(rig.mem->raw().begin() + off, rig.mem->raw().begin() + off + l.record_size);
  {
    auto v = rig.Open();
    ASSERT_TRUE((*v)->Erase(3).ok());
    ASSERT_TRUE((*v)->Prog(3, 0, Pattern(256, 99)).ok());
    ASSERT_TRUE((*v)->Sync().ok());
  }
  std::copy(old.begin(), old.end(), rig.mem->raw().begin() + off);
  auto v = rig.Open();
  ASSERT_TRUE(v.ok());
  Bytes out(256);
  EXPECT_EQ((*v)->Read(3, 0, out).code(), StatusCode::kDataLoss);
}

TEST(SealedVolumeTamper, RestoredOlderStoreIsRollback) {
  Rig rig;
  Fill(rig, 4);
  Bytes old = rig.mem->raw();
  {
    auto v = rig.Open();
    ASSERT_TRUE((*v)->Erase(1).ok());
    ASSERT_TRUE((*v)->Sync().ok());
  }
  rig.mem->raw() = old;
  auto v = rig.Open();
  EXPECT_EQ(v.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(v.status().message().find("rolled back"), std::string::npos) << v.status().message();
}

TEST(SealedVolumeTamper, ForkedStateAtTheSameCounterIsRejected) {
  Rig rig;
  Fill(rig, 4);  // anchor at commit 2
  Bytes at2 = rig.mem->raw();
  // Commit 3 reaches the store but not the anchor (crash), and is copied by the attacker.
  {
    auto faulty = std::make_shared<FaultAnchor>(rig.anchor);
    auto v2 = SealedVolume::Open(std::make_unique<Rig::Shared>(rig.mem), rig.key, faulty);
    ASSERT_TRUE(v2.ok());
    faulty->CutPowerAtCommit(0, false);
    ASSERT_TRUE((*v2)->Erase(0).ok());
    ASSERT_TRUE((*v2)->Prog(0, 0, Pattern(256, 50)).ok());
    EXPECT_FALSE((*v2)->Sync().ok());
  }
  Bytes fork3 = rig.mem->raw();
  // The device restarts from the older store (commit 2) and commits a different commit 3.
  rig.mem->raw() = at2;
  {
    auto v = rig.Open();
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE((*v)->Erase(1).ok());
    ASSERT_TRUE((*v)->Sync().ok());
    EXPECT_EQ((*v)->Info().counter, 3u);
  }
  rig.mem->raw() = fork3;
  auto v = rig.Open();
  EXPECT_EQ(v.status().code(), StatusCode::kDataLoss);
}

TEST(SealedVolumeTamper, TruncatedFileStoreIsDataLoss) {
  // Covered at the store level (FileBackingStoreTest.TruncatedOrExtendedFileIsDataLoss) and end to end
  // (tests/volume_test.cc); here: a store smaller than the header says.
  Rig rig;
  auto small = std::make_shared<MemoryBackingStore>(rig.mem->record_size(), rig.mem->record_count() - 1);
  std::copy(rig.mem->raw().begin(), rig.mem->raw().begin() + small->raw().size(), small->raw().begin());
  auto v = SealedVolume::Open(std::make_unique<Rig::Shared>(small), rig.key, rig.anchor);
  EXPECT_EQ(v.status().code(), StatusCode::kDataLoss);
}

// ---- key slots ----

TEST(SealedVolumeKeys, AddOpenRemoveAndCryptoErase) {
  Rig rig;
  Fill(rig, 3);
  TestKey second(7), pass(8, KeySlotType::kPassphrase);
  {
    auto v = rig.Open();
    EXPECT_EQ(*(*v)->AddKeySlot(second), 1);
    EXPECT_EQ(*(*v)->AddKeySlot(pass), 2);
    EXPECT_EQ((*v)->AddKeySlot(second).status().code(), StatusCode::kAlreadyExists);
    EXPECT_EQ((*v)->Info().slots.size(), 3u);
  }
  Bytes with_all = rig.mem->raw();
  for (TestKey* k : {&rig.key, &second, &pass}) {
    auto v = rig.Open(k);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(ReadAllChecked(**v, 256, 3), 0);
  }
  {
    auto v = rig.Open(&second);
    ASSERT_TRUE((*v)->RemoveKeySlot(0, false).ok());
    EXPECT_EQ(*(*v)->FindKeySlot(pass), 2);
  }
  EXPECT_EQ(rig.Open().status().code(), StatusCode::kUnauthenticated);
  // Restoring the header from before the removal is a rollback, so a revoked key stays revoked.
  Bytes after = rig.mem->raw();
  rig.mem->raw() = with_all;
  EXPECT_EQ(rig.Open().status().code(), StatusCode::kDataLoss);
  rig.mem->raw() = after;
  {
    auto v = rig.Open(&pass);
    ASSERT_TRUE((*v)->RemoveKeySlot(1, false).ok());
    EXPECT_EQ((*v)->RemoveKeySlot(2, false).code(), StatusCode::kFailedPrecondition);
    ASSERT_TRUE((*v)->RemoveKeySlot(2, true).ok());
    Bytes out(256);
    EXPECT_FALSE((*v)->Read(0, 0, out).ok());
  }
  // The slot area no longer holds any wrapped key.
  auto h = volume_format::ParseHeader(rig.mem->raw(), "t");
  ASSERT_TRUE(h.ok());
  for (auto& s : h->slots) EXPECT_EQ(s.type, KeySlotType::kEmpty);
  for (size_t i = volume_format::kSlotsOffset; i < volume_format::kSlotsOffset + 8 * volume_format::kSlotSize; ++i) {
    ASSERT_EQ(rig.mem->raw()[i], 0) << i;
  }
  auto v = rig.Open(&pass);
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(v.status().message().find("crypto-erased"), std::string::npos);
}

// ---- nonces ----

// Records every sealed sector written through it (nonce = bytes 8..32 of the sector's first record).
struct NonceLog : BackingStore {
  NonceLog(std::unique_ptr<BackingStore> b, volume_format::Layout l, std::set<Bytes>* seen, int* dups)
      : b(std::move(b)), l(l), seen(seen), dups(dups) {}
  uint32_t record_size() const override { return b->record_size(); }
  uint64_t record_count() const override { return b->record_count(); }
  Status Read(uint64_t f, uint32_t c, std::span<uint8_t> o) override { return b->Read(f, c, o); }
  Status WriteBatch(std::span<const RecordWrite> w) override {
    for (auto& r : w) {
      if (r.index >= l.first_sector_record && r.index < l.first_tree_record &&
          (r.index - l.first_sector_record) % l.records_per_sector == 0) {
        if (!seen->insert(Bytes(r.data.begin() + 8, r.data.begin() + 32)).second) (*dups)++;
      }
    }
    return b->WriteBatch(w);
  }
  Status Flush() override { return b->Flush(); }
  std::string Describe() const override { return "nonce-log"; }
  std::unique_ptr<BackingStore> b;
  volume_format::Layout l;
  std::set<Bytes>* seen;
  int* dups;
};

// Rewrites the same sectors with the same plaintext through power cuts and a whole-device restore;
// every nonce that reaches the store must be new. 256-byte sectors are sealed at the commit, 4 KiB
// ones at the prog (and some of those sealings are dropped by the erase before the next prog).
void ExpectNoNonceRepeats(uint32_t sector, CipherSuite suite) {
  Rig rig(sector, 16, suite);
  auto l = volume_format::MakeLayout(sector, volume_format::PreferredRecordSize(sector), 16).value();
  std::set<Bytes> seen;
  int dups = 0;
  Bytes snapshot = rig.mem->raw();
  MemoryAnchor anchor_snapshot = *rig.anchor;
  uint64_t rng = 1;
  for (int cycle = 0; cycle < 60; ++cycle) {
    auto fault = std::make_unique<FaultBackingStore>(std::make_shared<Rig::Shared>(rig.mem));
    FaultBackingStore* f = fault.get();
    if (cycle % 3 == 2) f->CutPowerAfterRecordWrites(rng % 40);
    auto v = SealedVolume::Open(std::make_unique<NonceLog>(std::move(fault), l, &seen, &dups), rig.key, rig.anchor);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    for (int c = 0; c < 5 && !f->power_cut(); ++c) {
      for (uint32_t s = 0; s < 4; ++s) {
        // The same sector with the same plaintext again and again: nonces must still differ.
        (void)(*v)->Erase(s);
        (void)(*v)->Prog(s, 0, Pattern(sector, uint8_t(s)));
        if (c % 2) (void)(*v)->Erase(s), (void)(*v)->Prog(s, 0, Pattern(sector, uint8_t(s)));
      }
      (void)(*v)->Sync();
    }
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    // A whole-device restore (store and anchor rolled back together) must not make nonces repeat.
    if (cycle == 30) snapshot = rig.mem->raw(), anchor_snapshot = *rig.anchor;
    if (cycle == 45) rig.mem->raw() = snapshot, *rig.anchor = anchor_snapshot;
  }
  EXPECT_GT(seen.size(), 800u);
  EXPECT_EQ(dups, 0);
}

TEST(SealedVolumeNonces, NoNonceRepeatsAcrossRewritesCrashesAndRestores) {
  ExpectNoNonceRepeats(256, CipherSuite::kXChaCha20Poly1305);
}
TEST(SealedVolumeNonces, NoNonceRepeatsWithSectorsSealedAtProg) {
  ExpectNoNonceRepeats(4096, CipherSuite::kXChaCha20Poly1305);
}
TEST(SealedVolumeNonces, NoNonceRepeatsAesGcm) {
  ExpectNoNonceRepeats(256, CipherSuite::kAes256Gcm);
  ExpectNoNonceRepeats(4096, CipherSuite::kAes256Gcm);
}

// The XChaCha20-Poly1305 nonce layout (docs/format/volume.md): the sectors of one commit share a
// random 16-byte prefix and count up in the last 8 bytes; the next commit draws a new prefix.
// AES-256-GCM nonces are 12 random bytes and 12 zero bytes.
TEST(SealedVolumeNonces, EpochPrefixPerCommit) {
  for (CipherSuite suite : {CipherSuite::kXChaCha20Poly1305, CipherSuite::kAes256Gcm}) {
    Rig rig(4096, 8, suite);
    auto l = volume_format::MakeLayout(4096, volume_format::PreferredRecordSize(4096), 8).value();
    auto nonce_of = [&](uint32_t s) {
      Bytes rec(l.record_size);
      EXPECT_TRUE(rig.mem->Read(l.first_sector_record + s * l.records_per_sector, 1, rec).ok());
      return Bytes(rec.begin() + 8, rec.begin() + 32);
    };
    auto v = rig.Open();
    ASSERT_TRUE(v.ok());
    std::vector<Bytes> first, second;
    for (uint32_t s = 0; s < 4; ++s) ASSERT_TRUE((*v)->Prog(s, 0, Pattern(4096, uint8_t(s))).ok());
    ASSERT_TRUE((*v)->Sync().ok());
    for (uint32_t s = 0; s < 4; ++s) first.push_back(nonce_of(s));
    for (uint32_t s = 0; s < 4; ++s) {
      ASSERT_TRUE((*v)->Erase(s).ok());
      ASSERT_TRUE((*v)->Prog(s, 0, Pattern(4096, uint8_t(s + 1))).ok());
    }
    ASSERT_TRUE((*v)->Sync().ok());
    for (uint32_t s = 0; s < 4; ++s) second.push_back(nonce_of(s));
    if (suite == CipherSuite::kAes256Gcm) {
      for (const auto& n : {first, second}) {
        for (const Bytes& b : n) EXPECT_EQ(Bytes(b.begin() + 12, b.end()), Bytes(12, 0));
      }
      EXPECT_NE(first[0], first[1]);
      continue;
    }
    for (size_t k = 0; k < 4; ++k) {
      EXPECT_TRUE(std::equal(first[0].begin(), first[0].begin() + 16, first[k].begin())) << k;
      EXPECT_EQ(GetLe64(first[k].data() + 16), k);
      EXPECT_TRUE(std::equal(second[0].begin(), second[0].begin() + 16, second[k].begin())) << k;
      EXPECT_EQ(GetLe64(second[k].data() + 16), k);
    }
    EXPECT_FALSE(std::equal(first[0].begin(), first[0].begin() + 16, second[0].begin()));
  }
}

TEST(SealedVolumeCrash, PowerCutAtEveryRecordWriteQuick) { CrashSweep(256, 12, 8, 1); }
TEST(SealedVolumeCrash, PowerCutAtEveryRecordWrite4K) { CrashSweep(4096, 8, 6, 1); }

TEST(SealedVolumeMemory, TreeCacheStaysBoundedOnLargeVolume) {
  // 16384 sectors of 256 bytes with a 64 KiB tree cache: verify and reads still work.
  auto l = volume_format::MakeLayout(256, 304, 16384).value();
  auto mem = std::make_shared<MemoryBackingStore>(l.record_size, l.records_used);
  auto anchor = std::make_shared<MemoryAnchor>();
  TestKey key(3);
  VolumeOpenOptions small{.tree_cache_bytes = 64 << 10, .max_dirty_bytes = 256 << 10};
  {
    auto v = SealedVolume::Create(std::make_unique<Rig::Shared>(mem), key, anchor,
                                  {.size_bytes = 16384 * 256, .sector_size = 256}, small);
    ASSERT_TRUE(v.ok());
    for (uint32_t b = 0; b < 16384; b += 7) ASSERT_TRUE((*v)->Prog(b, 0, Pattern(256, uint8_t(b))).ok());
    ASSERT_TRUE((*v)->Sync().ok());
  }
  auto v = SealedVolume::Open(std::make_unique<Rig::Shared>(mem), key, anchor, small);
  ASSERT_TRUE(v.ok());
  auto r = (*v)->Verify();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok());
  EXPECT_EQ(r->written_sectors, (16384 + 6) / 7);
  Bytes out(256);
  ASSERT_TRUE((*v)->Read(7 * 100, 0, out).ok());
  EXPECT_EQ(out, Pattern(256, uint8_t(700)));
}

}  // namespace
}  // namespace coffer
