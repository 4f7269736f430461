// rclone interop, both directions, for every name mode, encoding, directory setting, password2
// and the empty and unicode passwords: rclone (Debian's 1.60) decrypts and `rclone check
// --download` accepts what coffer writes; coffer decrypts what rclone writes. Skips with a
// printed reason when rclone is not installed. Labels: interop, nosan.
#include <gtest/gtest.h>

#include <filesystem>

#include "coffer/rclone/config.h"
#include "e2e_util.h"

namespace coffer::e2e {
namespace {
namespace fs = std::filesystem;

bool HaveRclone() { return e2e::Run("rclone", {"version"}).exit_code == 0; }

std::vector<std::string> Files(const std::string& root) {
  std::vector<std::string> out;
  for (auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), root).generic_string());
  std::sort(out.begin(), out.end());
  return out;
}

void ExpectSameTree(const std::string& a, const std::string& b) {
  auto fa = Files(a), fb = Files(b);
  ASSERT_EQ(fa, fb);
  for (auto& f : fa) EXPECT_EQ(ReadFile(a + "/" + f), ReadFile(b + "/" + f)) << f;
}

void MakePlain(const std::string& p) {
  fs::create_directories(p + "/d1/d2");
  fs::create_directories(p + "/\xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9");
  for (size_t n : {0, 1, 65535, 65536, 65537}) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = char(i * 131 + n);
    WriteFile(p + "/size_" + std::to_string(n), s);
  }
  WriteFile(p + "/d1/d2/deep.txt", "deep");
  WriteFile(p + "/\xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9/emoji \xf0\x9f\x8e\x89 !x!.txt", "party");
  WriteFile(p + "/hello-v2001-02-03-040506-123.txt", "versioned name");
  WriteFile(p + "/" + std::string(143, 'L'), "longest base32 name");
}

struct Case {
  std::string mode, encoding;
  bool dirs;
  std::string password, password2;
};

class RcloneInterop : public ::testing::TestWithParam<Case> {};

TEST_P(RcloneInterop, BothDirections) {
  if (!HaveRclone()) GTEST_SKIP() << "rclone is not installed (apt-get install rclone)";
  const Case& c = GetParam();
  TempDir t;
  std::string plain = t / "plain";
  MakePlain(plain);
  WriteFile(t / "pw", c.password);
  std::vector<std::string> opts = {"--password-file", t / "pw", "--filename-encryption", c.mode,
                                   "--filename-encoding", c.encoding};
  if (!c.password2.empty()) {
    WriteFile(t / "pw2", c.password2);
    opts.insert(opts.end(), {"--password2-file", t / "pw2"});
  }
  if (!c.dirs) opts.push_back("--no-directory-name-encryption");
  auto env = [&](const std::string& remote) {
    RunOptions o;
    o.env = {{"RCLONE_CONFIG_X_TYPE", "crypt"},
             {"RCLONE_CONFIG_X_REMOTE", remote},
             {"RCLONE_CONFIG_X_PASSWORD", rclone::Obscure(c.password)},
             {"RCLONE_CONFIG_X_FILENAME_ENCRYPTION", c.mode},
             {"RCLONE_CONFIG_X_FILENAME_ENCODING", c.encoding},
             {"RCLONE_CONFIG_X_DIRECTORY_NAME_ENCRYPTION", c.dirs ? "true" : "false"}};
    if (!c.password2.empty()) o.env["RCLONE_CONFIG_X_PASSWORD2"] = rclone::Obscure(c.password2);
    return o;
  };
  // coffer -> rclone
  std::vector<std::string> enc = {"crypt", "encrypt-dir", plain, t / "c_enc"};
  enc.insert(enc.end(), opts.begin(), opts.end());
  auto r = RunCoffer(enc);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = e2e::Run("rclone", {"--config", "/dev/null", "copy", "X:", t / "r_dec"}, env(t / "c_enc"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameTree(plain, t / "r_dec");
  r = e2e::Run("rclone", {"--config", "/dev/null", "check", "--download", plain, "X:"}, env(t / "c_enc"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // rclone -> coffer
  r = e2e::Run("rclone", {"--config", "/dev/null", "copy", plain, "X:"}, env(t / "r_enc"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> dec = {"crypt", "decrypt-dir", t / "r_enc", t / "c_dec"};
  dec.insert(dec.end(), opts.begin(), opts.end());
  r = RunCoffer(dec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameTree(plain, t / "c_dec");
  // Same names both ways (names are deterministic; contents use random nonces).
  EXPECT_EQ(Files(t / "c_enc"), Files(t / "r_enc"));
}

INSTANTIATE_TEST_SUITE_P(
    AllModes, RcloneInterop,
    ::testing::Values(Case{"standard", "base32", true, "correct horse battery staple", ""},
                      Case{"standard", "base64", true, "correct horse battery staple", ""},
                      Case{"standard", "base32768", true, "correct horse battery staple", ""},
                      Case{"standard", "base32", false, "pw", "salt-2"},
                      Case{"obfuscate", "base32", true, "p\xc3\xa4ssw\xc3\xb6rd \xe2\x9c\x93", ""},
                      Case{"obfuscate", "base32", false, "pw", "salt"},
                      Case{"off", "base32", true, "pw", ""},
                      Case{"standard", "base32", true, "", ""}));

TEST(RcloneInteropConfig, EncryptedConfigIsSharedWithRclone) {
  if (!HaveRclone()) GTEST_SKIP() << "rclone is not installed";
  TempDir t;
  MakePlain(t / "plain");
  std::string conf = "[sec]\ntype = crypt\nremote = " + (t / "enc") + "\nfilename_encoding = base64\npassword = " +
                     rclone::Obscure("pw") + "\npassword2 = " + rclone::Obscure("pw2") + "\n";
  // coffer encrypts the config (RCLONE_ENCRYPT_V0); rclone must open it with the same password.
  WriteFile(t / "rclone.conf", rclone::EncryptConfig(conf, "config secret"));
  RunOptions o;
  o.env["RCLONE_CONFIG_PASS"] = "config secret";
  auto r = e2e::Run("rclone", {"--config", t / "rclone.conf", "--ask-password=false", "copy", t / "plain", "sec:"}, o);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  WriteFile(t / "cpw", "config secret\n");
  r = RunCoffer({"crypt", "decrypt-dir", t / "enc", t / "out", "--rclone-config", t / "rclone.conf", "--remote", "sec",
                 "--config-password-file", t / "cpw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameTree(t / "plain", t / "out");
}

}  // namespace
}  // namespace coffer::e2e
