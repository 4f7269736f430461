// The object store's semantics: GlobalPlatform-style persistent objects (ids of 1..64 raw bytes,
// access and share flags, atomic overwrite, rename, close-and-delete, enumerate) in per-identity
// namespaces, over a pluggable ObjectBackend. ObjectStore owns its backend; Sessions borrow the
// store (it must outlive them). Thread-safe: every operation takes the store's one mutex.
// Errors: kInvalidArgument (bad id, flags, handle), kNotFound, kAlreadyExists (id exists, create
// without OVERWRITE: GP ACCESS_CONFLICT), kFailedPrecondition (share-flag conflict: GP
// ACCESS_CONFLICT), kPermissionDenied (handle lacks the access, immutable object, share refused),
// kNoSpace (quota or volume full), kDataLoss/kCorrupt passed through from the backend.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"

namespace coffer::objects {

inline constexpr size_t kMaxIdSize = 64;

// GlobalPlatform TEE_DATA_FLAG_* values, so a GP port maps one to one.
enum AccessFlags : uint32_t {
  kAccessRead = 0x001,
  kAccessWrite = 0x002,
  kAccessWriteMeta = 0x004,
  kShareRead = 0x010,
  kShareWrite = 0x020,
  kOverwrite = 0x400,
};
inline constexpr uint32_t kAllAccessFlags =
    kAccessRead | kAccessWrite | kAccessWriteMeta | kShareRead | kShareWrite | kOverwrite;

// Per-object flags kept by the store itself.
enum ObjectFlags : uint32_t {
  kObjectImmutable = 0x1,  // no write, truncate, rename, delete or overwrite ever (PSA WRITE_ONCE)
};

// What is stored beside an object's bytes.
struct ObjectMeta {
  uint64_t size = 0;
  uint32_t object_flags = 0;   // ObjectFlags
  uint32_t user_flags = 0;     // opaque to the store (the PSA layer keeps its create flags here)
  uint64_t user_capacity = 0;  // opaque to the store (PSA psa_ps_create's capacity)
  uint32_t owner_uid = 0;      // the identity that created it
};

// Checks an id: 1..64 raw bytes (any values, including NUL, '/', "..").
Status ValidateId(ByteSpan id);
inline Status ValidateId(const std::string& id) { return ValidateId(AsBytes(id)); }

// Storage of named byte objects grouped in namespaces. Names (ns, id) are raw bytes; ns is chosen
// by the store ("u<uid>", "s<share>", "t" for staging) and id is already validated (or, in "t", a
// store-chosen token). Callers serialise access (the store holds its mutex around every call).
class ObjectBackend {
 public:
  virtual ~ObjectBackend() = default;
  virtual Result<ObjectMeta> Stat(const std::string& ns, const std::string& id) = 0;  // kNotFound
  // Makes an empty object with the given meta (size ignored); kAlreadyExists if present.
  virtual Status Create(const std::string& ns, const std::string& id, const ObjectMeta& meta) = 0;
  virtual Result<size_t> Read(const std::string& ns, const std::string& id, uint64_t offset,
                              MutableByteSpan out) = 0;  // short at end of object
  // Writes at offset; a gap past the end reads as zeros.
  virtual Status Write(const std::string& ns, const std::string& id, uint64_t offset, ByteSpan data) = 0;
  virtual Status Truncate(const std::string& ns, const std::string& id, uint64_t size) = 0;
  virtual Status Remove(const std::string& ns, const std::string& id) = 0;
  // Atomic: after a crash the target holds the old object or the new one, never a mix. With
  // replace=false an existing target gives kAlreadyExists.
  virtual Status Rename(const std::string& from_ns, const std::string& from_id, const std::string& to_ns,
                        const std::string& to_id, bool replace) = 0;
  virtual Status Flush(const std::string& ns, const std::string& id) = 0;  // durable
  virtual Result<std::vector<std::string>> List(const std::string& ns) = 0;  // ids, any order
  // Removes everything in ns (used for the staging namespace at start-up).
  virtual Status Clear(const std::string& ns) = 0;
};

std::unique_ptr<ObjectBackend> NewMemoryBackend();

struct StoreOptions {
  uint64_t quota_bytes = 0;  // per namespace; 0 = limited only by the volume
  // Shared namespaces: name -> uids allowed to use it. Names are 1..32 of [A-Za-z0-9._-].
  std::map<std::string, std::set<uint32_t>> shares;
};

// Parses a share configuration (JSON: {"shares": {"NAME": [uid, ...], ...}}).
Result<std::map<std::string, std::set<uint32_t>>> ParseShareConfig(std::string_view json);

enum class Whence : uint8_t { kSet = 0, kCur = 1, kEnd = 2 };

struct CreateAttrs {
  uint32_t object_flags = 0;
  uint32_t user_flags = 0;
  uint64_t user_capacity = 0;
};

struct HandleInfo {
  ObjectMeta meta;
  uint64_t position = 0;
  uint32_t access = 0;  // the flags the handle was opened with
  std::string id;
};

struct EnumPage {
  std::vector<std::string> ids;  // sorted (bytewise), all > the cursor
  bool more = false;
};

class ObjectStore;

// One client's view: its identity, its open handles. Destroying it closes every handle (and
// discards objects created but never closed).
class Session {
 public:
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  uint32_t uid() const { return uid_; }

  // Creates id in namespace `share` ("" = the caller's private one). The object becomes visible
  // when the handle is closed (Close); until then other opens of id conflict. With kOverwrite an
  // existing object is replaced atomically at Close; without it an existing id is kAlreadyExists.
  Result<uint32_t> Create(const std::string& share, const std::string& id, uint32_t flags,
                          const CreateAttrs& attrs, ByteSpan initial_data = {});
  Result<uint32_t> Open(const std::string& share, const std::string& id, uint32_t flags);
  Result<size_t> Read(uint32_t handle, MutableByteSpan out);
  Status Write(uint32_t handle, ByteSpan data);
  Result<uint64_t> Seek(uint32_t handle, int64_t offset, Whence whence);
  Status Truncate(uint32_t handle, uint64_t size);
  Status Rename(uint32_t handle, const std::string& new_id);  // kAlreadyExists if new_id exists
  Status Close(uint32_t handle);
  Status CloseAndDelete(uint32_t handle);
  Result<HandleInfo> Info(uint32_t handle);
  // Ids after `after` (bytewise order), at most max_ids (and max_bytes of ids).
  Result<EnumPage> Enumerate(const std::string& share, const std::string& after, size_t max_ids,
                             size_t max_bytes = SIZE_MAX);
  size_t open_handles() const;
  Result<uint64_t> Usage(const std::string& share);  // bytes in the namespace

 private:
  friend class ObjectStore;
  Session(ObjectStore* store, uint32_t uid) : store_(store), uid_(uid) {}
  ObjectStore* store_;
  uint32_t uid_;
  std::set<uint32_t> handles_;
};

class ObjectStore {
 public:
  // Clears leftovers of interrupted creates from the backend.
  static Result<std::unique_ptr<ObjectStore>> Open(std::unique_ptr<ObjectBackend> backend,
                                                   StoreOptions options = {});
  ~ObjectStore();
  std::unique_ptr<Session> NewSession(uint32_t uid);
  // Bytes used in the namespace of `uid` (or the share).
  Result<uint64_t> Usage(uint32_t uid, const std::string& share = "");

 private:
  friend class Session;
  struct Handle;
  ObjectStore(std::unique_ptr<ObjectBackend> backend, StoreOptions options);

  Result<std::string> NamespaceFor(uint32_t uid, const std::string& share);
  Status CheckConflict(const std::string& key, uint32_t flags, bool creating);
  Result<uint64_t> UsageLocked(const std::string& ns);
  Status Charge(const std::string& ns, uint64_t old_size, uint64_t new_size, uint64_t credit = 0);
  Result<Handle*> Get(Session* s, uint32_t handle);
  Status CloseLocked(Session* s, uint32_t handle, bool remove);
  void Release(uint32_t handle);

  std::mutex mu_;
  std::unique_ptr<ObjectBackend> backend_;
  StoreOptions options_;
  std::map<uint32_t, std::unique_ptr<Handle>> handles_;
  std::multimap<std::string, uint32_t> open_by_key_;  // ns + '\0' + id -> handles
  std::map<std::string, uint64_t> usage_;             // ns -> bytes (committed + staged)
  uint32_t next_handle_ = 1;
  uint64_t next_temp_ = 1;
};

}  // namespace coffer::objects
