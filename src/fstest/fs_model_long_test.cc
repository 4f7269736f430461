// Long model-based random test (label long): many seeds of ten thousand operations per geometry.
//   ctest -L long -R FsModelLong --output-on-failure
#include "fstest/fs_model_harness.h"

namespace coffer::fstest {
namespace {

class FsModelLong : public ::testing::TestWithParam<ModelSetup> {};

TEST_P(FsModelLong, ManySeedsMatchTheModel) {
  for (uint64_t seed = 100; seed < 120 && !HasFailure(); ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    ModelRun(GetParam(), seed).Run(10000);
  }
}

INSTANTIATE_TEST_SUITE_P(Geometries, FsModelLong, ::testing::ValuesIn(ModelSetups()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace coffer::fstest
