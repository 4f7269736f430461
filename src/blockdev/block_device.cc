#include "coffer/blockdev/block_device.h"

namespace coffer {

Status BlockGeometry::Validate() const {
  if (read_size == 0 || prog_size == 0 || block_size == 0 || block_count == 0) {
    return InvalidArgument("geometry sizes must be non-zero: " + ToString());
  }
  if (block_size % read_size != 0 || block_size % prog_size != 0) {
    return InvalidArgument("block size must be a multiple of read and prog size: " + ToString());
  }
  if (erase_value < -1 || erase_value > 255) return InvalidArgument("erase value must be -1..255");
  return Status::Ok();
}

std::string BlockGeometry::ToString() const {
  return "read " + std::to_string(read_size) + ", prog " + std::to_string(prog_size) + ", block " +
         std::to_string(block_size) + " x " + std::to_string(block_count);
}

Status BlockDevice::CheckRange(uint32_t block, uint32_t offset, size_t size, uint32_t unit,
                               const char* op) const {
  const BlockGeometry& g = geometry();
  if (offset % unit != 0 || size % unit != 0) {
    return InvalidArgument(std::string(op) + ": offset " + std::to_string(offset) + " and size " +
                           std::to_string(size) + " must be multiples of " + std::to_string(unit));
  }
  if (block >= g.block_count) {
    return OutOfRange(std::string(op) + ": block " + std::to_string(block) + " beyond block count " +
                      std::to_string(g.block_count));
  }
  if (uint64_t(offset) + size > g.block_size) {
    return OutOfRange(std::string(op) + ": range " + std::to_string(offset) + "+" + std::to_string(size) +
                      " exceeds block size " + std::to_string(g.block_size));
  }
  return Status::Ok();
}

}  // namespace coffer
