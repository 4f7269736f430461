// Shared helpers for the sealed volume tests (unit and long): a test rig over a memory store,
// patterns, and the crash-sweep driver. Test-only.
#pragma once

#include "coffer/volume/sealed_volume.h"

#include <gtest/gtest.h>

#include <set>

#include "coffer/base/random.h"
#include "coffer/blockdev/fault_backing_store.h"
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

// Reads every sector: each read is either exactly right or kDataLoss. Returns the DataLoss count.
int ReadAllChecked(BlockDevice& v, uint32_t sector, uint64_t written) {
  int detected = 0;
  Bytes out(sector);
  for (uint32_t i = 0; i < v.geometry().block_count; ++i) {
    Status s = v.Read(i, 0, out);
    if (!s.ok()) {
      EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.ToString();
      detected++;
      continue;
    }
    EXPECT_EQ(out, i < written ? Pattern(sector, uint8_t(i)) : Bytes(sector, 0xff)) << "WRONG DATA in sector " << i;
  }
  return detected;
}

// ---- crash sweep ----

struct Step {
  enum Kind { kErase, kProg, kSync } kind;
  uint32_t block = 0, offset = 0, size = 0;
  uint8_t seed = 0;
};

std::vector<Step> Workload(uint32_t blocks, int commits, uint32_t sector) {
  std::vector<Step> w;
  uint64_t x = 12345;
  auto next = [&] { return uint32_t((x = x * 6364136223846793005ull + 1442695040888963407ull) >> 33); };
  for (int c = 0; c < commits; ++c) {
    int ops = 1 + next() % 4;
    for (int o = 0; o < ops; ++o) {
      uint32_t b = next() % blocks;
      w.push_back({Step::kErase, b});
      if (next() % 4 != 0) {
        uint32_t units = sector / 256;
        uint32_t off = (next() % units) * 256;
        w.push_back({Step::kProg, b, off, 256 * (1 + next() % (units - off / 256)), uint8_t(next())});
      }
    }
    w.push_back({Step::kSync});
  }
  return w;
}

// Applies the workload to a model image; returns the image after each commit (index 0 = initial).
std::vector<Bytes> ModelStates(const std::vector<Step>& w, uint32_t blocks, uint32_t sector) {
  std::vector<Bytes> states{Bytes(size_t(blocks) * sector, 0xff)};
  Bytes cur = states[0];
  for (const Step& s : w) {
    if (s.kind == Step::kErase) std::fill_n(cur.begin() + size_t(s.block) * sector, sector, 0xff);
    if (s.kind == Step::kProg) {
      Bytes p = Pattern(s.size, s.seed);
      std::copy(p.begin(), p.end(), cur.begin() + size_t(s.block) * sector + s.offset);
    }
    if (s.kind == Step::kSync) states.push_back(cur);
  }
  return states;
}

// Runs the workload until something fails; returns the number of Syncs that succeeded.
int RunUntilFailure(SealedVolume& v, const std::vector<Step>& w) {
  int synced = 0;
  for (const Step& s : w) {
    Status st;
    if (s.kind == Step::kErase) st = v.Erase(s.block);
    if (s.kind == Step::kProg) st = v.Prog(s.block, s.offset, Pattern(s.size, s.seed));
    if (s.kind == Step::kSync) st = v.Sync();
    if (!st.ok()) return synced;
    if (s.kind == Step::kSync) synced++;
  }
  return synced;
}

Bytes Image(SealedVolume& v) {
  const auto& g = v.geometry();
  Bytes img(g.total_bytes());
  for (uint32_t b = 0; b < g.block_count; ++b) {
    Status s = v.Read(b, 0, {img.data() + size_t(b) * g.block_size, g.block_size});
    EXPECT_TRUE(s.ok()) << "false tamper alarm after a crash: " << s.ToString();
  }
  return img;
}

void CrashSweep(uint32_t sector, uint32_t blocks, int commits, uint64_t stride) {
  auto w = Workload(blocks, commits, sector);
  auto states = ModelStates(w, blocks, sector);
  // Dry run: how many record writes and anchor commits the workload makes.
  uint64_t total_records;
  {
    Rig rig(sector, blocks);
    auto f = std::make_unique<FaultBackingStore>(std::make_shared<Rig::Shared>(rig.mem));
    FaultBackingStore* fp = f.get();
    auto v = SealedVolume::Open(std::move(f), rig.key, rig.anchor);
    ASSERT_EQ(RunUntilFailure(**v, w), commits);
    EXPECT_EQ(Image(**v), states.back());
    total_records = fp->counters().records_written;
  }
  for (uint64_t cut = 0; cut <= total_records; cut += stride) {
    Rig rig(sector, blocks);
    int synced;
    {
      auto f = std::make_unique<FaultBackingStore>(std::make_shared<Rig::Shared>(rig.mem));
      f->CutPowerAfterRecordWrites(cut);
      auto v = SealedVolume::Open(std::move(f), rig.key, rig.anchor);
      ASSERT_TRUE(v.ok());
      synced = RunUntilFailure(**v, w);
    }
    auto v = rig.Open();
    ASSERT_TRUE(v.ok()) << "remount after power cut at record " << cut << ": " << v.status().ToString();
    Bytes img = Image(**v);
    bool old_state = img == states[synced];
    bool new_state = size_t(synced + 1) < states.size() && img == states[synced + 1];
    EXPECT_TRUE(old_state || new_state) << "cut at record " << cut << " after " << synced << " syncs";
    // The remounted volume keeps working.
    ASSERT_TRUE((*v)->Erase(0).ok());
    ASSERT_TRUE((*v)->Sync().ok());
  }
  // The anchor: power cut at every anchor commit, landing or not.
  for (int n = 0; n < commits; ++n) {
    for (bool lands : {false, true}) {
      Rig rig(sector, blocks);
      auto fa = std::make_shared<FaultAnchor>(rig.anchor);
      fa->CutPowerAtCommit(n, lands);
      int synced;
      {
        auto v = SealedVolume::Open(std::make_unique<Rig::Shared>(rig.mem), rig.key, fa);
        ASSERT_TRUE(v.ok());
        synced = RunUntilFailure(**v, w);
      }
      EXPECT_EQ(synced, n);
      auto v = rig.Open();
      ASSERT_TRUE(v.ok()) << "remount after anchor cut " << n << ": " << v.status().ToString();
      EXPECT_EQ(Image(**v), states[n + 1]) << "the store committed, so the new state must win";
    }
  }
}

}  // namespace
}  // namespace coffer
