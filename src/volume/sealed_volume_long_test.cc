// Exhaustive power-cut sweeps (label `long`, excluded from CI):
//   ctest --test-dir build -L long -R SealedVolumeCrashLong
#include "volume/volume_test_util.h"

namespace coffer {
namespace {

TEST(SealedVolumeCrashLong, PowerCutAtEveryRecordWrite256Exhaustive) { CrashSweep(256, 48, 60, 1); }
TEST(SealedVolumeCrashLong, PowerCutAtEveryRecordWrite4KExhaustive) { CrashSweep(4096, 32, 40, 1); }
TEST(SealedVolumeCrashLong, PowerCutAtEveryRecordWrite1KDeepTree) { CrashSweep(1024, 300, 30, 1); }

}  // namespace
}  // namespace coffer
