// End to end: sealed volumes whose key slot is sealed by a TPM 2.0 (swtpm started here on
// 127.0.0.1) and whose anchor is the TPM's NV counter, through the coffer binary. Skipped with a
// reason if swtpm is not installed.
#include <gtest/gtest.h>

#include <filesystem>

#include "e2e_util.h"
#include "tpm/swtpm_fixture.h"

namespace coffer::e2e {
namespace {

namespace stdfs = std::filesystem;
using tpm::testing::Swtpm;

class TpmCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (Swtpm::Binary().empty()) GTEST_SKIP() << "swtpm is not installed (apt-get install swtpm swtpm-tools)";
    std::string err;
    ASSERT_TRUE(tpm_.Start(t_ / "tpm-a", &err)) << err;
    opts_.env["XDG_STATE_HOME"] = t_ / "state";
    opts_.env["COFFER_TPM2_TCTI"] = tpm_.tcti();  // the TPM comes from the environment here
  }
  RunResult Coffer(std::vector<std::string> args) { return RunCoffer(args, opts_); }
  std::vector<std::string> Vol(std::vector<std::string> args, const std::string& key = "tpm2:") {
    std::vector<std::string> full = {"volume", args[0], "file:" + (t_ / "v"), "--key", key, "--anchor", anchor_};
    full.insert(full.end(), args.begin() + 1, args.end());
    return full;
  }
  std::vector<std::string> Fs(std::vector<std::string> args, const std::string& key = "tpm2:") {
    std::vector<std::string> full = {"fs", args[0], "--volume", "file:" + (t_ / "v"), "--key", key, "--anchor", anchor_};
    full.insert(full.end(), args.begin() + 1, args.end());
    return full;
  }

  TempDir t_;
  Swtpm tpm_;
  RunOptions opts_;
  std::string anchor_ = "tpm2:nv=0x01500020";
};

TEST_F(TpmCli, CreateFormatWriteVerifyAndRefuseRollback) {
  RunResult c = Coffer(Vol({"create", "--size", "1M"}));
  ASSERT_EQ(c.exit_code, 0) << c.err;
  RunResult f = Coffer(Fs({"format"}));
  ASSERT_EQ(f.exit_code, 0) << f.err;
  WriteFile(t_ / "a", "first version\n");
  ASSERT_EQ(Coffer(Fs({"put", t_ / "a", "/a.txt"})).exit_code, 0);
  stdfs::copy_file(t_ / "v", t_ / "old");
  bool journal = stdfs::exists(t_ / "v.journal");
  if (journal) stdfs::copy_file(t_ / "v.journal", t_ / "old.journal");
  WriteFile(t_ / "a", "second version\n");
  ASSERT_EQ(Coffer(Fs({"put", t_ / "a", "/a.txt"})).exit_code, 0);
  RunResult cat = Coffer(Fs({"cat", "/a.txt"}));
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, "second version\n");
  RunResult verify = Coffer(Vol({"verify"}));
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  RunResult info = Coffer(Vol({"info", "--json"}));
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE(info.out.find("TPM NV anchor 0x01500020"), std::string::npos) << info.out;
  EXPECT_NE(info.out.find("tpm2"), std::string::npos) << info.out;

  // Restoring the old backing file is rollback: exit 3, naming the TPM anchor.
  stdfs::copy_file(t_ / "old", t_ / "v", stdfs::copy_options::overwrite_existing);
  stdfs::remove(t_ / "v.journal");
  if (journal) stdfs::copy_file(t_ / "old.journal", t_ / "v.journal");
  RunResult rolled = Coffer(Fs({"cat", "/a.txt"}));
  EXPECT_EQ(rolled.exit_code, 3) << rolled.err;
  EXPECT_NE(rolled.err.find("coffer: error:"), std::string::npos);
  EXPECT_NE(rolled.err.find("TPM NV anchor"), std::string::npos) << rolled.err;
  EXPECT_EQ(rolled.out, "");
}

TEST_F(TpmCli, ADifferentTpmOrChangedPcrsRefuseWithExit4) {
  std::string pcr_key = "tpm2:pcrs=sha256:0,16";
  ASSERT_EQ(Coffer(Vol({"create", "--size", "1M"}, pcr_key)).exit_code, 0);
  RunResult ok = Coffer(Vol({"verify"}, pcr_key));
  ASSERT_EQ(ok.exit_code, 0) << ok.err;

  // PCR 16 extended (as a changed boot chain would): the slot no longer unseals.
  RunResult ext = e2e::Run("tpm2_pcrextend", {"16:sha256=" + std::string(64, 'a')},
                      {.env = {{"TPM2TOOLS_TCTI", tpm_.tcti()}}});
  if (ext.exit_code != 0) GTEST_SKIP() << "tpm2_pcrextend (tpm2-tools) is not usable: " << ext.err;
  RunResult refused = Coffer(Vol({"verify"}, pcr_key));
  EXPECT_EQ(refused.exit_code, 4) << refused.err;
  EXPECT_NE(refused.err.find("PCR"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("coffer: hint: the measured boot state changed"), std::string::npos) << refused.err;

  // A different TPM (fresh swtpm state) cannot unseal it either: exit 4, not a crash or a zero key.
  Swtpm other;
  std::string err;
  ASSERT_TRUE(other.Start(t_ / "tpm-b", &err)) << err;
  RunOptions o = opts_;
  o.env["COFFER_TPM2_TCTI"] = other.tcti();
  std::vector<std::string> args = {"volume", "verify", "file:" + (t_ / "v"), "--key", "tpm2:", "--anchor",
                                   t_ / "other.anchor"};
  RunResult foreign = RunCoffer(args, o);
  EXPECT_EQ(foreign.exit_code, 4) << foreign.err;
  EXPECT_NE(foreign.err.find("different TPM"), std::string::npos) << foreign.err;
}

TEST_F(TpmCli, UnreachableTpmAndBadSpecs) {
  RunOptions o = opts_;
  o.env["COFFER_TPM2_TCTI"] = "swtpm:host=127.0.0.1,port=1";
  RunResult r = RunCoffer({"volume", "create", "file:" + (t_ / "v"), "--key", "tpm2:", "--size", "1M"}, o);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("swtpm:host=127.0.0.1,port=1"), std::string::npos) << r.err;
  EXPECT_FALSE(stdfs::exists(t_ / "v"));  // nothing left behind

  RunResult bad = Coffer({"volume", "create", "file:" + (t_ / "v"), "--key", "tpm2:pcrs=sha256:99", "--size", "1M"});
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("PCR 99"), std::string::npos) << bad.err;
  EXPECT_FALSE(stdfs::exists(t_ / "v"));
  RunResult bad_nv = Coffer({"volume", "create", "file:" + (t_ / "v"), "--key", "tpm2:", "--anchor", "tpm2:nv=0x81000001",
                             "--size", "1M"});
  EXPECT_EQ(bad_nv.exit_code, 1) << bad_nv.err;
  EXPECT_FALSE(stdfs::exists(t_ / "v"));
}

}  // namespace
}  // namespace coffer::e2e
