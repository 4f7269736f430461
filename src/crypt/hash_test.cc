#include "coffer/crypt/hash.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

TEST(Hash, HkdfSha256Rfc5869TestCase1) {
  Bytes ikm(22, 0x0b), salt = HexDecode("000102030405060708090a0b0c").value();
  Bytes info = HexDecode("f0f1f2f3f4f5f6f7f8f9").value();
  auto okm = HkdfSha256(ikm, salt, AsStringView(info), 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(HexEncode(okm->reveal()),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Hash, HmacSha256Rfc4231TestCase2) {
  auto mac = HmacSha256(AsBytes("Jefe"), AsBytes("what do ya want for nothing?"));
  EXPECT_EQ(HexEncode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Hash, Blake2b256OfEmptyAndSplitInputsAgree) {
  EXPECT_EQ(HexEncode(Blake2b256({})), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
  EXPECT_EQ(Blake2b256({AsBytes("abc")}), Blake2b256({AsBytes("a"), AsBytes("bc")}));
  uint8_t k1[16], k2[16];
  Blake2bKeyed(k1, AsBytes("key-one"), {AsBytes("x")});
  Blake2bKeyed(k2, AsBytes("key-two"), {AsBytes("x")});
  EXPECT_NE(HexEncode(k1), HexEncode(k2));
}

TEST(Hash, Sha256Fips180KnownAnswersAndSplitInputs) {
  EXPECT_EQ(HexEncode(Sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256({AsBytes("abc")})), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256({AsBytes("abcdbcdecdefdefgefghfghighij"), AsBytes("hijkijkljklmklmnlmnomnopnopq")})),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Hash, Argon2idIsDeterministicAndSaltSensitive) {
  Argon2Params p{.ops = 1, .mem_bytes = 64 << 10};
  Bytes salt(16, 7), salt2(16, 8);
  auto a = Argon2id(AsBytes("pw"), salt, p, 32), b = Argon2id(AsBytes("pw"), salt, p, 32);
  auto c = Argon2id(AsBytes("pw"), salt2, p, 32);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(a->Equals(*b));
  EXPECT_FALSE(a->Equals(*c));
  EXPECT_EQ(Argon2id(AsBytes("pw"), Bytes(8), p, 32).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Argon2id(AsBytes("pw"), salt, {.ops = 0, .mem_bytes = 1 << 20}, 32).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer
