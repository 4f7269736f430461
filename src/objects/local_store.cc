// LocalStore implementations: memory, and (when the volume and fs modules are built) sealed volume.
#include "coffer/objects/local_store.h"

#include "coffer/objects/fs_backend.h"
#ifdef COFFER_OBJECTS_HAVE_SEALED
#include "coffer/volume/open_volume.h"
#endif

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

namespace {

// device -> littlefs -> store; torn down in reverse.
class DeviceLocalStore : public LocalStore {
 public:
  ~DeviceLocalStore() override { (void)Close(); }
  ObjectStore& store() override { return *store_; }
  Status Close() override {
    store_.reset();  // closes the backend's files
    Status st;
    if (fs_) st = fs_->Unmount();
    fs_.reset();
    if (device_) {
      Status synced = device_->Sync();
      if (st.ok()) st = synced;
    }
    device_.reset();
    return st;
  }
  std::unique_ptr<BlockDevice> device_;
  std::unique_ptr<fs::Filesystem> fs_;
  std::unique_ptr<ObjectStore> store_;
};

}  // namespace

Result<std::unique_ptr<LocalStore>> OpenStoreOnDevice(std::unique_ptr<BlockDevice> device, StoreOptions options) {
  auto local = std::make_unique<DeviceLocalStore>();
  local->device_ = std::move(device);
  COFFER_RETURN_IF_ERROR(FormatIfBlank(*local->device_));
  COFFER_ASSIGN_OR_RETURN(local->fs_, fs::Filesystem::Mount(*local->device_, {}));
  COFFER_ASSIGN_OR_RETURN(auto backend, NewFsBackend(*local->fs_));
  COFFER_ASSIGN_OR_RETURN(local->store_, ObjectStore::Open(std::move(backend), std::move(options)));
  return std::unique_ptr<LocalStore>(std::move(local));
}

#ifdef COFFER_OBJECTS_HAVE_SEALED
Result<std::unique_ptr<LocalStore>> OpenSealedStore(const std::string& volume_spec, const std::string& key_spec,
                                                    StoreOptions options) {
  COFFER_ASSIGN_OR_RETURN(auto device, OpenVolumeDevice(volume_spec, key_spec));
  auto store = OpenStoreOnDevice(std::move(device), std::move(options));
  if (!store.ok()) return store.status().WithContext("object store on " + volume_spec);
  return store;
}
#else
Result<std::unique_ptr<LocalStore>> OpenSealedStore(const std::string& volume_spec, const std::string&,
                                                    StoreOptions) {
  return Unsupported("this build of coffer has no sealed-volume or littlefs module, so '" + volume_spec +
                     "' cannot be opened");
}
#endif

}  // namespace coffer::objects
