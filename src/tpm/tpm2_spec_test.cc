// In-process tests of the tpm2: spec parser and the slot-parameter codec (no TPM needed).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "coffer/tpm/tpm2_anchor.h"
#include "coffer/tpm/tpm2_keyspec.h"

namespace coffer::tpm {
namespace {

TEST(Tpm2Spec, Defaults) {
  unsetenv("COFFER_TPM2_TCTI");
  unsetenv("TPM2TOOLS_TCTI");
  auto s = ParseTpm2Spec("", false);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->tcti, "device:/dev/tpmrm0");
  EXPECT_TRUE(s->pcrs.empty());
  EXPECT_EQ(s->nv_index, kDefaultAnchorNvIndex);
}

TEST(Tpm2Spec, EnvironmentChoosesTheTcti) {
  setenv("TPM2TOOLS_TCTI", "mssim:port=1", 1);
  EXPECT_EQ(ParseTpm2Spec("", false)->tcti, "mssim:port=1");
  setenv("COFFER_TPM2_TCTI", "swtpm:port=7", 1);
  EXPECT_EQ(ParseTpm2Spec("", false)->tcti, "swtpm:port=7");
  EXPECT_EQ(ParseTpm2Spec("tcti=device:/dev/tpm0", false)->tcti, "device:/dev/tpm0");
  unsetenv("COFFER_TPM2_TCTI");
  unsetenv("TPM2TOOLS_TCTI");
}

TEST(Tpm2Spec, PcrsAndTctiWithCommas) {
  auto s = ParseTpm2Spec("pcrs=sha256:0,7,16,tcti=swtpm:host=127.0.0.1,port=2321", false);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->tcti, "swtpm:host=127.0.0.1,port=2321");
  EXPECT_EQ(s->pcrs.hash_alg, 0x000B);
  EXPECT_EQ(s->pcrs.mask, (1u << 0) | (1u << 7) | (1u << 16));
  EXPECT_EQ(PcrSelectionToString(s->pcrs), "sha256:0,7,16");
  auto plus = ParseTpm2Spec("pcrs=sha1:0+1", false);
  ASSERT_TRUE(plus.ok());
  EXPECT_EQ(plus->pcrs.hash_alg, 0x0004);
  EXPECT_EQ(plus->pcrs.mask, 3u);
}

TEST(Tpm2Spec, AnchorHandle) {
  auto s = ParseTpm2Spec("nv=0x01500020,pcrs=sha256:7", true);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->nv_index, 0x01500020u);
  EXPECT_TRUE(s->nv_given);
  EXPECT_EQ(s->pcrs.mask, 1u << 7);
}

TEST(Tpm2Spec, BadInputIsRefusedByName) {
  for (const char* bad : {"pcrs=", "pcrs=sha256:", "pcrs=sha256:24", "pcrs=md5:1", "pcrs=sha256:x", "pcrs=sha256:1,,2",
                          "bogus=1", "noequals", "tcti=", "pcrs=sha256:1,pcrs=sha256:2", ",", "pcrs=sha256"}) {
    auto s = ParseTpm2Spec(bad, false);
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  // nv= belongs to anchors only, and must be an NV index handle.
  EXPECT_EQ(ParseTpm2Spec("nv=0x01500020", false).status().code(), StatusCode::kInvalidArgument);
  for (const char* bad : {"nv=", "nv=12", "nv=0x81000001", "nv=0x01zz", "nv=0x01ffffff", "nv=1,nv=2"}) {
    EXPECT_EQ(ParseTpm2Spec(bad, true).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Tpm2SlotParams, RoundTripAndRejectsDamage) {
  SealedBlob blob;
  blob.pcrs = {0x000B, 0x81};
  blob.public_area = Bytes(80, 0x11);
  blob.private_area = Bytes(120, 0x22);
  auto enc = EncodeSlotParams(blob);
  ASSERT_TRUE(enc.ok());
  EXPECT_LE(enc->size(), kMaxSlotParams);
  auto dec = DecodeSlotParams(*enc);
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  EXPECT_EQ(dec->pcrs, blob.pcrs);
  EXPECT_EQ(dec->public_area, blob.public_area);
  EXPECT_EQ(dec->private_area, blob.private_area);

  // Every truncation, and a flipped magic/version/reserved byte, is refused.
  for (size_t n = 0; n < enc->size(); ++n) {
    EXPECT_FALSE(DecodeSlotParams(ByteSpan(enc->data(), n)).ok()) << n;
  }
  for (size_t pos : {0u, 4u, 5u}) {
    Bytes bad = *enc;
    bad[pos] ^= 0x40;
    EXPECT_EQ(DecodeSlotParams(bad).status().code(), StatusCode::kInvalidArgument) << pos;
  }
  Bytes trailing = *enc;
  trailing.push_back(0);
  EXPECT_FALSE(DecodeSlotParams(trailing).ok());
  Bytes mask_without_bank = *enc;
  mask_without_bank[6] = mask_without_bank[7] = 0;
  EXPECT_FALSE(DecodeSlotParams(mask_without_bank).ok());
  Bytes big_mask = *enc;
  big_mask[11] = 0x01;  // PCR 24
  EXPECT_FALSE(DecodeSlotParams(big_mask).ok());
}

TEST(Tpm2Spec, UnreachableTpmNamesTheTcti) {
  // A port nothing listens on: the error is kUnavailable and names the TCTI.
  auto method = ParseTpm2Spec("tcti=swtpm:host=127.0.0.1,port=1", false);
  ASSERT_TRUE(method.ok());
  auto m = NewTpm2UnlockMethod(*method);
  auto params = m->NewSlotParams();
  ASSERT_FALSE(params.ok());
  EXPECT_EQ(params.status().code(), StatusCode::kUnavailable) << params.status().ToString();
  EXPECT_NE(params.status().message().find("swtpm:host=127.0.0.1,port=1"), std::string::npos);
}

}  // namespace
}  // namespace coffer::tpm

namespace coffer::tpm {
namespace {

TEST(Tpm2AnchorRecord, ParsesTheDocumentedLayoutAndRefusesDamage) {
  Bytes rec(kAnchorRecordSize, 0);
  std::memcpy(rec.data(), "CFTPMANC", 8);
  PutLe16(rec.data() + 8, 1);
  PutLe16(rec.data() + 10, 2);
  PutLe32(rec.data() + 12, 0x01500020);
  PutLe64(rec.data() + 16, 77);
  for (int i = 0; i < 2; ++i) {
    uint8_t* e = rec.data() + 24 + 56 * i;
    e[0] = uint8_t(i + 1);
    PutLe64(e + 16, 10 + i);
    e[24] = uint8_t(0xA0 + i);
  }
  auto r = ParseAnchorRecord(rec, 0x01500020, "test");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->written_at, 77u);
  ASSERT_EQ(r->entries.size(), 2u);
  EXPECT_EQ(r->entries[1].first[0], 2);
  EXPECT_EQ(r->entries[1].second.counter, 11u);
  EXPECT_EQ(r->entries[1].second.root[0], 0xA1);

  EXPECT_EQ(ParseAnchorRecord(rec, 0x01500040, "test").status().code(), StatusCode::kDataLoss);  // other index
  EXPECT_EQ(ParseAnchorRecord(ByteSpan(rec.data(), 511), 0x01500020, "t").status().code(), StatusCode::kDataLoss);
  Bytes bad = rec;
  bad[0] = 'X';
  EXPECT_EQ(ParseAnchorRecord(bad, 0x01500020, "t").status().code(), StatusCode::kDataLoss);
  bad = rec;
  PutLe16(bad.data() + 8, 2);
  EXPECT_EQ(ParseAnchorRecord(bad, 0x01500020, "t").status().code(), StatusCode::kUnsupported);
  bad = rec;
  PutLe16(bad.data() + 10, kAnchorMaxVolumes + 1);
  EXPECT_EQ(ParseAnchorRecord(bad, 0x01500020, "t").status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace coffer::tpm
