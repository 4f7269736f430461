// Opening an object store in this process: on a sealed volume (the daemon's and the in-process
// PSA library's store: volume -> littlefs -> ObjectStore) or in memory (tests). LocalStore owns the
// whole stack and tears it down in order (store, filesystem, device). Thread-safe as ObjectStore.
#pragma once

#include <memory>
#include <string>

#include "coffer/base/status.h"
#include "coffer/objects/store.h"

namespace coffer::objects {

class LocalStore {
 public:
  virtual ~LocalStore() = default;
  virtual ObjectStore& store() = 0;
  // Unmounts cleanly (the destructor does the same, losing errors).
  virtual Status Close() = 0;
};

// A volatile store (contents vanish with the process).
Result<std::unique_ptr<LocalStore>> OpenMemoryStore(StoreOptions options = {});
// Opens the sealed volume `volume_spec` with `key_spec`, mounts its littlefs (formatting it when
// it holds no filesystem yet) and opens the store on it. kUnsupported when this build lacks the
// volume or fs module.
Result<std::unique_ptr<LocalStore>> OpenSealedStore(const std::string& volume_spec, const std::string& key_spec,
                                                    StoreOptions options = {});

}  // namespace coffer::objects
