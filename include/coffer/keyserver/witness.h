// The freshness witness kept by the key server: for each (device, volume) the newest (counter, root
// hash) it has seen, persisted under DIR (one JSON file per volume, 0600, atomic replace). A report
// with a lower counter, or the same counter with a different root, is a rollback or fork and is
// refused with kDataLoss. Thread-safe (one mutex).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "coffer/base/status.h"

namespace coffer::keyserver {

struct WitnessRecord {
  uint64_t counter = 0;
  std::string root_hex;  // lower-case hex, 1..128 digits
};

class WitnessStore {
 public:
  explicit WitnessStore(std::string dir) : dir_(std::move(dir)) {}
  // Accepts (and persists) a report newer than the newest seen, or an identical repeat.
  Result<WitnessRecord> Report(const std::string& device, const std::string& volume_hex, uint64_t counter,
                               const std::string& root_hex);
  // kNotFound when nothing was ever reported.
  Result<WitnessRecord> Latest(const std::string& device, const std::string& volume_hex);
  // Drops the record (after the volume was crypto-erased). kNotFound if there was none.
  Status Forget(const std::string& device, const std::string& volume_hex);

 private:
  std::string PathFor(const std::string& device, const std::string& volume_hex) const;
  std::string dir_;
  std::mutex mu_;
};

// Volume ids and roots: 1..128 hex digits (lower-cased on input).
Status ValidateHexId(const std::string& what, const std::string& hex);

}  // namespace coffer::keyserver
