// ObjectStore semantics: namespaces, handles, share-flag conflicts, staged creates, quota.
#include "coffer/objects/store.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

namespace coffer::objects {
namespace {

constexpr char kStagingNs[] = "t";
// littlefs files are 32-bit; keep every object addressable there.
constexpr uint64_t kMaxObjectSize = (uint64_t{1} << 31) - 4096;

std::string Key(const std::string& ns, const std::string& id) { return ns + '\0' + id; }

bool ValidShareName(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) return false;
  }
  return name != "." && name != "..";
}

}  // namespace

Status ValidateId(ByteSpan id) {
  if (id.empty()) return InvalidArgument("object id is empty (ids are 1 to 64 bytes)");
  if (id.size() > kMaxIdSize) {
    return InvalidArgument("object id is " + std::to_string(id.size()) +
                           " bytes long (ids are 1 to 64 bytes)");
  }
  return Status::Ok();
}

Result<std::map<std::string, std::set<uint32_t>>> ParseShareConfig(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument("share config is not a JSON object");
  std::map<std::string, std::set<uint32_t>> out;
  if (!j.contains("shares")) return out;
  const auto& shares = j["shares"];
  if (!shares.is_object()) return InvalidArgument("share config: \"shares\" must be an object");
  for (const auto& [name, uids] : shares.items()) {
    if (!ValidShareName(name)) {
      return InvalidArgument("share config: bad share name '" + name + "' (1-32 of A-Z a-z 0-9 . _ -)");
    }
    if (!uids.is_array()) return InvalidArgument("share config: share '" + name + "' must list uids");
    for (const auto& u : uids) {
      if (!u.is_number_unsigned() || u.get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
        return InvalidArgument("share config: share '" + name + "' has a uid that is not a number");
      }
      out[name].insert(u.get<uint32_t>());
    }
  }
  return out;
}

struct ObjectStore::Handle {
  uint32_t session_uid = 0;
  Session* session = nullptr;
  std::string ns;        // namespace of the (target) object
  std::string id;        // target id
  std::string data_ns;   // where the bytes live now (ns, or staging)
  std::string data_id;
  uint32_t access = 0;
  uint64_t position = 0;
  ObjectMeta meta;
  bool staged = false;   // a create not yet committed
  bool replace = false;  // staged with OVERWRITE
  uint64_t quota_credit = 0;  // size of the object a staged overwrite replaces
};

ObjectStore::ObjectStore(std::unique_ptr<ObjectBackend> backend, StoreOptions options)
    : backend_(std::move(backend)), options_(std::move(options)) {}

ObjectStore::~ObjectStore() = default;

Result<std::unique_ptr<ObjectStore>> ObjectStore::Open(std::unique_ptr<ObjectBackend> backend,
                                                       StoreOptions options) {
  COFFER_RETURN_IF_ERROR(backend->Clear(kStagingNs).WithContext("clearing interrupted creates"));
  for (const auto& [name, uids] : options.shares) {
    if (!ValidShareName(name)) return InvalidArgument("bad share name '" + name + "'");
  }
  return std::unique_ptr<ObjectStore>(new ObjectStore(std::move(backend), std::move(options)));
}

std::unique_ptr<Session> ObjectStore::NewSession(uint32_t uid) {
  return std::unique_ptr<Session>(new Session(this, uid));
}

Result<std::string> ObjectStore::NamespaceFor(uint32_t uid, const std::string& share) {
  if (share.empty()) return "u" + std::to_string(uid);
  auto it = options_.shares.find(share);
  // Unknown and forbidden shares answer alike, so a client cannot probe which shares exist.
  if (it == options_.shares.end() || !it->second.count(uid)) {
    return PermissionDenied("shared namespace '" + share + "' is not configured for this user");
  }
  return "s" + share;
}

Result<uint64_t> ObjectStore::UsageLocked(const std::string& ns) {
  auto it = usage_.find(ns);
  if (it != usage_.end()) return it->second;
  COFFER_ASSIGN_OR_RETURN(auto ids, backend_->List(ns));
  uint64_t total = 0;
  for (const auto& id : ids) {
    COFFER_ASSIGN_OR_RETURN(auto meta, backend_->Stat(ns, id));
    total += meta.size;
  }
  usage_[ns] = total;
  return total;
}

Result<uint64_t> ObjectStore::Usage(uint32_t uid, const std::string& share) {
  std::lock_guard lock(mu_);
  COFFER_ASSIGN_OR_RETURN(auto ns, NamespaceFor(uid, share));
  return UsageLocked(ns);
}

Status ObjectStore::Charge(const std::string& ns, uint64_t old_size, uint64_t new_size, uint64_t credit) {
  COFFER_ASSIGN_OR_RETURN(uint64_t used, UsageLocked(ns));
  // credit: a staged overwrite may use the space of the object it replaces (freed at commit).
  if (new_size > old_size && options_.quota_bytes != 0 &&
      used + (new_size - old_size) > options_.quota_bytes + credit) {
    return NoSpace("quota of " + std::to_string(options_.quota_bytes) + " bytes exceeded (" +
                   std::to_string(used) + " in use)");
  }
  usage_[ns] = used + new_size - old_size;
  return Status::Ok();
}

// GP rules: two handles on one object coexist only if each allows the other's access; WRITE_META
// and staged creates are exclusive.
Status ObjectStore::CheckConflict(const std::string& key, uint32_t flags, bool creating) {
  auto [lo, hi] = open_by_key_.equal_range(key);
  for (auto it = lo; it != hi; ++it) {
    const Handle& other = *handles_.at(it->second);
    bool conflict = creating || other.staged || (flags & kAccessWriteMeta) ||
                    (other.access & kAccessWriteMeta) ||
                    ((flags & kAccessRead) && !(other.access & kShareRead)) ||
                    ((flags & kAccessWrite) && !(other.access & kShareWrite)) ||
                    ((other.access & kAccessRead) && !(flags & kShareRead)) ||
                    ((other.access & kAccessWrite) && !(flags & kShareWrite));
    if (conflict) return FailedPrecondition("access conflict: the object is open elsewhere");
  }
  return Status::Ok();
}

Result<ObjectStore::Handle*> ObjectStore::Get(Session* s, uint32_t handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end() || it->second->session != s) {
    return InvalidArgument("unknown object handle " + std::to_string(handle));
  }
  return it->second.get();
}

void ObjectStore::Release(uint32_t handle) {
  auto it = handles_.find(handle);
  if (it == handles_.end()) return;
  const std::string key = Key(it->second->ns, it->second->id);
  auto [lo, hi] = open_by_key_.equal_range(key);
  for (auto k = lo; k != hi; ++k) {
    if (k->second == handle) {
      open_by_key_.erase(k);
      break;
    }
  }
  it->second->session->handles_.erase(handle);
  handles_.erase(it);
}

Status ObjectStore::CloseLocked(Session* s, uint32_t handle, bool remove) {
  COFFER_ASSIGN_OR_RETURN(Handle * h, Get(s, handle));
  Status st;
  if (remove) {
    if (!(h->access & kAccessWriteMeta)) {
      st = PermissionDenied("close-and-delete needs a handle opened with WRITE_META");
      return st;
    }
    if (h->meta.object_flags & kObjectImmutable) return PermissionDenied("the object is write-once");
    st = backend_->Remove(h->data_ns, h->data_id);
    if (st.ok()) usage_[h->ns] -= std::min(usage_[h->ns], h->meta.size);
    Release(handle);
    return st;
  }
  if (h->staged) {
    st = backend_->Flush(h->data_ns, h->data_id);
    uint64_t old_size = 0;
    if (st.ok() && h->replace) {
      auto old = backend_->Stat(h->ns, h->id);
      if (old.ok()) {
        if (old->object_flags & kObjectImmutable) st = PermissionDenied("the object is write-once");
        old_size = old->size;
      } else if (old.status().code() != StatusCode::kNotFound) {
        st = old.status();
      }
    }
    if (st.ok()) st = backend_->Rename(h->data_ns, h->data_id, h->ns, h->id, h->replace);
    if (st.ok()) {
      usage_[h->ns] -= std::min(usage_[h->ns], old_size);
    } else {
      (void)backend_->Remove(h->data_ns, h->data_id);  // the create failed: leave nothing behind
      usage_[h->ns] -= std::min(usage_[h->ns], h->meta.size);
    }
  } else if (h->access & (kAccessWrite | kAccessWriteMeta)) {
    st = backend_->Flush(h->data_ns, h->data_id);
  }
  Release(handle);
  return st;
}

Session::~Session() {
  std::lock_guard lock(store_->mu_);
  // Abandoned creates are discarded rather than committed: a client that died mid-write must not
  // publish a half-written object.
  for (uint32_t handle : std::set<uint32_t>(handles_)) {
    auto* h = store_->handles_.at(handle).get();
    if (h->staged) {
      (void)store_->backend_->Remove(h->data_ns, h->data_id);
      store_->usage_[h->ns] -= std::min(store_->usage_[h->ns], h->meta.size);
      store_->Release(handle);
    } else {
      (void)store_->CloseLocked(this, handle, false);
    }
  }
}

size_t Session::open_handles() const {
  std::lock_guard lock(store_->mu_);
  return handles_.size();
}

Result<uint64_t> Session::Usage(const std::string& share) { return store_->Usage(uid_, share); }

Result<uint32_t> Session::Create(const std::string& share, const std::string& id, uint32_t flags,
                                 const CreateAttrs& attrs, ByteSpan initial_data) {
  COFFER_RETURN_IF_ERROR(ValidateId(id));
  if (flags & ~kAllAccessFlags) return InvalidArgument("unknown access flags");
  if (attrs.object_flags & ~uint32_t{kObjectImmutable}) return InvalidArgument("unknown object flags");
  std::lock_guard lock(store_->mu_);
  auto& st = *store_;
  COFFER_ASSIGN_OR_RETURN(std::string ns, st.NamespaceFor(uid_, share));
  COFFER_RETURN_IF_ERROR(st.CheckConflict(Key(ns, id), flags, true));
  auto existing = st.backend_->Stat(ns, id);
  if (existing.ok()) {
    if (!(flags & kOverwrite)) {
      return AlreadyExists("access conflict: an object with this id exists (create without OVERWRITE)");
    }
    if (existing->object_flags & kObjectImmutable) return PermissionDenied("the object is write-once");
  } else if (existing.status().code() != StatusCode::kNotFound) {
    return existing.status();
  }
  auto h = std::make_unique<ObjectStore::Handle>();
  h->session = this;
  h->session_uid = uid_;
  h->ns = ns;
  h->id = id;
  h->data_ns = kStagingNs;
  h->data_id = std::to_string(st.next_temp_++);
  // The creating handle always gets full access to its new object (GP: the returned handle has
  // the requested flags plus WRITE_META to complete the create); record what was asked.
  h->access = flags | kAccessWriteMeta;
  h->meta.object_flags = 0;
  h->meta.user_flags = attrs.user_flags;
  h->meta.user_capacity = attrs.user_capacity;
  h->meta.owner_uid = uid_;
  h->staged = true;
  h->replace = existing.ok();
  h->quota_credit = existing.ok() ? existing->size : 0;
  ObjectMeta stored = h->meta;
  stored.object_flags = attrs.object_flags;
  (void)st.backend_->Remove(h->data_ns, h->data_id);
  COFFER_RETURN_IF_ERROR(st.backend_->Create(h->data_ns, h->data_id, stored));
  if (!initial_data.empty()) {
    Status s = st.Charge(ns, 0, initial_data.size(), h->quota_credit);
    if (!s.ok()) {
      (void)st.backend_->Remove(h->data_ns, h->data_id);
      return s;
    }
    s = st.backend_->Write(h->data_ns, h->data_id, 0, initial_data);
    if (!s.ok()) {
      (void)st.backend_->Remove(h->data_ns, h->data_id);
      st.usage_[ns] -= std::min(st.usage_[ns], uint64_t(initial_data.size()));
      return s;
    }
    h->meta.size = initial_data.size();
  }
  // Write-once objects are written through this handle; immutability applies once committed.
  h->meta.object_flags = 0;
  uint32_t handle = st.next_handle_++;
  st.open_by_key_.emplace(Key(ns, id), handle);
  st.handles_[handle] = std::move(h);
  handles_.insert(handle);
  return handle;
}

Result<uint32_t> Session::Open(const std::string& share, const std::string& id, uint32_t flags) {
  COFFER_RETURN_IF_ERROR(ValidateId(id));
  if (flags & ~(kAllAccessFlags & ~uint32_t{kOverwrite})) return InvalidArgument("unknown access flags for open");
  std::lock_guard lock(store_->mu_);
  auto& st = *store_;
  COFFER_ASSIGN_OR_RETURN(std::string ns, st.NamespaceFor(uid_, share));
  // Existence first: a conflicting open of a missing object is still "not found".
  auto meta = st.backend_->Stat(ns, id);
  if (!meta.ok()) {
    if (meta.status().code() == StatusCode::kNotFound) {
      return NotFound("no object with this id");
    }
    return meta.status();
  }
  if ((meta->object_flags & kObjectImmutable) && (flags & (kAccessWrite | kAccessWriteMeta))) {
    return PermissionDenied("the object is write-once: it cannot be opened for writing");
  }
  COFFER_RETURN_IF_ERROR(st.CheckConflict(Key(ns, id), flags, false));
  auto h = std::make_unique<ObjectStore::Handle>();
  h->session = this;
  h->session_uid = uid_;
  h->ns = h->data_ns = ns;
  h->id = h->data_id = id;
  h->access = flags;
  h->meta = *meta;
  uint32_t handle = st.next_handle_++;
  st.open_by_key_.emplace(Key(ns, id), handle);
  st.handles_[handle] = std::move(h);
  handles_.insert(handle);
  return handle;
}

Result<size_t> Session::Read(uint32_t handle, MutableByteSpan out) {
  std::lock_guard lock(store_->mu_);
  COFFER_ASSIGN_OR_RETURN(auto* h, store_->Get(this, handle));
  if (!(h->access & kAccessRead)) return PermissionDenied("the handle was not opened for READ");
  if (h->position >= h->meta.size || out.empty()) return size_t{0};
  size_t want = std::min<uint64_t>(out.size(), h->meta.size - h->position);
  COFFER_ASSIGN_OR_RETURN(size_t n, store_->backend_->Read(h->data_ns, h->data_id, h->position,
                                                           out.first(want)));
  h->position += n;
  return n;
}

Status Session::Write(uint32_t handle, ByteSpan data) {
  std::lock_guard lock(store_->mu_);
  COFFER_ASSIGN_OR_RETURN(auto* h, store_->Get(this, handle));
  if (!(h->access & kAccessWrite)) return PermissionDenied("the handle was not opened for WRITE");
  if (data.empty()) return Status::Ok();
  if (h->position + data.size() > kMaxObjectSize) return OutOfRange("object would exceed 2 GiB");
  uint64_t end = std::max<uint64_t>(h->meta.size, h->position + data.size());
  COFFER_RETURN_IF_ERROR(store_->Charge(h->ns, h->meta.size, end, h->quota_credit));
  Status s = store_->backend_->Write(h->data_ns, h->data_id, h->position, data);
  if (!s.ok()) {
    store_->usage_[h->ns] -= std::min(store_->usage_[h->ns], end - h->meta.size);
    // The backend may have written part of it: learn the real size.
    auto m = store_->backend_->Stat(h->data_ns, h->data_id);
    if (m.ok()) {
      store_->usage_[h->ns] += m->size - std::min(m->size, h->meta.size);
      h->meta.size = std::max(h->meta.size, m->size);
    }
    return s;
  }
  h->position += data.size();
  h->meta.size = end;
  return Status::Ok();
}

Result<uint64_t> Session::Seek(uint32_t handle, int64_t offset, Whence whence) {
  std::lock_guard lock(store_->mu_);
  COFFER_ASSIGN_OR_RETURN(auto* h, store_->Get(this, handle));
  int64_t base = 0;
  switch (whence) {
    case Whence::kSet: base = 0; break;
    case Whence::kCur: base = int64_t(h->position); break;
    case Whence::kEnd: base = int64_t(h->meta.size); break;
    default: return InvalidArgument("bad seek whence");
  }
  // GP: a resulting position below 0 clamps to 0; beyond the maximum is an overflow.
  if (offset < 0 && -(offset + 1) >= base) return uint64_t{h->position = 0};
  int64_t pos = base + offset;
  if (pos < 0) pos = 0;
  if (uint64_t(pos) > kMaxObjectSize) return OutOfRange("seek beyond the maximum object size");
  h->position = uint64_t(pos);
  return h->position;
}

Status Session::Truncate(uint32_t handle, uint64_t size) {
  std::lock_guard lock(store_->mu_);
  COFFER_ASSIGN_OR_RETURN(auto* h, store_->Get(this, handle));
  if (!(h->access & kAccessWrite)) return PermissionDenied("the handle was not opened for WRITE");
  if (size > kMaxObjectSize) return OutOfRange("object would exceed 2 GiB");
  COFFER_RETURN_IF_ERROR(store_->Charge(h->ns, h->meta.size, size, h->quota_credit));
  Status s = store_->backend_->Truncate(h->data_ns, h->data_id, size);
  if (!s.ok()) {
    store_->usage_.erase(h->ns);  // recompute from the backend next time
    return s;
  }
  h->meta.size = size;
  return Status::Ok();
}

Status Session::Rename(uint32_t handle, const std::string& new_id) {
  COFFER_RETURN_IF_ERROR(ValidateId(new_id));
  std::lock_guard lock(store_->mu_);
  auto& st = *store_;
  COFFER_ASSIGN_OR_RETURN(auto* h, st.Get(this, handle));
  if (!(h->access & kAccessWriteMeta)) return PermissionDenied("rename needs a handle opened with WRITE_META");
  if (new_id == h->id) return Status::Ok();
  const std::string new_key = Key(h->ns, new_id);
  if (st.open_by_key_.count(new_key)) return FailedPrecondition("access conflict: the new id is in use");
  auto existing = st.backend_->Stat(h->ns, new_id);
  if (existing.ok()) return AlreadyExists("access conflict: an object with the new id exists");
  if (existing.status().code() != StatusCode::kNotFound) return existing.status();
  if (!h->staged) {
    COFFER_RETURN_IF_ERROR(st.backend_->Flush(h->ns, h->id));
    COFFER_RETURN_IF_ERROR(st.backend_->Rename(h->ns, h->id, h->ns, new_id, false));
    h->data_id = new_id;
  } else {
    h->replace = false;  // the staged object now lands on a fresh id
    h->quota_credit = 0;
  }
  const std::string old_key = Key(h->ns, h->id);
  auto [lo, hi] = st.open_by_key_.equal_range(old_key);
  for (auto k = lo; k != hi; ++k) {
    if (k->second == handle) {
      st.open_by_key_.erase(k);
      break;
    }
  }
  h->id = new_id;
  st.open_by_key_.emplace(new_key, handle);
  return Status::Ok();
}

Status Session::Close(uint32_t handle) {
  std::lock_guard lock(store_->mu_);
  return store_->CloseLocked(this, handle, false);
}

Status Session::CloseAndDelete(uint32_t handle) {
  std::lock_guard lock(store_->mu_);
  return store_->CloseLocked(this, handle, true);
}

Result<HandleInfo> Session::Info(uint32_t handle) {
  std::lock_guard lock(store_->mu_);
  COFFER_ASSIGN_OR_RETURN(auto* h, store_->Get(this, handle));
  HandleInfo info;
  info.meta = h->meta;
  if (!h->staged) {
    // object_flags may only change through this store; read them back for completeness.
    auto m = store_->backend_->Stat(h->data_ns, h->data_id);
    if (m.ok()) info.meta.object_flags = m->object_flags;
  }
  info.position = h->position;
  info.access = h->access;
  info.id = h->id;
  return info;
}

Result<EnumPage> Session::Enumerate(const std::string& share, const std::string& after, size_t max_ids,
                                    size_t max_bytes) {
  std::lock_guard lock(store_->mu_);
  COFFER_ASSIGN_OR_RETURN(std::string ns, store_->NamespaceFor(uid_, share));
  COFFER_ASSIGN_OR_RETURN(auto ids, store_->backend_->List(ns));
  std::sort(ids.begin(), ids.end());
  EnumPage page;
  size_t bytes = 0;
  for (auto it = std::upper_bound(ids.begin(), ids.end(), after); it != ids.end(); ++it) {
    if (page.ids.size() >= max_ids || bytes + it->size() + 1 > max_bytes) {
      page.more = true;
      break;
    }
    bytes += it->size() + 1;
    page.ids.push_back(*it);
  }
  return page;
}

}  // namespace coffer::objects
