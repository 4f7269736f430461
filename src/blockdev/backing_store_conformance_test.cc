#include "blockdev/backing_store_conformance.h"

#include "coffer/blockdev/memory_backing_store.h"

namespace coffer::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(
    Implementations, BackingStoreConformance,
    ::testing::Values(BackingStoreFactory{"Memory272",
                                          [] { return std::make_unique<MemoryBackingStore>(272, 64); }},
                      BackingStoreFactory{"Memory4136",
                                          [] { return std::make_unique<MemoryBackingStore>(4136, 32); }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace coffer::testing
