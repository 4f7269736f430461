#include "coffer/keyserver/witness.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace coffer::keyserver {
namespace {

TEST(Witness, RefusesRolledBackAndForkedReportsAndPersists) {
  char tmpl[] = "/tmp/coffer-witness-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  {
    WitnessStore w(dir);
    EXPECT_EQ(w.Latest("dev", "abcd").status().code(), StatusCode::kNotFound);
    ASSERT_TRUE(w.Report("dev", "abcd", 5, "aa").ok());
    ASSERT_TRUE(w.Report("dev", "abcd", 5, "aa").ok());  // identical repeat
    EXPECT_EQ(w.Report("dev", "abcd", 4, "bb").status().code(), StatusCode::kDataLoss);
    EXPECT_EQ(w.Report("dev", "abcd", 5, "bb").status().code(), StatusCode::kDataLoss);
    ASSERT_TRUE(w.Report("dev", "abcd", 9, "cc").ok());
    // another device's volume of the same id is independent
    ASSERT_TRUE(w.Report("other", "abcd", 1, "dd").ok());
  }
  WitnessStore again(dir);  // persisted across restarts
  auto l = again.Latest("dev", "abcd");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->counter, 9u);
  EXPECT_EQ(l->root_hex, "cc");
  EXPECT_EQ(again.Report("dev", "abcd", 8, "ee").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(again.Report("dev", "ABCD", 10, "ee").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(again.Report("../x", "abcd", 10, "ee").status().code(), StatusCode::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace coffer::keyserver
