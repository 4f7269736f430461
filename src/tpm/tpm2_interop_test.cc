// TPM 2.0 sealing and the NV counter anchor against a real TPM emulator (swtpm, started here on
// 127.0.0.1; skipped with a reason if swtpm is not installed).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "coffer/base/random.h"
#include "coffer/tpm/tpm2_anchor.h"
#include "coffer/tpm/tpm2_keyspec.h"
#include "coffer/volume/open_volume.h"
#include "tpm/swtpm_fixture.h"

namespace coffer::tpm {
namespace {

using testing::ScratchDir;
using testing::Swtpm;

class Tpm2Interop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Swtpm::Binary().empty()) GTEST_SKIP() << "swtpm is not installed (apt-get install swtpm swtpm-tools)";
    ASSERT_FALSE(dir_.path().empty());
    std::string err;
    ASSERT_TRUE(tpm_.Start(dir_ / "tpm-a", &err)) << err;
    RegisterTpm2Schemes();
  }
  std::string KeySpec(const std::string& opts = "") const {
    return "tpm2:" + opts + (opts.empty() ? "" : ",") + "tcti=" + tpm_.tcti();
  }
  std::string AnchorSpec(uint32_t nv = 0x01500020, const std::string& opts = "") const {
    return "tpm2:nv=" + HexIndex(nv) + "," + opts + (opts.empty() ? "" : ",") + "tcti=" + tpm_.tcti();
  }

  ScratchDir dir_;
  Swtpm tpm_;
};

Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = uint8_t(seed * 31 + i);
  return b;
}

TEST_F(Tpm2Interop, SealUnsealRoundTrip) {
  Tpm2 tpm(tpm_.tcti());
  SecretBytes secret = SecretBytes::Random(32);
  auto blob = tpm.Seal(secret, {});
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  auto params = EncodeSlotParams(*blob);
  ASSERT_TRUE(params.ok());
  EXPECT_LE(params->size(), kMaxSlotParams);
  auto back = tpm.Unseal(*DecodeSlotParams(*params));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(ConstantTimeEquals(back->reveal(), secret.reveal()));

  // The same TPM after a restart (same state) still unseals it.
  tpm_.Stop();
  std::string err;
  ASSERT_TRUE(tpm_.Start(dir_ / "tpm-a", &err)) << err;
  Tpm2 again(tpm_.tcti());
  auto back2 = again.Unseal(*blob);
  ASSERT_TRUE(back2.ok()) << back2.status().ToString();
  EXPECT_TRUE(ConstantTimeEquals(back2->reveal(), secret.reveal()));
}

// The secret crosses the TPM bus only inside salted, AES-CFB-encrypted sessions: a capture of every
// command and response (tss2's pcap TCTI around the swtpm TCTI) holds Create and Unseal but never the
// secret, with or without a PCR policy.
TEST_F(Tpm2Interop, SecretNeverCrossesTheBusInClear) {
  if (access("/usr/lib/x86_64-linux-gnu/libtss2-tcti-pcap.so.0", R_OK) != 0 &&
      access("/usr/lib/aarch64-linux-gnu/libtss2-tcti-pcap.so.0", R_OK) != 0) {
    GTEST_SKIP() << "libtss2-tcti-pcap0 is not installed";
  }
  std::string pcap = dir_ / "bus.pcap";
  setenv("TCTI_PCAP_FILE", pcap.c_str(), 1);
  Tpm2 tpm("pcap:" + tpm_.tcti());
  SecretBytes secret = SecretBytes::Random(32);
  for (const char* pcrs : {"", "sha256:7"}) {
    PcrSelection sel;
    if (*pcrs) sel = *ParsePcrSelection(pcrs);
    auto blob = tpm.Seal(secret, sel);
    ASSERT_TRUE(blob.ok()) << blob.status().ToString();
    auto back = tpm.Unseal(*blob);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(ConstantTimeEquals(back->reveal(), secret.reveal()));
  }
  unsetenv("TCTI_PCAP_FILE");
  std::ifstream in(pcap, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 1000u) << "no capture written to " << pcap;
  const std::string unseal_cc("\x00\x00\x01\x5e", 4), create_cc("\x00\x00\x01\x53", 4);
  EXPECT_NE(bytes.find(unseal_cc), std::string::npos) << "capture holds no Unseal command";
  EXPECT_NE(bytes.find(create_cc), std::string::npos) << "capture holds no Create command";
  std::string needle(reinterpret_cast<const char*>(secret.reveal().data()), 16);
  EXPECT_EQ(bytes.find(needle), std::string::npos) << "the secret crossed the bus in clear";
}

TEST_F(Tpm2Interop, TamperedBlobIsRefused) {
  Tpm2 tpm(tpm_.tcti());
  auto blob = tpm.Seal(SecretBytes::Random(32), {});
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  SealedBlob bad = *blob;
  bad.private_area[bad.private_area.size() / 2] ^= 1;
  auto r = tpm.Unseal(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnauthenticated) << r.status().ToString();
}

TEST_F(Tpm2Interop, PcrBoundSlotRefusesAfterExtend) {
  Tpm2 tpm(tpm_.tcti());
  auto pcrs = ParsePcrSelection("sha256:7,16");
  ASSERT_TRUE(pcrs.ok());
  SecretBytes secret = SecretBytes::Random(32);
  auto blob = tpm.Seal(secret, *pcrs);
  ASSERT_TRUE(blob.ok()) << blob.status().ToString();
  auto ok = tpm.Unseal(*blob);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ConstantTimeEquals(ok->reveal(), secret.reveal()));

  auto before = tpm.ReadPcr(0x000B, 16);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_TRUE(tpm.ExtendPcr(16, 0x000B, Bytes(32, 0xAB)).ok());
  auto after = tpm.ReadPcr(0x000B, 16);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(*before, *after);
  auto refused = tpm.Unseal(*blob);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated) << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("PCR"), std::string::npos) << refused.status().message();

  // A PCR outside the selection does not matter; a reboot resets PCRs and the slot opens again.
  auto other = tpm.Seal(secret, *ParsePcrSelection("sha256:7"));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(tpm.ExtendPcr(16, 0x000B, Bytes(32, 0xCD)).ok());
  EXPECT_TRUE(tpm.Unseal(*other).ok());
  tpm_.Stop();
  std::string err;
  ASSERT_TRUE(tpm_.Start(dir_ / "tpm-a", &err)) << err;
  auto rebooted = Tpm2(tpm_.tcti()).Unseal(*blob);
  ASSERT_TRUE(rebooted.ok()) << rebooted.status().ToString();
  EXPECT_TRUE(ConstantTimeEquals(rebooted->reveal(), secret.reveal()));
}

TEST_F(Tpm2Interop, VolumeWithTpmSlotOpensAndADifferentTpmRefuses) {
  std::string store = "file:" + (dir_ / "vol.img");
  VolumeAccessOptions access;
  access.anchor_path = dir_ / "vol.anchor";
  {
    auto v = CreateVolume(store, KeySpec(), {.size_bytes = 64 << 10, .sector_size = 512}, access);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_TRUE((*v)->Prog(3, 0, Pattern(512, 9)).ok());
    ASSERT_TRUE((*v)->Sync().ok());
  }
  {
    auto v = OpenVolume(store, KeySpec(), access);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    Bytes got(512);
    ASSERT_TRUE((*v)->Read(3, 0, got).ok());
    EXPECT_EQ(got, Pattern(512, 9));
  }
  // A different TPM (fresh state: new seeds) cannot unseal the slot.
  Swtpm other;
  std::string err;
  ASSERT_TRUE(other.Start(dir_ / "tpm-b", &err)) << err;
  auto v = OpenVolume(store, "tpm2:tcti=" + other.tcti(), access);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated) << v.status().ToString();
  EXPECT_NE(v.status().message().find("different TPM"), std::string::npos) << v.status().message();
}

TEST_F(Tpm2Interop, OneVolumeWithSlotsForTwoTpms) {
  Swtpm other;
  std::string err;
  ASSERT_TRUE(other.Start(dir_ / "tpm-b", &err)) << err;
  std::string store = "file:" + (dir_ / "vol.img");
  VolumeAccessOptions access;
  access.anchor_path = dir_ / "vol.anchor";
  {
    auto v = CreateVolume(store, KeySpec(), {.size_bytes = 64 << 10, .sector_size = 512}, access);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    auto b = ParseKeySpec("tpm2:tcti=" + other.tcti());
    ASSERT_TRUE(b.ok());
    auto slot = (*v)->AddKeySlot(**b);
    ASSERT_TRUE(slot.ok()) << slot.status().ToString();
    EXPECT_EQ(*slot, 1);
  }
  // TPM B is refused by slot 0 (sealed by A) and opens slot 1; A opens slot 0.
  auto vb = OpenVolume(store, "tpm2:tcti=" + other.tcti(), access);
  ASSERT_TRUE(vb.ok()) << vb.status().ToString();
  vb->reset();
  ASSERT_TRUE(OpenVolume(store, KeySpec(), access).ok());
  // A third TPM opens neither: the refusal names the different TPM.
  Swtpm third;
  ASSERT_TRUE(third.Start(dir_ / "tpm-c", &err)) << err;
  auto vc = OpenVolume(store, "tpm2:tcti=" + third.tcti(), access);
  ASSERT_FALSE(vc.ok());
  EXPECT_EQ(vc.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(vc.status().message().find("different TPM"), std::string::npos) << vc.status().message();
}

TEST_F(Tpm2Interop, PcrBoundVolumeRefusesAfterExtend) {
  std::string store = "file:" + (dir_ / "vol.img");
  VolumeAccessOptions access;
  access.anchor_path = dir_ / "vol.anchor";
  std::string spec = KeySpec("pcrs=sha256:0,7,16");
  {
    auto v = CreateVolume(store, spec, {.size_bytes = 64 << 10, .sector_size = 512}, access);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
  }
  ASSERT_TRUE(OpenVolume(store, spec, access).ok());
  ASSERT_TRUE(Tpm2(tpm_.tcti()).ExtendPcr(16, 0x000B, Bytes(32, 1)).ok());
  auto v = OpenVolume(store, spec, access);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kUnauthenticated) << v.status().ToString();
}

TEST_F(Tpm2Interop, AnchorCounterNeverGoesBackwards) {
  Tpm2NvAnchor anchor(tpm_.tcti(), 0x01500020);
  VolumeId a{}, b{};
  a[0] = 1;
  b[0] = 2;
  auto none = anchor.Load(a);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  uint64_t last = 0;
  for (uint64_t i = 1; i <= 5; ++i) {
    AnchorEntry e{.counter = i};
    e.root[0] = uint8_t(i);
    ASSERT_TRUE(anchor.Commit(a, e).ok());
    auto got = anchor.Load(a);
    ASSERT_TRUE(got.ok() && got->has_value()) << got.status().ToString();
    EXPECT_EQ(**got, e);
    auto c = anchor.CounterValue();
    ASSERT_TRUE(c.ok() && c->has_value());
    EXPECT_GT(**c, last);
    last = **c;
  }
  ASSERT_TRUE(anchor.Commit(b, {.counter = 1}).ok());
  EXPECT_EQ(anchor.Commit(a, {.counter = 4}).code(), StatusCode::kFailedPrecondition);
  AnchorEntry same_counter{.counter = 5};
  same_counter.root[0] = 0xEE;
  EXPECT_EQ(anchor.Commit(a, same_counter).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(anchor.Forget(b).ok());
  EXPECT_FALSE(anchor.Load(b)->has_value());
  EXPECT_EQ((*anchor.Load(a))->counter, 5u);

  // The TPM itself refuses to lower the counter: deleting and re-defining it starts at or above the
  // highest value any counter ever had, and the anchor reports the re-created counter.
  Tpm2 tpm(tpm_.tcti());
  ASSERT_TRUE(tpm.NvUndefine(0x01500020).ok());
  ASSERT_TRUE(tpm.NvDefineCounter(0x01500020).ok());
  auto reloaded = anchor.Load(a);
  EXPECT_EQ(reloaded.status().code(), StatusCode::kDataLoss) << reloaded.status().ToString();
  ASSERT_TRUE(tpm.NvIncrement(0x01500020).ok());
  auto v = tpm.NvReadCounter(0x01500020);
  ASSERT_TRUE(v.ok());
  EXPECT_GE(*v, last);
  reloaded = anchor.Load(a);
  EXPECT_EQ(reloaded.status().code(), StatusCode::kDataLoss) << reloaded.status().ToString();
}

TEST_F(Tpm2Interop, AnchorDetectsARestoredRecordAndForgery) {
  const uint32_t nv = 0x01500040;
  Tpm2NvAnchor anchor(tpm_.tcti(), nv);
  VolumeId id{};
  id[5] = 9;
  ASSERT_TRUE(anchor.Commit(id, {.counter = 1}).ok());
  Tpm2 tpm(tpm_.tcti());
  auto old_record = tpm.NvRead(nv + 1, kAnchorRecordSize);
  ASSERT_TRUE(old_record.ok()) << old_record.status().ToString();
  ASSERT_TRUE(anchor.Commit(id, {.counter = 2}).ok());
  // Someone with TPM access writes the old (authentic) record back: the counter exposes it.
  ASSERT_TRUE(tpm.NvWrite(nv + 1, *old_record).ok());
  auto r = anchor.Load(id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  EXPECT_NE(r.status().message().find("rollback"), std::string::npos) << r.status().message();
  // A record edited to claim the current counter fails its MAC.
  Bytes forged = *old_record;
  auto c = tpm.NvReadCounter(nv);
  ASSERT_TRUE(c.ok());
  PutLe64(forged.data() + 16, *c);
  ASSERT_TRUE(tpm.NvWrite(nv + 1, forged).ok());
  r = anchor.Load(id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("MAC"), std::string::npos) << r.status().message();
}

TEST_F(Tpm2Interop, InterruptedCommitIsCompleted) {
  const uint32_t nv = 0x01500060;
  Tpm2NvAnchor anchor(tpm_.tcti(), nv);
  VolumeId id{};
  ASSERT_TRUE(anchor.Commit(id, {.counter = 1}).ok());
  Tpm2 tpm(tpm_.tcti());
  auto rec = tpm.NvRead(nv + 1, kAnchorRecordSize);
  ASSERT_TRUE(rec.ok());
  auto c = tpm.NvReadCounter(nv);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(GetLe64(rec->data() + 16), *c);
  // Power lost between Commit's NV write and its increment: the record (MAC'ed by the TPM key, as
  // Commit would) claims counter + 1 and holds commit 2. Load completes the increment and accepts it.
  Bytes pending = *rec;
  PutLe64(pending.data() + 16, *c + 1);
  PutLe64(pending.data() + 24 + 16, 2);
  auto mac = tpm.Hmac("coffer tpm2 anchor mac v1", {}, ByteSpan(pending.data(), kAnchorRecordSize - 32));
  ASSERT_TRUE(mac.ok()) << mac.status().ToString();
  std::copy(mac->begin(), mac->end(), pending.end() - 32);
  ASSERT_TRUE(tpm.NvWrite(nv + 1, pending).ok());
  auto got = anchor.Load(id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)->counter, 2u);
  EXPECT_EQ(*tpm.NvReadCounter(nv), *c + 1);
  ASSERT_TRUE(anchor.Load(id).ok());  // and it stays accepted
  EXPECT_EQ(*tpm.NvReadCounter(nv), *c + 1);
}

TEST_F(Tpm2Interop, NvAnchorDetectsARestoredBackingStore) {
  std::string img = dir_ / "vol.img";
  std::string store = "file:" + img;
  VolumeAccessOptions access;
  access.anchor_path = AnchorSpec(0x01500080);
  {
    auto v = CreateVolume(store, KeySpec(), {.size_bytes = 64 << 10, .sector_size = 512}, access);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_TRUE((*v)->Prog(1, 0, Pattern(512, 1)).ok());
    ASSERT_TRUE((*v)->Sync().ok());
  }
  std::filesystem::copy_file(img, dir_ / "old.img");
  if (std::filesystem::exists(img + ".journal")) std::filesystem::copy_file(img + ".journal", dir_ / "old.journal");
  {
    auto v = OpenVolume(store, KeySpec(), access);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    ASSERT_TRUE((*v)->Prog(1, 0, Pattern(512, 2)).ok());
    ASSERT_TRUE((*v)->Sync().ok());
    ASSERT_TRUE((*v)->Prog(1, 0, Pattern(512, 3)).ok());
    ASSERT_TRUE((*v)->Sync().ok());
  }
  // The attacker restores the old image (and its journal): the TPM anchor refuses it.
  std::filesystem::copy_file(dir_ / "old.img", img, std::filesystem::copy_options::overwrite_existing);
  std::filesystem::remove(img + ".journal");
  if (std::filesystem::exists(dir_ / "old.journal")) std::filesystem::copy_file(dir_ / "old.journal", img + ".journal");
  auto v = OpenVolume(store, KeySpec(), access);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kDataLoss) << v.status().ToString();
  EXPECT_NE(v.status().message().find("TPM NV anchor"), std::string::npos) << v.status().message();
}

TEST_F(Tpm2Interop, PcrBoundAnchorMacRefusesOtherPcrState) {
  const uint32_t nv = 0x015000A0;
  auto pcrs = ParsePcrSelection("sha256:16");
  ASSERT_TRUE(pcrs.ok());
  Tpm2NvAnchor anchor(tpm_.tcti(), nv, *pcrs);
  VolumeId id{};
  ASSERT_TRUE(anchor.Commit(id, {.counter = 1}).ok());
  ASSERT_TRUE(anchor.Load(id).ok());
  ASSERT_TRUE(Tpm2(tpm_.tcti()).ExtendPcr(16, 0x000B, Bytes(32, 7)).ok());
  auto r = anchor.Load(id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  // In that PCR state nobody can write an acceptable record either (the MAC key differs).
  EXPECT_FALSE(anchor.Commit(id, {.counter = 2}).ok());
}

}  // namespace
}  // namespace coffer::tpm
