// The command line's outer contract: help, usage errors and exit status 2.
#include <gtest/gtest.h>

#include "e2e_util.h"

namespace coffer::e2e {
namespace {

TEST(CliHelp, TopLevelHelpListsExitCodes) {
  RunResult r = RunCoffer({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("Exit status"), std::string::npos) << r.out;
}

TEST(CliHelp, UnknownCommandIsAUsageError) {
  RunResult r = RunCoffer({"no-such-command"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err.rfind("coffer: error: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace coffer::e2e
