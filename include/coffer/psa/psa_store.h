// coffer's PSA Protected Storage / Internal Trusted Storage implementation (libcoffer_psa.a):
// the C API in include/psa/ forwards here. A PsaBinding is the object-store connection the C
// calls use; by default it is made from the environment on first use (BindFromEnvironment:
// COFFER_PSA_SOCKET, or COFFER_PSA_VOLUME + COFFER_PSA_KEY, or COFFER_PSA_STORE=memory;
// COFFER_PSA_CAPACITY limits the bytes stored). All calls hold one process-wide lock.
#pragma once

#include <cstdint>
#include <memory>

#include "coffer/base/status.h"
#include "coffer/objects/protocol.h"
#include "psa/error.h"
#include "psa/storage_common.h"

namespace coffer::psa {

enum class Api { kIts, kPs };

class PsaBinding {
 public:
  // keepalive owns whatever the connection borrows (a local store, its filesystem and volume).
  PsaBinding(std::unique_ptr<objects::ObjectConnection> conn, std::shared_ptr<void> keepalive = nullptr,
             uint64_t capacity_limit = 0)
      : keepalive_(std::move(keepalive)), conn_(std::move(conn)), capacity_limit_(capacity_limit) {}
  ~PsaBinding();
  objects::ObjectConnection& connection() { return *conn_; }
  uint64_t capacity_limit() const { return capacity_limit_; }  // 0 = none

 private:
  std::shared_ptr<void> keepalive_;  // declared first: destroyed after the connection
  std::unique_ptr<objects::ObjectConnection> conn_;
  uint64_t capacity_limit_ = 0;
};

// The binding named by the environment (see docs/objects.md).
Result<std::unique_ptr<PsaBinding>> BindFromEnvironment();
// Tests: route every psa_* call through `binding` (nullptr restores the environment's).
void SetBindingForTesting(PsaBinding* binding);
// Drops the environment binding (the next call binds again).
void ResetBinding();

psa_status_t Set(Api api, psa_storage_uid_t uid, size_t length, const void* data, psa_storage_create_flags_t flags);
psa_status_t Get(Api api, psa_storage_uid_t uid, size_t offset, size_t size, void* out, size_t* out_length);
psa_status_t GetInfo(Api api, psa_storage_uid_t uid, psa_storage_info_t* info);
psa_status_t Remove(Api api, psa_storage_uid_t uid);
psa_status_t Create(psa_storage_uid_t uid, size_t capacity, psa_storage_create_flags_t flags);
psa_status_t SetExtended(psa_storage_uid_t uid, size_t offset, size_t length, const void* data);

}  // namespace coffer::psa
