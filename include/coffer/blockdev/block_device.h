// BlockDevice: the flash-like device every filesystem in coffer runs on — the four calls and
// geometry of littlefs's `struct lfs_config` (read, prog, erase, sync).
//
// Contract (every implementation, checked by blockdev/block_device_conformance.h):
// - Read(block, off, out): off and out.size() are multiples of read_size, within the block.
//   Erased, never-programmed bytes read as geometry().erase_value when it is >= 0.
//   kDataLoss means the stored bytes failed authentication (sealed devices); never zeros instead.
// - Prog(block, off, data): off and size multiples of prog_size; the range must be erased
//   (implementations may refuse a prog over programmed bytes with kFailedPrecondition).
// - Erase(block): whole block back to the erase value.
// - Sync(): everything programmed before it is durable when it returns OK (the commit point).
// - Misaligned or out-of-range calls: kInvalidArgument / kOutOfRange, and nothing changes.
// A device is used by one thread at a time; callers serialise. Decorators own the device below
// (std::unique_ptr<BlockDevice>) and derive from ForwardingBlockDevice to override only what they change.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "coffer/base/status.h"

namespace coffer {

struct BlockGeometry {
  uint32_t read_size = 0;    // minimum read unit, bytes
  uint32_t prog_size = 0;    // minimum program unit, bytes
  uint32_t block_size = 0;   // erase unit, bytes; multiple of read_size and prog_size
  uint32_t block_count = 0;  // number of erase blocks
  int erase_value = 0xff;    // value of erased bytes, or -1 if erase leaves bytes undefined

  uint64_t total_bytes() const { return uint64_t(block_size) * block_count; }
  // OK if sizes are non-zero and consistent.
  Status Validate() const;
  std::string ToString() const;
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  virtual const BlockGeometry& geometry() const = 0;
  virtual Status Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) = 0;
  virtual Status Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) = 0;
  virtual Status Erase(uint32_t block) = 0;
  virtual Status Sync() = 0;

 protected:
  // Shared argument check: alignment to `unit` and bounds. Returns kInvalidArgument/kOutOfRange.
  Status CheckRange(uint32_t block, uint32_t offset, size_t size, uint32_t unit,
                    const char* op) const;
};

// Passes every call to the device it owns; decorators override what they change.
class ForwardingBlockDevice : public BlockDevice {
 public:
  explicit ForwardingBlockDevice(std::unique_ptr<BlockDevice> base) : base_(std::move(base)) {}
  const BlockGeometry& geometry() const override { return base_->geometry(); }
  Status Read(uint32_t b, uint32_t o, std::span<uint8_t> out) override { return base_->Read(b, o, out); }
  Status Prog(uint32_t b, uint32_t o, std::span<const uint8_t> d) override { return base_->Prog(b, o, d); }
  Status Erase(uint32_t b) override { return base_->Erase(b); }
  Status Sync() override { return base_->Sync(); }
  BlockDevice& base() { return *base_; }

 protected:
  std::unique_ptr<BlockDevice> base_;
};

}  // namespace coffer
