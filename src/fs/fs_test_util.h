// Helpers shared by the filesystem tests: geometries, pattern data, fault-injecting devices.
// Test-only; not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "coffer/blockdev/memory_block_device.h"
#include "coffer/fs/filesystem.h"
#include "gtest/gtest.h"

namespace coffer::fs::testing {

struct Geometry {
  const char* name;
  uint32_t read, prog, block, count, cache, lookahead;
  int erase_value;
  DiskVersion version;
};

inline std::vector<Geometry> Geometries() {
  return {
      // the remote-disk sample (fewer blocks for speed), no-op erase, both disk versions
      {"b256_noerase_v20", 256, 256, 256, 1024, 256, 256, -1, DiskVersion::k2_0},
      {"b256_noerase_v21", 256, 256, 256, 1024, 256, 256, -1, DiskVersion::k2_1},
      // ESP32/RP2040 NOR flash: 4 KiB sectors, 16-byte read/prog
      {"b4096_rp16_v21", 16, 16, 4096, 128, 512, 32, 0xff, DiskVersion::k2_1},
      {"b512_v21", 64, 64, 512, 256, 128, 16, 0xff, DiskVersion::k2_1},
      // the smallest block size littlefs allows
      {"b128_v21", 16, 16, 128, 512, 64, 16, 0xff, DiskVersion::k2_1},
      {"b128_v20", 16, 16, 128, 512, 64, 16, 0xff, DiskVersion::k2_0},
  };
}

inline BlockGeometry ToBlockGeometry(const Geometry& g) {
  BlockGeometry b;
  b.read_size = g.read;
  b.prog_size = g.prog;
  b.block_size = g.block;
  b.block_count = g.count;
  b.erase_value = g.erase_value;
  return b;
}

inline Config ToConfig(const Geometry& g, int32_t block_cycles = 500) {
  Config c;
  c.read_size = g.read;
  c.prog_size = g.prog;
  c.block_size = g.block;
  c.block_count = g.count;
  c.cache_size = g.cache;
  c.lookahead_size = g.lookahead;
  c.block_cycles = block_cycles;
  c.disk_version = g.version;
  return c;
}

inline std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 12345;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345;
    v[i] = uint8_t(x >> 16);
  }
  return v;
}

// Fault injection for bad-block and power-loss tests. Bad blocks: erase and/or prog fail with
// kCorrupt (littlefs's "bad block" signal), or progs silently do nothing. Crash: after `budget`
// progs+erases every further write fails with kIoError and changes nothing (the device keeps the
// state at the moment of the crash).
class TestFaultDevice : public BlockDevice {
 public:
  explicit TestFaultDevice(MemoryBlockDevice& base) : base_(base) {}
  const BlockGeometry& geometry() const override { return base_.geometry(); }
  Status Read(uint32_t b, uint32_t o, std::span<uint8_t> out) override {
    if (dataloss_blocks.count(b)) return DataLoss("block " + std::to_string(b) + " failed authentication");
    return base_.Read(b, o, out);
  }
  Status Prog(uint32_t b, uint32_t o, std::span<const uint8_t> d) override {
    COFFER_RETURN_IF_ERROR(Spend());
    if (bad_prog.count(b)) return faults++, Corrupt("bad block");
    if (noop_prog.count(b)) return faults++, Status::Ok();
    writes++;
    return base_.Prog(b, o, d);
  }
  Status Erase(uint32_t b) override {
    COFFER_RETURN_IF_ERROR(Spend());
    if (bad_erase.count(b)) return faults++, Corrupt("bad block");
    writes++;
    return base_.Erase(b);
  }
  Status Sync() override { return base_.Sync(); }

  std::set<uint32_t> bad_prog, bad_erase, noop_prog, dataloss_blocks;
  int64_t budget = -1;  // < 0: unlimited
  uint64_t writes = 0;
  uint64_t faults = 0;  // bad-block failures handed out

 private:
  Status Spend() {
    if (budget == 0) return IoError("simulated power loss");
    if (budget > 0) budget--;
    return Status::Ok();
  }
  MemoryBlockDevice& base_;
};

}  // namespace coffer::fs::testing
