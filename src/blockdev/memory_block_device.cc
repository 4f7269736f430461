#include "coffer/blockdev/memory_block_device.h"

#include <algorithm>
#include <cstring>

namespace coffer {

MemoryBlockDevice::MemoryBlockDevice(BlockGeometry geometry, uint8_t initial_fill)
    : geometry_(geometry),
      data_(geometry.total_bytes(), geometry.erase_value >= 0 ? uint8_t(geometry.erase_value) : initial_fill),
      strict_prog_(geometry.erase_value >= 0) {}

Status MemoryBlockDevice::Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) {
  COFFER_RETURN_IF_ERROR(CheckRange(block, offset, out.size(), geometry_.read_size, "read"));
  std::memcpy(out.data(), &data_[uint64_t(block) * geometry_.block_size + offset], out.size());
  counters_.reads++;
  counters_.bytes_read += out.size();
  return Status::Ok();
}

Status MemoryBlockDevice::Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) {
  COFFER_RETURN_IF_ERROR(CheckRange(block, offset, data.size(), geometry_.prog_size, "prog"));
  uint8_t* dst = &data_[uint64_t(block) * geometry_.block_size + offset];
  if (strict_prog_) {
    uint8_t ev = uint8_t(geometry_.erase_value);
    if (!std::all_of(dst, dst + data.size(), [ev](uint8_t b) { return b == ev; })) {
      return FailedPrecondition("prog over unerased bytes in block " + std::to_string(block) +
                                " at offset " + std::to_string(offset));
    }
  }
  std::memcpy(dst, data.data(), data.size());
  counters_.progs++;
  counters_.bytes_programmed += data.size();
  return Status::Ok();
}

Status MemoryBlockDevice::Erase(uint32_t block) {
  COFFER_RETURN_IF_ERROR(CheckRange(block, 0, 0, 1, "erase"));
  if (geometry_.erase_value >= 0) {
    std::memset(&data_[uint64_t(block) * geometry_.block_size], geometry_.erase_value, geometry_.block_size);
  }
  counters_.erases++;
  counters_.bytes_erased += geometry_.block_size;
  return Status::Ok();
}

Status MemoryBlockDevice::Sync() {
  counters_.syncs++;
  return Status::Ok();
}

}  // namespace coffer
