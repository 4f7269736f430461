#include "coffer/base/file_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace coffer {
namespace {

std::string TempDir() {
  char tmpl[] = "/tmp/coffer-fu-XXXXXX";
  return mkdtemp(tmpl);
}

TEST(WriteFileAtomic, CreatesWithMode0600AndReadsBack) {
  std::string dir = TempDir();
  std::string path = dir + "/key";
  ASSERT_TRUE(WriteFileAtomic(path, AsBytes("secret")).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = ReadSecretFile(path);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->reveal_string(), "secret");
  system(("rm -rf " + dir).c_str());
}

TEST(WriteFileAtomic, RefusesOverwriteWhenAsked) {
  std::string dir = TempDir();
  std::string path = dir + "/key";
  ASSERT_TRUE(WriteFileAtomic(path, AsBytes("one")).ok());
  Status s = WriteFileAtomic(path, AsBytes("two"), {.overwrite = false});
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(AsStringView(ReadFileBytes(path).value()), "one");
  system(("rm -rf " + dir).c_str());
}

TEST(ReadFileBytes, MissingFileIsNotFound) {
  EXPECT_EQ(ReadFileBytes("/nonexistent/coffer/x").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace coffer
