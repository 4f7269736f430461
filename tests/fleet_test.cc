// End-to-end tests of fleet unlock through the built binary: `coffer exec` (environment, exit
// status, refusal before start), `coffer env`, PKI, the key server and its clients.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "e2e_util.h"

namespace coffer::e2e {
namespace {

constexpr char kDemoHex[] =
    "b2c8955bad9bc7520e09f42e7a24b34860745b6fad240368dcc201d2d175938f55b5a404265c09f848c758aeb4248b7b32d63d1baad66a";
constexpr char kDemoPassword[] = "my-password-eQ4al9jgPxlWDwxL6uiGdznhhVJzaVQPnkNRjwvwoTvqWpeBJJJZ";

class ExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteFile(dir_ / "pw", kDemoPassword);
    WriteFile(dir_ / "bad", "wrong");
  }
  TempDir dir_;
};

TEST_F(ExecTest, SecureStoreValueIsDecryptedAndOriginalRemoved) {
  RunOptions o;
  o.env["ENCRYPTED_TESTVAR"] = kDemoHex;
  o.env["COFFER_PASSWORD"] = "must-not-leak";
  RunResult r = RunCoffer({"exec", "--format", "secure-store", "--password-file", dir_ / "pw", "--", "sh", "-c",
                           "printf '%s|%s|%s' \"$TESTVAR\" \"${ENCRYPTED_TESTVAR:-gone}\" \"${COFFER_PASSWORD:-gone}\""},
                          o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "this-is-my-new-test-api-key|gone|gone");
}

TEST_F(ExecTest, PasswordFileWithTrailingNewlineWorks) {
  WriteFile(dir_ / "pwnl", std::string(kDemoPassword) + "\n");
  RunOptions o;
  o.env["ENCRYPTED_TESTVAR"] = kDemoHex;
  RunResult r = RunCoffer({"exec", "--password-file", dir_ / "pwnl", "--", "printenv", "TESTVAR"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "this-is-my-new-test-api-key\n");
}

TEST_F(ExecTest, WrongPasswordStartsNothingAndExits4NamingTheVariable) {
  RunOptions o;
  o.env["ENCRYPTED_TESTVAR"] = kDemoHex;
  RunResult r = RunCoffer({"exec", "--format", "secure-store", "--password-file", dir_ / "bad", "--", "touch",
                           dir_ / "started"},
                          o);
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("ENCRYPTED_TESTVAR"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.rfind("coffer: error: ", 0), 0u);
  struct stat st;
  EXPECT_NE(::stat((dir_ / "started").c_str(), &st), 0);
}

TEST_F(ExecTest, MalformedValuesStartNothingAndExit1) {
  for (std::string bad : {"abc", "zz", "00ff", ""}) {
    RunOptions o;
    o.env["ENCRYPTED_SHORT"] = bad;
    RunResult r = RunCoffer({"exec", "--password-file", dir_ / "pw", "--", "touch", dir_ / "started"}, o);
    EXPECT_EQ(r.exit_code, 1) << bad << " " << r.err;
    EXPECT_NE(r.err.find("ENCRYPTED_SHORT"), std::string::npos) << r.err;
    struct stat st;
    EXPECT_NE(::stat((dir_ / "started").c_str(), &st), 0);
  }
}

TEST_F(ExecTest, TamperedValueBesideAGoodOneExits3) {
  std::string tampered = kDemoHex;
  tampered[40] = tampered[40] == '0' ? '1' : '0';
  RunOptions o;
  o.env["ENCRYPTED_TESTVAR"] = kDemoHex;
  o.env["ENCRYPTED_OTHER"] = tampered;
  RunResult r = RunCoffer({"exec", "--password-file", dir_ / "pw", "--", "true"}, o);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("ENCRYPTED_OTHER"), std::string::npos) << r.err;
}

TEST_F(ExecTest, ExitStatusAndSignalsAreTheCommandsOwn) {
  RunOptions o;
  o.env["ENCRYPTED_TESTVAR"] = kDemoHex;
  EXPECT_EQ(RunCoffer({"exec", "--password-file", dir_ / "pw", "--", "sh", "-c", "exit 7"}, o).exit_code, 7);
  EXPECT_EQ(RunCoffer({"exec", "--password-file", dir_ / "pw", "--", "sh", "-c", "kill -TERM $$"}, o).exit_code,
            128 + 15);
  // exec, not a child: the command's pid is coffer's pid, so its parent is the test itself
  RunResult r = RunCoffer({"exec", "--password-file", dir_ / "pw", "--", "sh", "-c", "echo $PPID"}, o);
  EXPECT_EQ(r.out, std::to_string(::getpid()) + "\n");
}

TEST_F(ExecTest, MissingCommandIs127) {
  RunOptions o;
  RunResult r = RunCoffer({"exec", "--password-file", dir_ / "pw", "--", "no-such-program-xyz"}, o);
  EXPECT_EQ(r.exit_code, 127) << r.err;
  EXPECT_NE(r.err.find("no-such-program-xyz"), std::string::npos);
}

TEST_F(ExecTest, NoKeyIsAnError) {
  RunResult r = RunCoffer({"exec", "--", "true"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no key given"), std::string::npos) << r.err;
}

TEST_F(ExecTest, EnvEncryptCofferFormatRoundTripsThroughExec) {
  RunOptions in;
  in.stdin_data = "s3cret with spaces\n";
  RunResult e = RunCoffer({"env", "encrypt", "API_TOKEN", "--password-file", dir_ / "pw", "--argon2-ops", "1",
                           "--argon2-mem-kib", "1024"},
                          in);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  ASSERT_EQ(e.out.rfind("ENCRYPTED_API_TOKEN=CENV1.", 0), 0u) << e.out;
  std::string value = e.out.substr(std::string("ENCRYPTED_API_TOKEN=").size());
  value.pop_back();
  EXPECT_EQ(e.out.find("s3cret"), std::string::npos);
  RunOptions o;
  o.env["ENCRYPTED_API_TOKEN"] = value;
  RunResult r = RunCoffer({"exec", "--password-file", dir_ / "pw", "--", "printenv", "API_TOKEN"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "s3cret with spaces\n");
  // moved to another name: tampering
  RunOptions moved;
  moved.env["ENCRYPTED_OTHER"] = value;
  EXPECT_EQ(RunCoffer({"exec", "--password-file", dir_ / "pw", "--", "true"}, moved).exit_code, 3);
  // wrong password: unlock failure
  EXPECT_EQ(RunCoffer({"exec", "--password-file", dir_ / "bad", "--", "true"}, o).exit_code, 4);
}

TEST_F(ExecTest, EnvEncryptSecureStoreFormatAndDecrypt) {
  RunOptions in;
  in.stdin_data = "hello";
  RunResult e = RunCoffer({"env", "encrypt", "X", "--format", "secure-store", "--password-file", dir_ / "pw"}, in);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  ASSERT_EQ(e.out.rfind("ENCRYPTED_X=", 0), 0u);
  EXPECT_EQ(e.out.size(), std::string("ENCRYPTED_X=").size() + 2 * (12 + 5 + 16) + 1);
  RunOptions d;
  d.stdin_data = e.out;
  RunResult r = RunCoffer({"env", "decrypt", "--password-file", dir_ / "pw"}, d);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello\n");
  RunOptions v;
  v.stdin_data = std::string("ENCRYPTED_TESTVAR=") + kDemoHex + "\n";
  r = RunCoffer({"env", "decrypt", "--format", "secure-store", "--password-file", dir_ / "pw"}, v);
  EXPECT_EQ(r.out, "this-is-my-new-test-api-key\n");
}

TEST_F(ExecTest, KeyFileEncryptsAndDecrypts) {
  WriteFile(dir_ / "k", std::string(64, 'a') + "\n");
  RunOptions in;
  in.stdin_data = "v";
  RunResult e = RunCoffer({"env", "encrypt", "K", "--key", "file:" + (dir_ / "k")}, in);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  RunOptions o;
  o.env["ENCRYPTED_K"] = e.out.substr(12, e.out.size() - 13);
  RunResult r = RunCoffer({"exec", "--key", dir_ / "k", "--", "printenv", "K"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "v\n");
}

}  // namespace
}  // namespace coffer::e2e
