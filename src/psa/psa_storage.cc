// PSA Protected Storage and Internal Trusted Storage over coffer's object store.
// Each PSA entry is one object: id "ps:" or "its" + the 8-byte big-endian uid; data = a 16-byte
// header (u32 version = 1, u32 reserved = 0, u64 data size) + data, zero-filled to the capacity.
// Whole-entry updates go through a staged create with OVERWRITE, so they are atomic.
#include "coffer/psa/psa_store.h"

#include <cstdlib>
#include <functional>
#include <cstring>
#include <iostream>
#include <mutex>

#include "coffer/base/bytes.h"
#include "psa/internal_trusted_storage.h"
#include "psa/protected_storage.h"

namespace coffer::psa {
namespace {

using objects::CreateAttrs;
using objects::ObjectConnection;

constexpr size_t kHeader = 16;
constexpr uint32_t kHeaderVersion = 1;
constexpr uint32_t kSupportedFlags =
    PSA_STORAGE_FLAG_WRITE_ONCE | PSA_STORAGE_FLAG_NO_CONFIDENTIALITY | PSA_STORAGE_FLAG_NO_REPLAY_PROTECTION;
// Entries are limited to what one object can hold.
constexpr uint64_t kMaxEntry = (uint64_t{1} << 31) - 8192;

std::mutex g_mu;
std::unique_ptr<PsaBinding> g_binding;   // process default, from the environment
PsaBinding* g_override = nullptr;        // set by tests

std::string IdFor(Api api, psa_storage_uid_t uid) {
  std::string id = api == Api::kIts ? "its" : "ps:";
  uint8_t be[8];
  PutBe64(be, uid);
  id.append(reinterpret_cast<const char*>(be), 8);
  return id;
}

psa_status_t ToPsa(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk: return PSA_SUCCESS;
    case StatusCode::kNotFound: return PSA_ERROR_DOES_NOT_EXIST;
    case StatusCode::kAlreadyExists: return PSA_ERROR_ALREADY_EXISTS;
    case StatusCode::kNoSpace: return PSA_ERROR_INSUFFICIENT_STORAGE;
    case StatusCode::kPermissionDenied: return PSA_ERROR_NOT_PERMITTED;
    case StatusCode::kInvalidArgument: return PSA_ERROR_INVALID_ARGUMENT;
    case StatusCode::kDataLoss: return PSA_ERROR_INVALID_SIGNATURE;
    case StatusCode::kCorrupt: return PSA_ERROR_DATA_CORRUPT;
    case StatusCode::kUnavailable: return PSA_ERROR_COMMUNICATION_FAILURE;
    case StatusCode::kUnsupported: return PSA_ERROR_NOT_SUPPORTED;
    case StatusCode::kFailedPrecondition: return PSA_ERROR_STORAGE_FAILURE;  // busy elsewhere
    default: return PSA_ERROR_STORAGE_FAILURE;
  }
}

struct Entry {
  uint32_t flags = 0;
  uint64_t capacity = 0;
  uint64_t size = 0;
};

Bytes Header(uint64_t size) {
  Bytes h(kHeader, 0);
  PutLe32(h.data(), kHeaderVersion);
  PutLe64(h.data() + 8, size);
  return h;
}

}  // namespace


PsaBinding::~PsaBinding() { conn_.reset(); }

// Reads an entry's metadata (and, with data, its bytes). Holds no handle afterwards.
static Result<Entry> Load(ObjectConnection& c, const std::string& id, Bytes* data, uint64_t offset = 0,
                          uint64_t length = 0) {
  COFFER_ASSIGN_OR_RETURN(uint32_t h, c.Open("", id, objects::kAccessRead | objects::kShareRead));
  auto body = [&]() -> Result<Entry> {
    COFFER_ASSIGN_OR_RETURN(auto info, c.Info(h));
    uint8_t head[kHeader];
    COFFER_ASSIGN_OR_RETURN(size_t n, c.Read(h, head));
    if (n != kHeader || GetLe32(head) != kHeaderVersion) return Corrupt("PSA entry header is damaged");
    Entry e;
    e.flags = info.meta.user_flags;
    e.capacity = info.meta.user_capacity;
    e.size = GetLe64(head + 8);
    if (e.size > e.capacity || kHeader + e.capacity != info.meta.size) return Corrupt("PSA entry sizes disagree");
    if (data) {
      if (offset > e.size) return e;
      uint64_t len = std::min(length, e.size - offset);
      data->resize(len);
      COFFER_RETURN_IF_ERROR(c.Seek(h, int64_t(kHeader + offset), objects::Whence::kSet).status());
      COFFER_ASSIGN_OR_RETURN(size_t got, c.Read(h, *data));
      if (got != len) return Corrupt("PSA entry is shorter than its header says");
    }
    return e;
  };
  auto r = body();
  Status closed = c.Close(h);
  if (r.ok() && !closed.ok()) return closed;
  return r;
}

// Writes a whole entry atomically: header + data + zero fill to the capacity.
static Status Store(ObjectConnection& c, const std::string& id, uint32_t flags, uint64_t capacity,
                    ByteSpan data, bool must_not_exist) {
  uint32_t access = objects::kAccessRead | objects::kAccessWrite | objects::kAccessWriteMeta |
                    (must_not_exist ? 0u : uint32_t{objects::kOverwrite});
  CreateAttrs attrs;
  attrs.object_flags = (flags & PSA_STORAGE_FLAG_WRITE_ONCE) ? uint32_t{objects::kObjectImmutable} : 0u;
  attrs.user_flags = flags;
  attrs.user_capacity = capacity;
  Bytes first = Header(data.size());
  size_t inline_part = std::min<size_t>(data.size(), objects::kMaxChunk - kHeader);
  Append(first, data.first(inline_part));
  COFFER_ASSIGN_OR_RETURN(uint32_t h, c.Create("", id, access, attrs, first));
  Status st;
  // GP semantics: a new handle's position is 0 even after initial data.
  if (inline_part < data.size()) {
    st = c.Seek(h, 0, objects::Whence::kEnd).status();
    if (st.ok()) st = c.Write(h, data.subspan(inline_part));
  }
  if (st.ok() && capacity > data.size()) st = c.Truncate(h, kHeader + capacity);
  if (!st.ok()) {
    (void)c.CloseAndDelete(h);  // discards the staged object; the old one stays
    return st;
  }
  return c.Close(h);
}

static psa_status_t WithConnection(const std::function<psa_status_t(ObjectConnection&, uint64_t)>& fn) {
  std::lock_guard lock(g_mu);
  PsaBinding* b = g_override;
  if (!b) {
    if (!g_binding) {
      auto bound = BindFromEnvironment();
      if (!bound.ok()) {
        std::cerr << "coffer psa: " << bound.status().message() << "\n";
        return PSA_ERROR_STORAGE_FAILURE;
      }
      g_binding = std::move(bound).value();
    }
    b = g_binding.get();
  }
  return fn(b->connection(), b->capacity_limit());
}

void SetBindingForTesting(PsaBinding* binding) {
  std::lock_guard lock(g_mu);
  g_override = binding;
}

void ResetBinding() {
  std::lock_guard lock(g_mu);
  g_binding.reset();
}

psa_status_t Set(Api api, psa_storage_uid_t uid, size_t length, const void* data, psa_storage_create_flags_t flags) {
  if (uid == 0) return PSA_ERROR_INVALID_ARGUMENT;
  if (flags & ~kSupportedFlags) return PSA_ERROR_NOT_SUPPORTED;
  if (length > 0 && data == nullptr) return PSA_ERROR_INVALID_ARGUMENT;
  if (length > kMaxEntry) return PSA_ERROR_INSUFFICIENT_STORAGE;
  return WithConnection([&](ObjectConnection& c, uint64_t limit) -> psa_status_t {
    std::string id = IdFor(api, uid);
    auto old = Load(c, id, nullptr);
    if (old.ok() && (old->flags & PSA_STORAGE_FLAG_WRITE_ONCE)) return PSA_ERROR_NOT_PERMITTED;
    if (!old.ok() && old.status().code() != StatusCode::kNotFound) return ToPsa(old.status());
    if (limit) {
      auto usage = c.GetUsage("");
      if (!usage.ok()) return ToPsa(usage.status());
      uint64_t replaced = old.ok() ? kHeader + old->capacity : 0;
      if (usage->used - std::min(usage->used, replaced) + kHeader + length > limit) {
        return PSA_ERROR_INSUFFICIENT_STORAGE;
      }
    }
    return ToPsa(Store(c, id, flags, length, ByteSpan(static_cast<const uint8_t*>(data), length), false));
  });
}

psa_status_t Get(Api api, psa_storage_uid_t uid, size_t offset, size_t size, void* out, size_t* out_length) {
  if (out_length) *out_length = 0;
  if (uid == 0) return PSA_ERROR_INVALID_ARGUMENT;
  if (out_length == nullptr || (size > 0 && out == nullptr)) return PSA_ERROR_INVALID_ARGUMENT;
  return WithConnection([&](ObjectConnection& c, uint64_t) -> psa_status_t {
    Bytes data;
    auto e = Load(c, IdFor(api, uid), &data, offset, size);
    if (!e.ok()) return ToPsa(e.status());
    if (offset > e->size) return PSA_ERROR_INVALID_ARGUMENT;
    if (!data.empty()) std::memcpy(out, data.data(), data.size());
    *out_length = data.size();
    return PSA_SUCCESS;
  });
}

psa_status_t GetInfo(Api api, psa_storage_uid_t uid, psa_storage_info_t* info) {
  if (uid == 0 || info == nullptr) return PSA_ERROR_INVALID_ARGUMENT;
  return WithConnection([&](ObjectConnection& c, uint64_t) -> psa_status_t {
    auto e = Load(c, IdFor(api, uid), nullptr);
    if (!e.ok()) return ToPsa(e.status());
    info->capacity = size_t(e->capacity);
    info->size = size_t(e->size);
    info->flags = e->flags;
    return PSA_SUCCESS;
  });
}

psa_status_t Remove(Api api, psa_storage_uid_t uid) {
  if (uid == 0) return PSA_ERROR_INVALID_ARGUMENT;
  return WithConnection([&](ObjectConnection& c, uint64_t) -> psa_status_t {
    std::string id = IdFor(api, uid);
    auto e = Load(c, id, nullptr);
    if (!e.ok()) return ToPsa(e.status());
    if (e->flags & PSA_STORAGE_FLAG_WRITE_ONCE) return PSA_ERROR_NOT_PERMITTED;
    auto h = c.Open("", id, objects::kAccessWriteMeta);
    if (!h.ok()) return ToPsa(h.status());
    return ToPsa(c.CloseAndDelete(*h));
  });
}

psa_status_t Create(psa_storage_uid_t uid, size_t capacity, psa_storage_create_flags_t flags) {
  if (uid == 0) return PSA_ERROR_INVALID_ARGUMENT;
  if (flags & ~kSupportedFlags) return PSA_ERROR_NOT_SUPPORTED;
  // A write-once entry with no data could never be filled.
  if (flags & PSA_STORAGE_FLAG_WRITE_ONCE) return PSA_ERROR_NOT_SUPPORTED;
  if (capacity > kMaxEntry) return PSA_ERROR_INSUFFICIENT_STORAGE;
  return WithConnection([&](ObjectConnection& c, uint64_t limit) -> psa_status_t {
    std::string id = IdFor(Api::kPs, uid);
    auto old = Load(c, id, nullptr);
    if (old.ok()) {
      // Creating what exists: success only for an identical request (PSA 1.0).
      if (old->capacity == capacity && old->flags == flags) return PSA_SUCCESS;
      return PSA_ERROR_ALREADY_EXISTS;
    }
    if (old.status().code() != StatusCode::kNotFound) return ToPsa(old.status());
    if (limit) {
      auto usage = c.GetUsage("");
      if (!usage.ok()) return ToPsa(usage.status());
      if (usage->used + kHeader + capacity > limit) return PSA_ERROR_INSUFFICIENT_STORAGE;
    }
    return ToPsa(Store(c, id, flags, capacity, {}, true));
  });
}

psa_status_t SetExtended(psa_storage_uid_t uid, size_t offset, size_t length, const void* data) {
  if (uid == 0) return PSA_ERROR_INVALID_ARGUMENT;
  if (length > 0 && data == nullptr) return PSA_ERROR_INVALID_ARGUMENT;
  return WithConnection([&](ObjectConnection& c, uint64_t) -> psa_status_t {
    std::string id = IdFor(Api::kPs, uid);
    Bytes all;
    auto e = Load(c, id, &all, 0, UINT64_MAX);
    if (!e.ok()) return ToPsa(e.status());
    if (e->flags & PSA_STORAGE_FLAG_WRITE_ONCE) return PSA_ERROR_NOT_PERMITTED;
    if (offset > e->size || length > e->capacity || offset > e->capacity - length) {
      return PSA_ERROR_INVALID_ARGUMENT;
    }
    if (all.size() < offset + length) all.resize(offset + length);
    if (length) std::memcpy(all.data() + offset, data, length);
    return ToPsa(Store(c, id, e->flags, e->capacity, all, false));
  });
}

}  // namespace coffer::psa

extern "C" {

psa_status_t psa_its_set(psa_storage_uid_t uid, size_t data_length, const void* p_data,
                         psa_storage_create_flags_t create_flags) {
  // ITS has no NO_CONFIDENTIALITY-style relaxations beyond the common flags; all are accepted.
  return coffer::psa::Set(coffer::psa::Api::kIts, uid, data_length, p_data, create_flags);
}
psa_status_t psa_its_get(psa_storage_uid_t uid, size_t data_offset, size_t data_size, void* p_data,
                         size_t* p_data_length) {
  return coffer::psa::Get(coffer::psa::Api::kIts, uid, data_offset, data_size, p_data, p_data_length);
}
psa_status_t psa_its_get_info(psa_storage_uid_t uid, struct psa_storage_info_t* p_info) {
  return coffer::psa::GetInfo(coffer::psa::Api::kIts, uid, p_info);
}
psa_status_t psa_its_remove(psa_storage_uid_t uid) { return coffer::psa::Remove(coffer::psa::Api::kIts, uid); }

psa_status_t psa_ps_set(psa_storage_uid_t uid, size_t data_length, const void* p_data,
                        psa_storage_create_flags_t create_flags) {
  return coffer::psa::Set(coffer::psa::Api::kPs, uid, data_length, p_data, create_flags);
}
psa_status_t psa_ps_get(psa_storage_uid_t uid, size_t data_offset, size_t data_size, void* p_data,
                        size_t* p_data_length) {
  return coffer::psa::Get(coffer::psa::Api::kPs, uid, data_offset, data_size, p_data, p_data_length);
}
psa_status_t psa_ps_get_info(psa_storage_uid_t uid, struct psa_storage_info_t* p_info) {
  return coffer::psa::GetInfo(coffer::psa::Api::kPs, uid, p_info);
}
psa_status_t psa_ps_remove(psa_storage_uid_t uid) { return coffer::psa::Remove(coffer::psa::Api::kPs, uid); }
psa_status_t psa_ps_create(psa_storage_uid_t uid, size_t capacity, psa_storage_create_flags_t create_flags) {
  return coffer::psa::Create(uid, capacity, create_flags);
}
psa_status_t psa_ps_set_extended(psa_storage_uid_t uid, size_t data_offset, size_t data_length,
                                 const void* p_data) {
  return coffer::psa::SetExtended(uid, data_offset, data_length, p_data);
}
uint32_t psa_ps_get_support(void) { return PSA_STORAGE_SUPPORT_SET_EXTENDED; }

}  // extern "C"
