// MemoryBlockDevice: a BlockDevice in RAM, for tests and benchmarks. Enforces flash rules: prog
// only over erased bytes (when erase_value >= 0). Counts operations. One thread at a time.
#pragma once

#include <vector>

#include "coffer/blockdev/block_device.h"

namespace coffer {

struct BlockDeviceCounters {
  uint64_t reads = 0, progs = 0, erases = 0, syncs = 0;
  uint64_t bytes_read = 0, bytes_programmed = 0, bytes_erased = 0;
};

class MemoryBlockDevice : public BlockDevice {
 public:
  // Fills with the erase value (or `initial_fill` when erase_value < 0).
  explicit MemoryBlockDevice(BlockGeometry geometry, uint8_t initial_fill = 0xff);

  const BlockGeometry& geometry() const override { return geometry_; }
  Status Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) override;
  Status Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) override;
  Status Erase(uint32_t block) override;
  Status Sync() override;

  const BlockDeviceCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = {}; }
  std::vector<uint8_t>& raw() { return data_; }  // whole image, for tests and snapshots
  // Enforce prog-over-erased (default true when erase_value >= 0).
  void set_strict_prog(bool strict) { strict_prog_ = strict; }

 private:
  BlockGeometry geometry_;
  std::vector<uint8_t> data_;
  BlockDeviceCounters counters_;
  bool strict_prog_;
};

}  // namespace coffer
