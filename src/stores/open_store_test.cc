#include "coffer/stores/open_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace coffer {
namespace {

TEST(OpenStore, FileCreateThenOpen) {
  char d[] = "/tmp/coffer-os-XXXXXX";
  std::string dir = mkdtemp(d);
  std::string spec = "file:" + dir + "/v";
  {
    auto s = CreateStore(spec, {.record_size = 100, .record_count = 20});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
  }
  auto s = OpenStore(spec);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->record_size(), 100u);
  EXPECT_EQ((*s)->record_count(), 20u);
  EXPECT_EQ((*s)->Describe(), spec);
  std::filesystem::remove_all(dir);
}

TEST(OpenStore, MemCreateWorksOpenExplains) {
  auto s = CreateStore("mem:", {.record_size = 64, .record_count = 4});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->record_count(), 4u);
  EXPECT_EQ(OpenStore("mem:").status().code(), StatusCode::kUnsupported);
}

TEST(OpenStore, BadSpecsAreClearErrors) {
  EXPECT_EQ(OpenStore("/tmp/x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("file:").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenStore("gopher://x").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(OpenStore("file:/nonexistent/dir/v").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CreateStore("file:/tmp/x", {}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer
