// Long test (label `long`, not in CI): a 1 GiB file through encrypt-dir, decrypt-dir and rclone.
// Run: cd build && ctest -L long -R crypt --output-on-failure
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace coffer::e2e
