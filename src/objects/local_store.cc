// LocalStore implementations: memory, and (when the volume and fs modules are built) sealed volume.
#include "coffer/objects/local_store.h"

namespace coffer::objects {
namespace {

class MemoryLocalStore : public LocalStore {
 public:
  explicit MemoryLocalStore(std::unique_ptr<ObjectStore> store) : store_(std::move(store)) {}
  ObjectStore& store() override { return *store_; }
  Status Close() override { return Status::Ok(); }

 private:
  std::unique_ptr<ObjectStore> store_;
};

}  // namespace

Result<std::unique_ptr<LocalStore>> OpenMemoryStore(StoreOptions options) {
  COFFER_ASSIGN_OR_RETURN(auto store, ObjectStore::Open(NewMemoryBackend(), std::move(options)));
  return std::unique_ptr<LocalStore>(new MemoryLocalStore(std::move(store)));
}

#ifndef COFFER_OBJECTS_HAVE_SEALED
Result<std::unique_ptr<LocalStore>> OpenSealedStore(const std::string& volume_spec, const std::string&,
                                                    StoreOptions) {
  return Unsupported("this build of coffer has no sealed-volume or littlefs module, so '" + volume_spec +
                     "' cannot be opened");
}
#endif

}  // namespace coffer::objects
