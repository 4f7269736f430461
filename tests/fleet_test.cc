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

// ---- key server through the CLI ----
#include <signal.h>
#include <sys/wait.h>

namespace coffer::e2e {
namespace {

class ServeKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = dir_ / "ca";
    ASSERT_EQ(RunCoffer({"pki", "init", "--dir", ca_}).exit_code, 0);
    ASSERT_EQ(RunCoffer({"pki", "issue", "--dir", ca_, "--server", "keys", "--host", "127.0.0.1"}).exit_code, 0);
    ASSERT_EQ(RunCoffer({"pki", "issue", "--dir", ca_, "--device", "dev-a"}).exit_code, 0);
    ASSERT_EQ(RunCoffer({"pki", "issue", "--dir", ca_, "--device", "dev-b"}).exit_code, 0);
    data_ = dir_ / "data";
    WriteFile(dir_ / "pw", kDemoPassword);
    ASSERT_EQ(RunCoffer({"keyserver", "enroll", "--data", data_, "--device", "dev-a", "--secret-file", dir_ / "pw"})
                  .exit_code,
              0);
    ASSERT_EQ(RunCoffer({"keyserver", "enroll", "--data", data_, "--device", "dev-b"}).exit_code, 0);
    port_ = FreePort();
    pid_ = fork();
    if (pid_ == 0) {
      std::string listen = "127.0.0.1:" + std::to_string(port_);
      execl(COFFER_BIN, COFFER_BIN, "serve", "keys", "--data", data_.c_str(), "--listen", listen.c_str(), "--tls-cert",
            (ca_ + "/servers/keys.crt").c_str(), "--tls-key", (ca_ + "/servers/keys.key").c_str(), "--client-ca",
            (ca_ + "/ca.crt").c_str(), "--crl", (ca_ + "/crl.pem").c_str(), "--compat-key-endpoint", nullptr);
      _exit(127);
    }
    // ready when the TLS port accepts (a refused handshake from curl without a cert still proves it)
    for (int i = 0; i < 200; ++i) {
      if (e2e::Run("bash", {"-c", "exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port_)}).exit_code == 0) break;
      usleep(25000);
    }
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int st = 0;
      waitpid(pid_, &st, 0);
      EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "serve keys did not stop cleanly on SIGTERM";
    }
  }
  std::vector<std::string> Dev(const std::string& id) {
    return {"--keyserver", "https://127.0.0.1:" + std::to_string(port_), "--tls-cert", ca_ + "/devices/" + id + ".crt",
            "--tls-key", ca_ + "/devices/" + id + ".key", "--ca", ca_ + "/ca.crt", "--deadline", "3"};
  }
  std::vector<std::string> Cat(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  TempDir dir_;
  std::string ca_, data_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(ServeKeysTest, ExecWithKeyserverDecryptsAndLeaksNoTlsMaterial) {
  RunOptions o;
  o.env["ENCRYPTED_TESTVAR"] = kDemoHex;
  o.env["COFFER_TLS_KEY"] = "x";
  RunResult r = RunCoffer(Cat(Cat({"exec"}, Dev("dev-a")), {"--", "sh", "-c", "printf '%s|%s' \"$TESTVAR\" \"${COFFER_TLS_KEY:-gone}\""}), o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "this-is-my-new-test-api-key|gone");
  // dev-b's secret is a different one: its unlock of dev-a's value fails with 4 and starts nothing
  RunResult b = RunCoffer(Cat(Cat({"exec"}, Dev("dev-b")), {"--", "touch", dir_ / "started"}), o);
  EXPECT_EQ(b.exit_code, 4) << b.err;
}

TEST_F(ServeKeysTest, UnlockWritesKeyAndRevocationIsRefusedWithExit4) {
  RunResult r = RunCoffer(Cat(Cat({"unlock"}, Dev("dev-a")), {"--out", dir_ / "k"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(dir_ / "k"), kDemoPassword);
  struct stat st;
  ASSERT_EQ(stat((dir_ / "k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(RunCoffer({"pki", "revoke", "--dir", ca_, "dev-a"}).exit_code, 0);
  r = RunCoffer(Cat(Cat({"unlock"}, Dev("dev-a")), {"--out", dir_ / "k2"}));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("revoked"), std::string::npos) << r.err;
}

TEST_F(ServeKeysTest, UnreachableServerIsADistinctError) {
  std::vector<std::string> args = Dev("dev-a");
  args[1] = "https://127.0.0.1:" + std::to_string(FreePort());
  args.back() = "1";
  RunResult r = RunCoffer(Cat(Cat({"unlock"}, args), {"--out", dir_ / "k"}));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("unreachable"), std::string::npos) << r.err;
}

TEST_F(ServeKeysTest, WitnessRollbackExits3) {
  EXPECT_EQ(RunCoffer(Cat(Cat({"keyserver", "witness"}, Dev("dev-a")), {"--volume", "ab", "--counter", "5", "--root", "01"})).exit_code, 0);
  RunResult r = RunCoffer(Cat(Cat({"keyserver", "witness"}, Dev("dev-a")), {"--volume", "ab", "--counter", "4", "--root", "02"}));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("rolled back"), std::string::npos) << r.err;
}

TEST_F(ServeKeysTest, TangBindAndUnlockThroughMtls) {
  RunResult b = RunCoffer(Cat(Cat({"keyserver", "bind"}, Dev("dev-a")), {"--binding", dir_ / "tang.json", "--out", dir_ / "k1"}));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  RunResult u = RunCoffer(Cat(Cat({"unlock"}, Dev("dev-a")), {"--binding", dir_ / "tang.json", "--out", dir_ / "k2"}));
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_EQ(ReadFile(dir_ / "k1"), ReadFile(dir_ / "k2"));
  EXPECT_EQ(ReadFile(dir_ / "k1").size(), 32u);
}

}  // namespace
}  // namespace coffer::e2e
