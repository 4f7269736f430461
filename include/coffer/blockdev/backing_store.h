// BackingStore: where a sealed volume keeps its bytes — a flat array of fixed-size records on
// storage the attacker controls (a file, a remote block host, the original disk-host protocol).
//
// Contract (checked by blockdev/backing_store_conformance.h against every implementation):
// - record_size() and record_count() are fixed for the life of the store.
// - Read(first, count, out): out.size() == count * record_size(). A never-written record reads
//   as zeros. kOutOfRange past the end; kIoError/kUnavailable for transport or OS failures.
// - WriteBatch(writes): all records or none, durable when it returns OK, even across a crash of
//   this process, the machine or the remote host. Indices in one batch are distinct.
//   A store keeps no secrets and interprets no bytes: everything it holds may be hostile.
// - Flush(): nothing buffered remains (stores that batch internally); OK is a durability point.
// One thread at a time per object unless an implementation says otherwise.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "coffer/base/status.h"

namespace coffer {

struct RecordWrite {
  uint64_t index;
  std::span<const uint8_t> data;  // exactly record_size() bytes
};

class BackingStore {
 public:
  virtual ~BackingStore() = default;

  virtual uint32_t record_size() const = 0;
  virtual uint64_t record_count() const = 0;
  virtual Status Read(uint64_t first, uint32_t count, std::span<uint8_t> out) = 0;
  virtual Status WriteBatch(std::span<const RecordWrite> writes) = 0;
  virtual Status Flush() { return Status::Ok(); }
  // Short human description for errors ("file:/var/v.img", "https://h:8443/v1/volumes/dev1").
  virtual std::string Describe() const = 0;

 protected:
  // Shared checks for implementations: bounds, sizes, distinct indices.
  Status CheckRead(uint64_t first, uint32_t count, size_t out_size) const;
  Status CheckBatch(std::span<const RecordWrite> writes) const;
};

}  // namespace coffer
