// Long tests (label `long`, not in CI): a 1 GiB file through encrypt-dir, decrypt-dir and rclone, and
// through `coffer crypt mount` (written, read back, unmounted, decrypted).
// Run: cd build && ctest -L long -R crypt_long --output-on-failure
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>
#include <sys/stat.h>

#include "coffer/rclone/config.h"
#include "e2e_util.h"

namespace coffer::e2e {
namespace {

TEST(CryptLong, OneGibFileRoundTripsAndRcloneReadsIt) {
  TempDir t;
  std::filesystem::create_directories(t / "plain");
  {
    std::ofstream f(t / "plain/big.bin", std::ios::binary);
    std::string block(1 << 20, '\0');
    for (int i = 0; i < 1024; ++i) {
      for (size_t k = 0; k < block.size(); k += 4096) block[k] = char(i + k / 4096);
      f.write(block.data(), std::streamsize(block.size()));
    }
  }
  WriteFile(t / "pw", "long test");
  auto r = RunCoffer({"crypt", "encrypt-dir", t / "plain", t / "enc", "--password-file", t / "pw"}, RunOptions{.timeout_seconds = 1800});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCoffer({"crypt", "decrypt-dir", t / "enc", t / "out", "--password-file", t / "pw"}, RunOptions{.timeout_seconds = 1800});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(e2e::Run("cmp", {t / "plain/big.bin", t / "out/big.bin"}).exit_code, 0);
  if (e2e::Run("rclone", {"version"}).exit_code != 0) GTEST_SKIP() << "rclone is not installed";
  RunOptions o{.timeout_seconds = 1800};
  o.env = {{"RCLONE_CONFIG_X_TYPE", "crypt"}, {"RCLONE_CONFIG_X_REMOTE", t / "enc"},
           {"RCLONE_CONFIG_X_PASSWORD", rclone::Obscure("long test")}};
  r = e2e::Run("rclone", {"--config", "/dev/null", "check", "--download", t / "plain", "X:"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

void WriteGib(const std::string& path) {
  std::ofstream f(path, std::ios::binary);
  std::string block(1 << 20, '\0');
  for (int i = 0; i < 1024; ++i) {
    for (size_t k = 0; k < block.size(); k += 4096) block[k] = char(i * 7 + k / 4096);
    f.write(block.data(), std::streamsize(block.size()));
  }
}

TEST(CryptLong, OneGibFileThroughTheMount) {
  if (::access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/fuse is not usable here";
  TempDir t;
  std::filesystem::create_directories(t / "enc");
  std::filesystem::create_directories(t / "mnt");
  WriteGib(t / "big.bin");
  WriteFile(t / "pw", "long mount test");
  RunOptions o{.timeout_seconds = 1800};
  auto r = RunCoffer({"crypt", "mount", t / "enc", t / "mnt", "--password-file", t / "pw"}, o);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(e2e::Run("cp", {t / "big.bin", t / "mnt/big.bin"}, o).exit_code, 0);
  struct stat st;
  ASSERT_EQ(::stat((t / "mnt/big.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, off_t(1) << 30);
  EXPECT_EQ(e2e::Run("cmp", {t / "big.bin", t / "mnt/big.bin"}, o).exit_code, 0);
  r = RunCoffer({"umount", t / "mnt"}, o);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCoffer({"crypt", "decrypt-dir", t / "enc", t / "out", "--password-file", t / "pw"}, o);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(e2e::Run("cmp", {t / "big.bin", t / "out/big.bin"}, o).exit_code, 0);
}

}  // namespace
}  // namespace coffer::e2e
