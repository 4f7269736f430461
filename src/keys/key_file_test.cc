#include "coffer/keys/key_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "coffer/base/file_util.h"

namespace coffer {
namespace {

struct Tmp {
  Tmp() {
    char d[] = "/tmp/coffer-kf-XXXXXX";
    dir = mkdtemp(d);
  }
  ~Tmp() { std::filesystem::remove_all(dir); }
  std::string dir;
};

TEST(KeyFile, NewKeyFileIs0600AndRoundTrips) {
  Tmp t;
  std::string p = t.dir + "/k";
  ASSERT_TRUE(CreateKeyFile(p, false).ok());
  struct stat st;
  ASSERT_EQ(stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 64);
  auto k = ReadKeyFile(p);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->size(), 32u);
}

TEST(KeyFile, RefusesToOverwriteWithoutForce) {
  Tmp t;
  std::string p = t.dir + "/k";
  ASSERT_TRUE(CreateKeyFile(p, false).ok());
  auto before = ReadKeyFile(p);
  EXPECT_EQ(CreateKeyFile(p, false).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(ReadKeyFile(p)->Equals(*before));
  ASSERT_TRUE(CreateKeyFile(p, true).ok());
  EXPECT_FALSE(ReadKeyFile(p)->Equals(*before));
}

TEST(KeyFile, EveryCorruptionIsRefused) {
  SecretBytes key = SecretBytes::Random(32);
  SecretBytes image = EncodeKeyFile(key);
  ASSERT_TRUE(DecodeKeyFile(image, "k")->Equals(key));
  for (size_t i = 0; i < image.size(); ++i) {
    SecretBytes bad = image.Clone();
    bad.reveal()[i] ^= 0x04;
    EXPECT_FALSE(DecodeKeyFile(bad, "k").ok()) << i;
  }
  SecretBytes short_image = SecretBytes::CopyOf(image.reveal().subspan(0, 63));
  EXPECT_EQ(DecodeKeyFile(short_image, "k").status().code(), StatusCode::kUnauthenticated);
}

TEST(KeyFile, MissingIsNotFound) {
  EXPECT_EQ(ReadKeyFile("/nonexistent/k").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace coffer
