#include "coffer/envsecret/exec_env.h"

#include <gtest/gtest.h>

#include <map>

namespace coffer::envsecret {
namespace {

constexpr char kDemoHex[] =
    "b2c8955bad9bc7520e09f42e7a24b34860745b6fad240368dcc201d2d175938f55b5a404265c09f848c758aeb4248b7b32d63d1baad66a";
constexpr char kDemoPassword[] = "my-password-eQ4al9jgPxlWDwxL6uiGdznhhVJzaVQPnkNRjwvwoTvqWpeBJJJZ";

EnvKeys Password(std::string_view p) {
  EnvKeys k;
  k.password = SecretBytes::CopyOf(AsBytes(p));
  return k;
}

std::map<std::string, std::string> AsMap(const ChildEnvironment& env) {
  std::map<std::string, std::string> m;
  for (size_t i = 0; i < env.size(); ++i) {
    std::string_view e = env.entry(i);
    m[std::string(e.substr(0, e.find('=')))] = std::string(e.substr(e.find('=') + 1));
  }
  return m;
}

TEST(ExecEnv, DecryptsSetsAndRemovesOriginalsAndKeyMaterial) {
  std::string enc = std::string("ENCRYPTED_TESTVAR=") + kDemoHex;
  std::vector<std::string_view> environ = {"PATH=/bin", enc, "COFFER_PASSWORD=leak", "COFFER_TLS_KEY=pem",
                                           "HOME=/root", "TESTVAR=old", "DROPME=1"};
  auto env = PrepareChildEnvironment(environ, EnvFormat::kSecureStore, Password(kDemoPassword), {"DROPME"});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto m = AsMap(*env);
  EXPECT_EQ(m["TESTVAR"], "this-is-my-new-test-api-key");
  EXPECT_EQ(m["PATH"], "/bin");
  EXPECT_EQ(m["HOME"], "/root");
  EXPECT_EQ(m.count("ENCRYPTED_TESTVAR"), 0u);
  EXPECT_EQ(m.count("COFFER_PASSWORD"), 0u);
  EXPECT_EQ(m.count("COFFER_TLS_KEY"), 0u);
  EXPECT_EQ(m.count("DROPME"), 0u);
  EXPECT_EQ(env->size(), 3u);
  char* const* envp = env->envp();
  int n = 0;
  while (envp[n] != nullptr) ++n;
  EXPECT_EQ(n, 3);
}

TEST(ExecEnv, WrongPasswordNamesTheVariableAndIsUnauthenticated) {
  std::string enc = std::string("ENCRYPTED_TESTVAR=") + kDemoHex;
  auto env = PrepareChildEnvironment({enc}, EnvFormat::kSecureStore, Password("wrong"));
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(env.status().message().find("ENCRYPTED_TESTVAR"), std::string::npos);
}

TEST(ExecEnv, MalformedValueIsInvalidArgumentNamingIt) {
  for (std::string bad : {"ENCRYPTED_A=abc", "ENCRYPTED_A=zz", "ENCRYPTED_A=", "ENCRYPTED_A=00ff"}) {
    auto env = PrepareChildEnvironment({bad}, EnvFormat::kSecureStore, Password("pw"));
    ASSERT_FALSE(env.ok()) << bad;
    EXPECT_EQ(env.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(env.status().message().find("ENCRYPTED_A"), std::string::npos);
  }
}

TEST(ExecEnv, TamperedValueBesideAGoodOneIsDataLoss) {
  SecretBytes key = SecureStoreKey(AsBytes("pw"));
  std::string good = "ENCRYPTED_GOOD=" + EncryptSecureStore(AsBytes("1"), key);
  std::string bad_hex = EncryptSecureStore(AsBytes("2"), key);
  bad_hex[30] = bad_hex[30] == 'a' ? 'b' : 'a';
  std::string bad = "ENCRYPTED_BAD=" + bad_hex;
  auto env = PrepareChildEnvironment({good, bad}, EnvFormat::kSecureStore, Password("pw"));
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(env.status().message().find("ENCRYPTED_BAD"), std::string::npos);
}

TEST(ExecEnv, AutoFormatMixesCofferAndSecureStoreValues) {
  EncryptOptions cheap;
  cheap.ops_limit = 1;
  cheap.mem_limit_kib = 64;
  auto c = EncryptCoffer("NEW", AsBytes("from-coffer"), {Kdf::kArgon2id, SecretBytes::CopyOf(AsBytes("pw"))}, cheap);
  ASSERT_TRUE(c.ok());
  std::string a = "ENCRYPTED_NEW=" + *c;
  std::string b = "ENCRYPTED_OLD=" + EncryptSecureStore(AsBytes("from-ss"), SecureStoreKey(AsBytes("pw")));
  auto env = PrepareChildEnvironment({a, b}, EnvFormat::kAuto, Password("pw"));
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto m = AsMap(*env);
  EXPECT_EQ(m["NEW"], "from-coffer");
  EXPECT_EQ(m["OLD"], "from-ss");
}

TEST(ExecEnv, CofferValueMovedToAnotherNameIsRejected) {
  EncryptOptions cheap;
  cheap.ops_limit = 1;
  cheap.mem_limit_kib = 64;
  auto c = EncryptCoffer("DB_PASS", AsBytes("x"), {Kdf::kArgon2id, SecretBytes::CopyOf(AsBytes("pw"))}, cheap);
  ASSERT_TRUE(c.ok());
  std::string moved = "ENCRYPTED_API_KEY=" + *c;
  auto env = PrepareChildEnvironment({moved}, EnvFormat::kCoffer, Password("pw"));
  EXPECT_EQ(env.status().code(), StatusCode::kDataLoss);
}

TEST(ExecEnv, RawKeyOpensRawKeyValues) {
  EnvKeys k;
  k.raw_key = SecretBytes::Random(32);
  auto c = EncryptCoffer("T", AsBytes("tok"), {Kdf::kRawKey, k.raw_key->Clone()});
  ASSERT_TRUE(c.ok());
  std::string v = "ENCRYPTED_T=" + *c;
  auto env = PrepareChildEnvironment({v}, EnvFormat::kAuto, k);
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ(AsMap(*env)["T"], "tok");
  // a secure-store value cannot be opened with a key file
  std::string ss = "ENCRYPTED_S=" + EncryptSecureStore(AsBytes("x"), SecureStoreKey(AsBytes("pw")));
  EXPECT_FALSE(PrepareChildEnvironment({ss}, EnvFormat::kAuto, k).ok());
}

TEST(ExecEnv, NoKeyIsRefused) {
  EXPECT_EQ(PrepareChildEnvironment({"A=1"}, EnvFormat::kAuto, EnvKeys{}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ExecEnv, InvalidTargetNameIsRefused) {
  std::string v = "ENCRYPTED_=" + EncryptSecureStore(AsBytes("x"), SecureStoreKey(AsBytes("pw")));
  EXPECT_EQ(PrepareChildEnvironment({v}, EnvFormat::kAuto, Password("pw")).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ExecEnv, KeyMaterialVariableNames) {
  EXPECT_TRUE(IsKeyMaterialVariable("COFFER_PASSWORD"));
  EXPECT_TRUE(IsKeyMaterialVariable("COFFER_TLS_CERT"));
  EXPECT_TRUE(IsKeyMaterialVariable("COFFER_KEYSERVER_TOKEN"));
  EXPECT_FALSE(IsKeyMaterialVariable("PATH"));
  EXPECT_FALSE(IsKeyMaterialVariable("COFFER_LOG_LEVEL"));
}

}  // namespace
}  // namespace coffer::envsecret
