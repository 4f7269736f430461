// End-to-end tests of `coffer key` and `coffer volume`: exit codes 0/2/3/4, key file mode, wrong key
// changes nothing, tampering and rollback of the backing file are exit 3.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include <filesystem>

#include "coffer/volume/open_volume.h"
#include "e2e_util.h"

namespace coffer::e2e {
namespace {

class VolumeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(RunCoffer({"key", "new", dir_ / "k"}).exit_code, 0);
    RunResult r = RunCoffer({"volume", "create", "file:" + (dir_ / "v"), "--key", dir_ / "k", "--size", "1M",
                             "--sector-size", "1024"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  RunResult Info(const std::string& file, const std::string& key) {
    return RunCoffer({"volume", "info", "file:" + file, "--key", key, "--json"});
  }
  void FlipByte(const std::string& path, size_t offset) {
    std::string b = ReadFile(path);
    ASSERT_LT(offset, b.size());
    b[offset] ^= 0x41;
    WriteFile(path, b);
  }
  // Writes a few sectors through the library (the filesystem normally does this).
  void WriteSectors(const std::string& file) {
    auto v = OpenVolumeDevice("file:" + file, dir_ / "k");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    for (uint32_t b = 0; b < 5; ++b) {
      std::vector<uint8_t> data(1024, uint8_t(b + 1));
      ASSERT_TRUE((*v)->Erase(b).ok());
      ASSERT_TRUE((*v)->Prog(b, 0, data).ok());
    }
    ASSERT_TRUE((*v)->Sync().ok());
  }
  TempDir dir_;
};

TEST_F(VolumeCli, KeyFileIs0600AndIsNotOverwritten) {
  struct stat st;
  ASSERT_EQ(stat((dir_ / "k").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string before = ReadFile(dir_ / "k");
  RunResult r = RunCoffer({"key", "new", dir_ / "k"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("coffer: error: "), std::string::npos);
  EXPECT_NE(r.err.find("--force"), std::string::npos);
  EXPECT_EQ(ReadFile(dir_ / "k"), before);
  EXPECT_EQ(RunCoffer({"key", "new", "--force", dir_ / "k"}).exit_code, 0);
  EXPECT_NE(ReadFile(dir_ / "k"), before);
}

TEST_F(VolumeCli, InfoJsonDescribesTheVolume) {
  RunResult r = Info(dir_ / "v", dir_ / "k");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["cipher"], "xchacha20-poly1305");
  EXPECT_EQ(j["sector_size"], 1024);
  EXPECT_EQ(j["size_bytes"], 1 << 20);
  EXPECT_EQ(j["format_version"], 2);
  EXPECT_EQ(j["counter"], 0);
  EXPECT_EQ(j["volume_id"].get<std::string>().size(), 32u);
  ASSERT_EQ(j["slots"].size(), 1u);
  EXPECT_EQ(j["slots"][0]["type"], "key-file");
}

TEST_F(VolumeCli, WrongKeyIsExit4AndChangesNothing) {
  ASSERT_EQ(RunCoffer({"key", "new", dir_ / "k2"}).exit_code, 0);
  std::string vol = ReadFile(dir_ / "v"), anchor = ReadFile(dir_ / "k.anchor");
  RunResult r = Info(dir_ / "v", dir_ / "k2");
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("no key slot"), std::string::npos) << r.err;
  EXPECT_EQ(RunCoffer({"volume", "add-key", "file:" + (dir_ / "v"), "--key", dir_ / "k2", "--new-key",
                       dir_ / "k2"}).exit_code, 4);
  EXPECT_EQ(ReadFile(dir_ / "v"), vol);
  EXPECT_EQ(ReadFile(dir_ / "k.anchor"), anchor);
}

TEST_F(VolumeCli, HeaderCorruptionIsExit3) {
  for (size_t off : {0, 40, 4096 + 8, 4096 + 40, 4096 + 300, 4096 + 4000}) {
    std::filesystem::copy_file(dir_ / "v", dir_ / "c", std::filesystem::copy_options::overwrite_existing);
    FlipByte(dir_ / "c", off);
    RunResult r = Info(dir_ / "c", dir_ / "k");
    EXPECT_EQ(r.exit_code, 3) << "offset " << off << ": " << r.err;
    EXPECT_TRUE(r.err.find("tampered") != std::string::npos || r.err.find("corrupt") != std::string::npos) << r.err;
  }
}

TEST_F(VolumeCli, TruncatedStoreIsExit3) {
  std::filesystem::resize_file(dir_ / "v", std::filesystem::file_size(dir_ / "v") - 100);
  RunResult r = Info(dir_ / "v", dir_ / "k");
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST_F(VolumeCli, RestoringAnOlderCopyIsRollbackExit3) {
  std::filesystem::copy_file(dir_ / "v", dir_ / "old");
  WriteSectors(dir_ / "v");
  std::filesystem::copy_file(dir_ / "old", dir_ / "v", std::filesystem::copy_options::overwrite_existing);
  RunResult r = Info(dir_ / "v", dir_ / "k");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("rolled back"), std::string::npos) << r.err;
}

TEST_F(VolumeCli, VerifyNamesTheTamperedSector) {
  WriteSectors(dir_ / "v");
  EXPECT_EQ(RunCoffer({"volume", "verify", "file:" + (dir_ / "v"), "--key", dir_ / "k"}).exit_code, 0);
  // Sector 3 (records of 1072 bytes after a 4096-byte store header and 4 header records).
  FlipByte(dir_ / "v", 4096 + (4 + 3) * 1072 + 500);
  RunResult r = RunCoffer({"volume", "verify", "file:" + (dir_ / "v"), "--key", dir_ / "k", "--json"});
  EXPECT_EQ(r.exit_code, 3);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ok"], false);
  ASSERT_EQ(j["failures"].size(), 1u);
  EXPECT_NE(j["failures"][0].get<std::string>().find("sector 3"), std::string::npos) << r.out;
}

TEST_F(VolumeCli, PassphraseSlotAddRemoveAndCryptoErase) {
  RunOptions pw{.stdin_data = "correct horse battery\n"};
  std::vector<std::string> argon = {"--argon2-ops", "1", "--argon2-memory", "8"};
  std::vector<std::string> add = {"volume", "add-key", "file:" + (dir_ / "v"), "--key", dir_ / "k", "--new-key",
                                  "pass:fd:0"};
  add.insert(add.end(), argon.begin(), argon.end());
  RunResult r = RunCoffer(add, pw);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string anchor = dir_ / "anchors";
  r = RunCoffer({"volume", "info", "file:" + (dir_ / "v"), "--key", "pass:fd:0", "--anchor", anchor, "--json"}, pw);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["unlocked_slot"], 1);
  r = RunCoffer({"volume", "info", "file:" + (dir_ / "v"), "--key", "pass:fd:0", "--anchor", anchor},
                {.stdin_data = "wrong\n"});
  EXPECT_EQ(r.exit_code, 4);
  // Remove the key-file slot with the passphrase; the key file no longer opens it.
  r = RunCoffer({"volume", "remove-key", "file:" + (dir_ / "v"), "--key", "pass:fd:0", "--anchor", anchor,
                 "--slot", "0"},
                pw);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Info(dir_ / "v", dir_ / "k").exit_code, 4);
  // The last slot needs --yes.
  r = RunCoffer({"volume", "remove-key", "file:" + (dir_ / "v"), "--key", "pass:fd:0", "--anchor", anchor,
                 "--slot", "1"},
                pw);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--yes"), std::string::npos);
  EXPECT_EQ(RunCoffer({"volume", "erase", "file:" + (dir_ / "v"), "--key", "pass:fd:0", "--anchor", anchor}, pw)
                .exit_code,
            2);
  r = RunCoffer({"volume", "erase", "file:" + (dir_ / "v"), "--key", "pass:fd:0", "--anchor", anchor, "--yes"}, pw);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCoffer({"volume", "info", "file:" + (dir_ / "v"), "--key", "pass:fd:0", "--anchor", anchor}, pw);
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("crypto-erased"), std::string::npos) << r.err;
}

TEST_F(VolumeCli, CreateRefusesExistingFileAndBadInput) {
  std::string vol = ReadFile(dir_ / "v");
  EXPECT_EQ(RunCoffer({"volume", "create", "file:" + (dir_ / "v"), "--key", dir_ / "k"}).exit_code, 1);
  EXPECT_EQ(ReadFile(dir_ / "v"), vol);
  EXPECT_EQ(RunCoffer({"volume", "create", "file:" + (dir_ / "x"), "--key", dir_ / "k", "--sector-size", "1000"})
                .exit_code,
            1);
  EXPECT_EQ(RunCoffer({"volume", "create", "file:" + (dir_ / "x"), "--key", dir_ / "k", "--size", "12Q"}).exit_code,
            2);
  EXPECT_EQ(RunCoffer({"volume", "create", "file:" + (dir_ / "x"), "--key", dir_ / "nokey"}).exit_code, 1);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x"));
  RunResult r = RunCoffer({"volume", "info", "mem:", "--key", dir_ / "k"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("mem:"), std::string::npos);
  EXPECT_EQ(RunCoffer({"volume", "info", "file:" + (dir_ / "v")}).exit_code, 2);  // --key missing
}

TEST_F(VolumeCli, AesGcmVolumeWorks) {
  RunResult r = RunCoffer({"volume", "create", "file:" + (dir_ / "g"), "--key", dir_ / "k", "--cipher", "aes-256-gcm",
                           "--size", "64K", "--sector-size", "256"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = Info(dir_ / "g", dir_ / "k");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["cipher"], "aes-256-gcm");
}

TEST(VolumeCliHelp, EverySubcommandHasExamplesAndExitCodes) {
  for (std::string sub : {"create", "info", "verify", "add-key", "remove-key", "erase"}) {
    RunResult r = RunCoffer({"volume", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Examples"), std::string::npos) << sub;
    EXPECT_NE(r.out.find("Exit status"), std::string::npos) << sub;
  }
  RunResult r = RunCoffer({"key", "new", "--help"});
  EXPECT_NE(r.out.find("Examples"), std::string::npos);
}

}  // namespace
}  // namespace coffer::e2e
