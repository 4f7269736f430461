// OpenStore / CreateStore: the one place that turns a store SPEC into a BackingStore.
//   file:PATH   FileBackingStore (journaled local file)
//   mem:        MemoryBackingStore (CreateStore only: it lives inside one process)
// More schemes (https://, http://, diskhost://) are added as branches of the dispatch in
// src/stores/open_store.cc. Stores with a fixed geometry (the original disk host: 16384 records of
// 272 bytes) ignore the requested record size/count in CreateStore and return their own; callers
// read record_size()/record_count() from the result. Thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "coffer/blockdev/backing_store.h"

namespace coffer {

struct StoreCreateOptions {
  uint32_t record_size = 0;
  uint64_t record_count = 0;
  bool overwrite = false;  // file: replace an existing file
};

// The scheme of a spec ("file", "mem", "https"...), or empty if it has none.
std::string_view StoreScheme(std::string_view spec);
// kInvalidArgument for a spec without a scheme or path, kUnsupported for an unknown scheme, and
// the store's own errors (kNotFound, kDataLoss for corrupt store metadata...).
Result<std::unique_ptr<BackingStore>> OpenStore(std::string_view spec);
Result<std::unique_ptr<BackingStore>> CreateStore(std::string_view spec, const StoreCreateOptions& options);

}  // namespace coffer
