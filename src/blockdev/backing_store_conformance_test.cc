#include "blockdev/backing_store_conformance.h"

#include <unistd.h>

#include "coffer/blockdev/fault_backing_store.h"
#include "coffer/blockdev/file_backing_store.h"
#include "coffer/blockdev/memory_backing_store.h"

namespace coffer::testing {
namespace {

std::unique_ptr<BackingStore> MakeFileStore(uint32_t record_size, uint64_t count) {
  char dir[] = "/tmp/coffer-fs-XXXXXX";
  if (!mkdtemp(dir)) return nullptr;
  std::string path = std::string(dir) + "/store";
  auto store = FileBackingStore::Create(path, record_size, count);
  // The open descriptors keep the files alive after unlinking.
  unlink(path.c_str());
  unlink(FileBackingStore::JournalPath(path).c_str());
  rmdir(dir);
  return store.ok() ? std::move(store).value() : nullptr;
}

INSTANTIATE_TEST_SUITE_P(
    Implementations, BackingStoreConformance,
    ::testing::Values(BackingStoreFactory{"Memory272",
                                          [] { return std::make_unique<MemoryBackingStore>(272, 64); }},
                      BackingStoreFactory{"Memory4136",
                                          [] { return std::make_unique<MemoryBackingStore>(4136, 32); }},
                      BackingStoreFactory{"File272", [] { return MakeFileStore(272, 64); }},
                      BackingStoreFactory{"File4144", [] { return MakeFileStore(4144, 32); }},
                      BackingStoreFactory{"FaultOverMemory",
                                          [] {
                                            return std::make_unique<FaultBackingStore>(
                                                std::make_shared<MemoryBackingStore>(304, 40));
                                          }}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace coffer::testing
