// Quick model-based random test (label unit): a few thousand random operations per geometry compared
// with an in-memory model. The long version is fs_model_long_test.cc.
#include "fstest/fs_model_harness.h"

namespace coffer::fstest {
namespace {

class FsModel : public ::testing::TestWithParam<ModelSetup> {};

TEST_P(FsModel, RandomOperationsMatchTheModel) {
  for (uint64_t seed = 1; seed <= 2 && !HasFailure(); ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ModelRun(GetParam(), seed).Run(1500);
  }
}

INSTANTIATE_TEST_SUITE_P(Geometries, FsModel, ::testing::ValuesIn(ModelSetups()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace coffer::fstest
