// VolumeStore: the block host's storage — many named volumes of fixed-size records, each a file
// DIR/NAME.vol (4 KiB header + records) with a redo journal DIR/NAME.jnl. A batch is journaled and
// fsync'ed, then applied and fsync'ed, before ApplyBatch returns: every acknowledged batch is
// durable and a crash leaves each batch wholly applied or not at all (docs/format/blockhost_protocol.md).
// Thread-safe: reads of a volume run concurrently; batches on one volume are serialised.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "coffer/blockhost/protocol.h"

namespace coffer::blockhost {

struct VolumeInfo {
  std::string name;
  std::string owner;  // identity that created it ("" = anonymous/plaintext)
  uint32_t record_size = 0;
  uint64_t record_count = 0;
  uint64_t generation = 0;  // write fence: bumped by OpenForWrite
};

struct BatchResult {
  bool duplicate = false;  // the batch id was already applied: nothing done
  size_t records = 0;
};

class Volume;

class VolumeStore {
 public:
  struct Limits {
    uint64_t max_volume_bytes = uint64_t(64) << 30;
    size_t max_volumes = 100000;
  };
  static Result<std::unique_ptr<VolumeStore>> Open(const std::string& dir, Limits limits);
  ~VolumeStore();

  Result<VolumeInfo> Create(const std::string& name, uint32_t record_size, uint64_t record_count,
                            const std::string& owner);
  // Creates the volume if missing; an existing one must have this geometry.
  Result<VolumeInfo> Ensure(const std::string& name, uint32_t record_size, uint64_t record_count,
                            const std::string& owner);
  Result<VolumeInfo> Info(const std::string& name);
  Status Delete(const std::string& name);
  // Bumps and returns the generation: batches carrying an older generation are refused.
  Result<uint64_t> OpenForWrite(const std::string& name);
  Status Read(const std::string& name, uint64_t first, uint64_t count, std::span<uint8_t> out);
  // check_generation=false for the original protocol's unfenced single-record writes.
  Result<BatchResult> ApplyBatch(const std::string& name, const BatchView& batch, bool check_generation);

 private:
  VolumeStore(std::string dir, Limits limits) : dir_(std::move(dir)), limits_(limits) {}
  Result<std::shared_ptr<Volume>> Get(const std::string& name);

  std::string dir_;
  Limits limits_;
  std::mutex mu_;  // guards open_ and create/delete
  std::map<std::string, std::shared_ptr<Volume>> open_;
};

}  // namespace coffer::blockhost
