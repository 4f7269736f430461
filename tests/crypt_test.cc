// End-to-end tests of `coffer crypt` run as a user would: round trips in every name mode, edge
// sizes, unicode and longest names, tamper cases (bit flip, truncation, chunk swap, wrong
// password) with their exit codes and no plaintext left behind, rclone configs (plain, obscured,
// encrypted) and the shared rclone/secure-store vectors. rclone itself: crypt_interop_test.cc.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "coffer/rclone/config.h"
#include "e2e_util.h"

namespace coffer::e2e {
namespace {
namespace fs = std::filesystem;

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

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u + uint32_t(seed);
  for (auto& c : s) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; c = char(x); }
  return s;
}

struct Tree {
  TempDir dir;
  std::string plain() const { return dir / "plain"; }
  Tree() {
    fs::create_directories(plain() + "/sub/deeper");
    fs::create_directories(plain() + "/\xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac");
    for (size_t n : {0, 1, 65535, 65536, 65537, 3 * 65536 + 5}) WriteFile(plain() + "/size_" + std::to_string(n), Pattern(n, int(n)));
    WriteFile(plain() + "/sub/deeper/x.txt", "deep");
    WriteFile(plain() + "/\xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/emoji \xf0\x9f\x8e\x89!.txt", "party");
    WriteFile(plain() + "/name with spaces & !bang!.TXT", "x");
    WriteFile(dir / "pw", "correct horse battery staple");
  }
};

std::vector<std::string> Opts(const std::string& pw, const std::string& mode, const std::string& enc, bool dirs = true) {
  std::vector<std::string> o = {"--password-file", pw, "--filename-encryption", mode, "--filename-encoding", enc};
  if (!dirs) o.push_back("--no-directory-name-encryption");
  return o;
}

std::vector<std::string> Cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(CryptCli, RoundTripsEveryModeEncodingAndDirSetting) {
  Tree t;
  int i = 0;
  for (std::string mode : {"standard", "obfuscate", "off"})
    for (std::string enc : {"base32", "base64", "base32768"})
      for (bool dirs : {true, false}) {
        if (mode != "standard" && enc != "base32") continue;
        std::string e = t.dir / ("enc" + std::to_string(i)), d = t.dir / ("dec" + std::to_string(i));
        ++i;
        auto o = Opts(t.dir / "pw", mode, enc, dirs);
        auto r = RunCoffer(Cat({"crypt", "encrypt-dir", t.plain(), e}, o));
        ASSERT_EQ(r.exit_code, 0) << mode << enc << r.err;
        r = RunCoffer(Cat({"crypt", "decrypt-dir", e, d}, o));
        ASSERT_EQ(r.exit_code, 0) << mode << enc << r.err;
        ExpectSameTree(t.plain(), d);
        r = RunCoffer(Cat({"crypt", "verify", e}, o));
        EXPECT_EQ(r.exit_code, 0) << r.err;
        if (mode == "standard") {
          // No plaintext name survives encryption.
          for (auto& f : Files(e)) EXPECT_EQ(f.find("size_"), std::string::npos) << f;
        }
      }
}

TEST(CryptCli, EmptyDirectoriesAndUnicodePasswordsWork) {
  Tree t;
  fs::create_directories(t.plain() + "/emptydir");
  WriteFile(t.dir / "upw", "p\xc3\xa4ssw\xc3\xb6rd \xe2\x9c\x93");
  WriteFile(t.dir / "empty", "");
  for (std::string pw : {"upw", "empty"}) {
    std::string e = t.dir / ("e_" + pw), d = t.dir / ("d_" + pw);
    ASSERT_EQ(RunCoffer({"crypt", "encrypt-dir", t.plain(), e, "--password-file", t.dir / pw}).exit_code, 0);
    ASSERT_EQ(RunCoffer({"crypt", "decrypt-dir", e, d, "--password-file", t.dir / pw}).exit_code, 0);
    ExpectSameTree(t.plain(), d);
    EXPECT_TRUE(fs::is_directory(d + "/emptydir"));
  }
}

TEST(CryptCli, LongestNamesEachEncodingAllows) {
  TempDir dir;
  WriteFile(dir / "pw", "pw");
  // Longest plaintext name (bytes) whose encrypted form surely fits 255 bytes: base32 143 (231
  // characters), base64 175 (235), base32768 143 (77 characters of at most 3 UTF-8 bytes).
  std::map<std::string, size_t> longest = {{"base32", 143}, {"base64", 175}, {"base32768", 143}};
  for (auto& [enc, n] : longest) {
    std::string p = dir / ("p_" + enc);
    fs::create_directories(p);
    WriteFile(p + "/" + std::string(n, 'n'), "fits");
    auto o = Opts(dir / "pw", "standard", enc);
    auto r = RunCoffer(Cat({"crypt", "encrypt-dir", p, dir / ("e_" + enc)}, o));
    ASSERT_EQ(r.exit_code, 0) << enc << r.err;
    ASSERT_EQ(RunCoffer(Cat({"crypt", "decrypt-dir", dir / ("e_" + enc), dir / ("d_" + enc)}, o)).exit_code, 0);
    EXPECT_EQ(ReadFile(dir / ("d_" + enc) + "/" + std::string(n, 'n')), "fits");
    // 16 bytes more no longer fits: a clear error naming the file, nothing half-written.
    WriteFile(p + "/" + std::string(n + 32, 'm'), "too long");
    r = RunCoffer(Cat({"crypt", "encrypt-dir", p, dir / ("e2_" + enc)}, o));
    EXPECT_NE(r.exit_code, 0) << enc;
    EXPECT_NE(r.err.find("255"), std::string::npos) << r.err;
  }
}

struct TamperFixture : ::testing::Test {
  TempDir dir;
  std::string enc_file;
  void SetUp() override {
    fs::create_directories(dir / "plain");
    WriteFile(dir / "plain/victim.bin", Pattern(3 * 65536 + 100, 7));
    WriteFile(dir / "pw", "pw");
    ASSERT_EQ(RunCoffer({"crypt", "encrypt-dir", dir / "plain", dir / "enc", "--password-file", dir / "pw",
                         "--filename-encryption", "off"}).exit_code, 0);
    enc_file = dir / "enc/victim.bin.bin";
  }
  RunResult Decrypt(const std::string& pwfile = "") {
    return RunCoffer({"crypt", "decrypt-dir", dir / "enc", dir / "out", "--password-file",
                      pwfile.empty() ? dir / "pw" : pwfile, "--filename-encryption", "off"});
  }
  void ExpectRefused(const RunResult& r, int code) {
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_NE(r.err.find("victim.bin"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.rfind("coffer: error: ", 0), 0u) << r.err;
    EXPECT_FALSE(fs::exists(dir / "out/victim.bin"));
    if (fs::exists(dir / "out")) EXPECT_TRUE(Files(dir / "out").empty());
  }
};

TEST_F(TamperFixture, BitFlipIsRefused) {
  std::string s = ReadFile(enc_file);
  s[70000] ^= 0x10;
  WriteFile(enc_file, s);
  ExpectRefused(Decrypt(), 3);
}

TEST_F(TamperFixture, TruncationInsideAChunkIsRefused) {
  std::string s = ReadFile(enc_file);
  WriteFile(enc_file, s.substr(0, s.size() - 50));
  ExpectRefused(Decrypt(), 3);
  WriteFile(enc_file, s.substr(0, 32 + 65552 + 10));  // cut inside the second chunk's tag
  ExpectRefused(Decrypt(), 3);
  WriteFile(enc_file, s.substr(0, 20));  // shorter than the header
  ExpectRefused(Decrypt(), 3);
}

TEST_F(TamperFixture, ChunkSwapIsRefused) {
  std::string s = ReadFile(enc_file);
  std::string a = s.substr(32, 65552), b = s.substr(32 + 65552, 65552);
  s.replace(32, 65552, b);
  s.replace(32 + 65552, 65552, a);
  WriteFile(enc_file, s);
  ExpectRefused(Decrypt(), 3);
}

TEST_F(TamperFixture, WrongPasswordIsRefused) {
  WriteFile(dir / "bad", "not it");
  WriteFile(dir / "plain2", "");
  auto r = Decrypt(dir / "bad");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(fs::exists(dir / "out/victim.bin"));
  auto v = RunCoffer({"crypt", "verify", dir / "enc", "--password-file", dir / "bad", "--filename-encryption", "off"});
  EXPECT_NE(v.exit_code, 0);
  EXPECT_NE(v.err.find("victim.bin"), std::string::npos) << v.err;
}

TEST(CryptCli, WrongPasswordOnAWholeTreeIsUnlockFailure) {
  Tree t;
  ASSERT_EQ(RunCoffer({"crypt", "encrypt-dir", t.plain(), t.dir / "enc", "--password-file", t.dir / "pw"}).exit_code, 0);
  WriteFile(t.dir / "bad", "wrong");
  auto r = RunCoffer({"crypt", "decrypt-dir", t.dir / "enc", t.dir / "out", "--password-file", t.dir / "bad"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("wrong password"), std::string::npos) << r.err;
  EXPECT_TRUE(!fs::exists(t.dir / "out") || Files(t.dir / "out").empty());
}

TEST(CryptCli, LsCatAndJson) {
  Tree t;
  ASSERT_EQ(RunCoffer({"crypt", "encrypt-dir", t.plain(), t.dir / "enc", "--password-file", t.dir / "pw"}).exit_code, 0);
  auto r = RunCoffer({"crypt", "ls", t.dir / "enc", "--password-file", t.dir / "pw", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  bool found = false;
  for (auto& e : j)
    if (e["path"] == "size_65537") { found = true; EXPECT_EQ(e["size"], 65537); }
  EXPECT_TRUE(found) << r.out;
  r = RunCoffer({"crypt", "cat", t.dir / "enc", "size_65537", "--password-file", t.dir / "pw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, Pattern(65537, 65537));
  r = RunCoffer({"crypt", "cat", t.dir / "enc", "no/such/file", "--password-file", t.dir / "pw"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no/such/file"), std::string::npos) << r.err;
}

TEST(CryptCli, RcloneConfigPlainAndEncrypted) {
  Tree t;
  std::string conf = "[secret]\ntype = crypt\nremote = /somewhere\nfilename_encryption = obfuscate\npassword = " +
                     rclone::Obscure("correct horse battery staple") + "\npassword2 = " + rclone::Obscure("salt!") + "\n";
  WriteFile(t.dir / "rclone.conf", conf);
  WriteFile(t.dir / "rclone-enc.conf", rclone::EncryptConfig(conf, "config pw"));
  WriteFile(t.dir / "cpw", "config pw\n");
  ASSERT_EQ(RunCoffer({"crypt", "encrypt-dir", t.plain(), t.dir / "enc", "--rclone-config", t.dir / "rclone.conf",
                       "--remote", "secret"}).exit_code, 0);
  // Obfuscated names start with a rotation number.
  bool obfuscated = false;
  for (auto& f : Files(t.dir / "enc")) obfuscated |= f.find('.') != std::string::npos;
  EXPECT_TRUE(obfuscated);
  auto r = RunCoffer({"crypt", "decrypt-dir", t.dir / "enc", t.dir / "out", "--rclone-config", t.dir / "rclone-enc.conf",
                      "--remote", "secret", "--config-password-file", t.dir / "cpw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameTree(t.plain(), t.dir / "out");
  WriteFile(t.dir / "badcpw", "nope");
  r = RunCoffer({"crypt", "ls", t.dir / "enc", "--rclone-config", t.dir / "rclone-enc.conf", "--remote", "secret",
                 "--config-password-file", t.dir / "badcpw"});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  r = RunCoffer({"crypt", "ls", t.dir / "enc", "--rclone-config", t.dir / "rclone.conf", "--remote", "nosuch"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("nosuch"), std::string::npos);
  // Without any password source and no terminal: a usage-style error, never a hang.
  r = RunCoffer({"crypt", "ls", t.dir / "enc"}, RunOptions{.timeout_seconds = 20});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--password-file"), std::string::npos) << r.err;
}

TEST(CryptCli, SharedVectorsDecrypt) {
  std::string v = VectorsDir();
  if (v.empty() || !fs::exists(v + "/rclone/enc/std_p1")) GTEST_SKIP() << "shared rclone vectors missing";
  TempDir dir;
  WriteFile(dir / "pw", "correct horse battery staple");
  auto r = RunCoffer({"crypt", "decrypt-dir", v + "/rclone/enc/std_p1", dir / "out", "--password-file", dir / "pw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameTree(v + "/rclone/plain", dir / "out");
  WriteFile(dir / "p2", "Tr0ub4dor&3");
  WriteFile(dir / "s2", "NaCl-salt-2");
  r = RunCoffer({"crypt", "verify", v + "/rclone/kat_fixed_nonce/std_p2salt", "--password-file", dir / "p2",
                 "--password2-file", dir / "s2"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string ss = v + "/secure-store";
  if (!fs::exists(ss)) return;
  WriteFile(dir / "cpw", "my-password-eQ4al9jgPxlWDwxL6uiGdznhhVJzaVQPnkNRjwvwoTvqWpeBJJJZ");
  r = RunCoffer({"crypt", "decrypt-dir", ss + "/encrypted_example", dir / "ss", "--rclone-config",
                 ss + "/keys/encrypt_example.conf", "--remote", "encrypted_storage", "--config-password-file", dir / "cpw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectSameTree(ss + "/source", dir / "ss");
}

TEST(CryptCli, HelpHasExamplesAndExitCodes) {
  for (std::string sub : {"encrypt-dir", "decrypt-dir", "ls", "cat", "verify"}) {
    auto r = RunCoffer({"crypt", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("Examples"), std::string::npos) << sub;
    EXPECT_NE(r.out.find("Exit status"), std::string::npos) << sub;
  }
  EXPECT_EQ(RunCoffer({"crypt", "encrypt-dir", "a"}).exit_code, 2);
  EXPECT_EQ(RunCoffer({"crypt", "encrypt-dir", "a", "b", "--filename-encoding", "rot13"}).exit_code, 2);
}

}  // namespace
}  // namespace coffer::e2e
