// Quick power-loss sweep (label unit): a cut at a spread of progs/erases of the workload, in atomic
// and out-of-order modes, on a plain memory device. The exhaustive sweep is fs_powerloss_long_test.cc.
#include "fstest/fs_powerloss_harness.h"

namespace coffer::fstest {
namespace {

class FsPowerLoss : public ::testing::TestWithParam<PowerLossSetup> {};

TEST_P(FsPowerLoss, AtomicCutsLeaveTheOldOrNewState) { Sweep(GetParam(), PowerCutMode::kAtomic, 3); }
TEST_P(FsPowerLoss, OutOfOrderCutsLeaveTheOldOrNewState) { Sweep(GetParam(), PowerCutMode::kOutOfOrder, 5); }

INSTANTIATE_TEST_SUITE_P(Geometries, FsPowerLoss, ::testing::ValuesIn(PowerLossSetups()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace coffer::fstest
