#include "coffer/envsecret/env_secret.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

namespace coffer::envsecret {
namespace {

constexpr std::string_view kDemoPassword = "my-password-eQ4al9jgPxlWDwxL6uiGdznhhVJzaVQPnkNRjwvwoTvqWpeBJJJZ";

std::string Reveal(const SecretBytes& s) { return std::string(s.reveal_string()); }

KeySource Pass(std::string_view p) { return {Kdf::kArgon2id, SecretBytes::CopyOf(AsBytes(p))}; }
EncryptOptions Cheap() {
  EncryptOptions o;
  o.ops_limit = 1;
  o.mem_limit_kib = 64;
  return o;
}

TEST(SecureStore, SharedVectorDecrypts) {
  std::ifstream f(std::string(COFFER_VECTORS_DIR) + "/secure-store/README.md");
  if (!f) GTEST_SKIP() << "shared vectors missing at " << COFFER_VECTORS_DIR;
  std::stringstream ss;
  ss << f.rdbuf();
  std::smatch m;
  std::string text = ss.str();
  ASSERT_TRUE(std::regex_search(text, m, std::regex("ENCRYPTED_TESTVAR=([0-9a-f]+)")));
  std::smatch pm;
  ASSERT_TRUE(std::regex_search(text, pm, std::regex("Demo password: `([^`]+)`")));
  auto out = DecryptSecureStore(m[1].str(), SecureStoreKey(AsBytes(pm[1].str())));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(Reveal(*out), "this-is-my-new-test-api-key");
}

TEST(SecureStore, RoundTripAndWrongPasswordIsUnauthenticated) {
  SecretBytes key = SecureStoreKey(AsBytes(kDemoPassword));
  std::string hex = EncryptSecureStore(AsBytes("hello"), key);
  EXPECT_EQ(hex.size(), 2u * (12 + 5 + 16));
  auto ok = DecryptSecureStore(hex, key);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(Reveal(*ok), "hello");
  auto bad = DecryptSecureStore(hex, SecureStoreKey(AsBytes("wrong")));
  EXPECT_EQ(bad.status().code(), StatusCode::kUnauthenticated);
}

TEST(SecureStore, MalformedValuesAreInvalidArgumentNotCrashes) {
  SecretBytes key = SecureStoreKey(AsBytes("x"));
  for (std::string v : std::vector<std::string>{"", "abc", "zz", std::string(54, 'a'), std::string(55, '0')}) {
    EXPECT_EQ(DecryptSecureStore(v, key).status().code(), StatusCode::kInvalidArgument) << v;
  }
  // nonce + tag only: an empty plaintext that is valid only with the right key
  std::string empty = EncryptSecureStore({}, key);
  EXPECT_EQ(empty.size(), 56u);
  EXPECT_TRUE(DecryptSecureStore(empty, key).ok());
}

TEST(SecureStore, FlippedBitIsRejected) {
  SecretBytes key = SecureStoreKey(AsBytes("pw"));
  std::string hex = EncryptSecureStore(AsBytes("secret"), key);
  for (size_t i = 0; i < hex.size(); i += 7) {
    std::string t = hex;
    t[i] = t[i] == '0' ? '1' : '0';
    EXPECT_FALSE(DecryptSecureStore(t, key).ok()) << i;
  }
}

TEST(CofferFormat, PassphraseRoundTripBothCiphers) {
  for (Aead aead : {Aead::kXChaCha20Poly1305, Aead::kAes256Gcm}) {
    EncryptOptions o = Cheap();
    o.aead = aead;
    auto v = EncryptCoffer("API_KEY", AsBytes("s3cret value"), Pass("pw"), o);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_TRUE(IsCofferFormat(*v));
    auto h = ParseCofferHeader(*v);
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->aead, aead);
    EXPECT_EQ(h->kdf, Kdf::kArgon2id);
    EXPECT_EQ(h->ops_limit, 1u);
    auto out = DecryptCoffer("API_KEY", *v, Pass("pw"));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    EXPECT_EQ(Reveal(*out), "s3cret value");
  }
}

TEST(CofferFormat, SameInputEncryptsDifferentlyEachTime) {
  auto a = EncryptCoffer("X", AsBytes("v"), Pass("pw"), Cheap());
  auto b = EncryptCoffer("X", AsBytes("v"), Pass("pw"), Cheap());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
}

TEST(CofferFormat, WrongPassphraseIsUnauthenticated) {
  auto v = EncryptCoffer("X", AsBytes("v"), Pass("pw"), Cheap());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(DecryptCoffer("X", *v, Pass("nope")).status().code(), StatusCode::kUnauthenticated);
}

TEST(CofferFormat, RenamedVariableIsTampering) {
  auto v = EncryptCoffer("DB_PASSWORD", AsBytes("v"), Pass("pw"), Cheap());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(DecryptCoffer("API_TOKEN", *v, Pass("pw")).status().code(), StatusCode::kDataLoss);
}

TEST(CofferFormat, ChangedCiphertextIsTampering) {
  auto v = EncryptCoffer("X", AsBytes("value"), Pass("pw"), Cheap());
  ASSERT_TRUE(v.ok());
  std::string t = *v;
  char& c = t[t.size() - 3];
  c = c == 'A' ? 'B' : 'A';
  EXPECT_EQ(DecryptCoffer("X", t, Pass("pw")).status().code(), StatusCode::kDataLoss);
}

TEST(CofferFormat, RawKeyRoundTripAndKindMismatch) {
  KeySource raw{Kdf::kRawKey, SecretBytes::Random(32)};
  auto v = EncryptCoffer("X", AsBytes("v"), raw);
  ASSERT_TRUE(v.ok());
  auto out = DecryptCoffer("X", *v, raw);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(Reveal(*out), "v");
  EXPECT_EQ(DecryptCoffer("X", *v, Pass("pw")).status().code(), StatusCode::kUnauthenticated);
  KeySource other{Kdf::kRawKey, SecretBytes::Random(32)};
  EXPECT_EQ(DecryptCoffer("X", *v, other).status().code(), StatusCode::kUnauthenticated);
  KeySource short_key{Kdf::kRawKey, SecretBytes::Random(16)};
  EXPECT_FALSE(EncryptCoffer("X", AsBytes("v"), short_key).ok());
}

TEST(CofferFormat, HostileHeadersAreRejectedBeforeAnyWork) {
  auto v = EncryptCoffer("X", AsBytes("v"), Pass("pw"), Cheap());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(ParseCofferHeader("CENV1.").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCofferHeader("CENV1.!!!").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCofferHeader("abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseCofferHeader(v->substr(0, 40)).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::envsecret
