// Exhaustive power-loss sweep (label long): a cut at every prog and erase of the workload, in atomic,
// torn and out-of-order modes (several random outcomes per cut for out-of-order).
//   ctest -L long -R FsPowerLossLong --output-on-failure
#include "fstest/fs_powerloss_harness.h"

namespace coffer::fstest {
namespace {

class FsPowerLossLong : public ::testing::TestWithParam<PowerLossSetup> {};

TEST_P(FsPowerLossLong, EveryAtomicCut) { Sweep(GetParam(), PowerCutMode::kAtomic, 1); }
TEST_P(FsPowerLossLong, EveryTornCut) { Sweep(GetParam(), PowerCutMode::kTorn, 1, 2); }
TEST_P(FsPowerLossLong, EveryOutOfOrderCut) { Sweep(GetParam(), PowerCutMode::kOutOfOrder, 1, 3); }

INSTANTIATE_TEST_SUITE_P(Geometries, FsPowerLossLong, ::testing::ValuesIn(PowerLossSetups()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace coffer::fstest
