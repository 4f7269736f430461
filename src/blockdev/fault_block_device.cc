#include "coffer/blockdev/fault_block_device.h"

#include <algorithm>
#include <cstring>

namespace coffer {

FaultBlockDevice::FaultBlockDevice(std::unique_ptr<BlockDevice> base, uint64_t seed)
    : ForwardingBlockDevice(std::move(base)), rng_(seed), wear_(base_->geometry().block_count, 0) {}

Status FaultBlockDevice::PoweredOff(const char* op) const {
  return IoError(std::string(op) + ": device is powered off (simulated power cut)");
}

void FaultBlockDevice::ArmPowerCut(uint64_t ops_before_cut, PowerCutMode mode) {
  cut_in_ = ops_before_cut;
  cut_mode_ = mode;
}

void FaultBlockDevice::Reset() {
  powered_off_ = false;
  cut_in_.reset();
  pre_images_.clear();  // whatever the cut left is now the durable state
}

void FaultBlockDevice::SetEraseCycles(uint64_t cycles, BadBlockMode mode) {
  erase_cycles_ = cycles;
  wear_out_mode_ = mode;
}

void FaultBlockDevice::FailNext(FaultOp op, StatusCode code, uint64_t count, uint64_t skip) {
  injected_[op] = Injected{code, skip, count};
}

std::optional<Status> FaultBlockDevice::TakeInjected(FaultOp op) {
  auto it = injected_.find(op);
  if (it == injected_.end()) return std::nullopt;
  Injected& inj = it->second;
  if (inj.skip > 0) {
    inj.skip--;
    return std::nullopt;
  }
  StatusCode code = inj.code;
  if (--inj.count == 0) injected_.erase(it);
  static const char* const kNames[] = {"read", "prog", "erase", "sync"};
  return Status(code, std::string("injected ") + kNames[int(op)] + " failure");
}

std::optional<BadBlockMode> FaultBlockDevice::BadMode(uint32_t block) const {
  auto it = bad_blocks_.find(block);
  if (it != bad_blocks_.end()) return it->second;
  if (erase_cycles_ != 0 && block < wear_.size() && wear_[block] >= erase_cycles_) return wear_out_mode_;
  return std::nullopt;
}

bool FaultBlockDevice::CutsNow() {
  if (!cut_in_) return false;
  if (*cut_in_ == 0) {
    cut_in_.reset();
    return true;
  }
  --*cut_in_;
  return false;
}

uint64_t FaultBlockDevice::max_wear() const {
  return wear_.empty() ? 0 : *std::max_element(wear_.begin(), wear_.end());
}

Status FaultBlockDevice::ReadBlockRaw(uint32_t block, std::vector<uint8_t>& out) {
  out.resize(geometry().block_size);
  return base_->Read(block, 0, out);
}

Status FaultBlockDevice::WriteBlockRaw(uint32_t block, const std::vector<uint8_t>& content) {
  COFFER_RETURN_IF_ERROR(base_->Erase(block));
  const BlockGeometry& g = geometry();
  if (g.erase_value >= 0) {
    // Program only the prog units that differ from erased, as real flash would be left.
    for (uint32_t off = 0; off < g.block_size; off += g.prog_size) {
      bool erased = std::all_of(content.begin() + off, content.begin() + off + g.prog_size,
                                [&](uint8_t b) { return b == uint8_t(g.erase_value); });
      if (!erased) {
        COFFER_RETURN_IF_ERROR(
            base_->Prog(block, off, std::span<const uint8_t>(content.data() + off, g.prog_size)));
      }
    }
    return Status::Ok();
  }
  return base_->Prog(block, 0, content);
}

Status FaultBlockDevice::RememberPreImage(uint32_t block) {
  if (pre_images_.count(block)) return Status::Ok();
  std::vector<uint8_t> pre;
  COFFER_RETURN_IF_ERROR(ReadBlockRaw(block, pre));
  pre_images_.emplace(block, std::move(pre));
  return Status::Ok();
}

Status FaultBlockDevice::ApplyOutOfOrder() {
  const BlockGeometry& g = geometry();
  for (auto& [block, pre] : pre_images_) {
    std::vector<uint8_t> now;
    COFFER_RETURN_IF_ERROR(ReadBlockRaw(block, now));
    std::vector<uint8_t> result = now;
    // Per prog unit: the write landed, was lost (old bytes back), or landed partly (torn).
    for (uint32_t off = 0; off < g.block_size; off += g.prog_size) {
      if (std::equal(now.begin() + off, now.begin() + off + g.prog_size, pre.begin() + off)) continue;
      switch (rng_() % 3) {
        case 0:
          break;  // landed
        case 1:
          std::copy(pre.begin() + off, pre.begin() + off + g.prog_size, result.begin() + off);
          break;
        default: {
          uint32_t keep = uint32_t(rng_() % g.prog_size);
          std::copy(pre.begin() + off + keep, pre.begin() + off + g.prog_size,
                    result.begin() + off + keep);
          break;
        }
      }
    }
    if (result != now) COFFER_RETURN_IF_ERROR(WriteBlockRaw(block, result));
  }
  pre_images_.clear();
  return Status::Ok();
}

void FaultBlockDevice::CutPowerNow(PowerCutMode mode) {
  if (mode == PowerCutMode::kOutOfOrder) (void)ApplyOutOfOrder();
  pre_images_.clear();
  powered_off_ = true;
  power_cuts_++;
  cut_in_.reset();
}

Status FaultBlockDevice::Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) {
  if (powered_off_) return PoweredOff("read");
  COFFER_RETURN_IF_ERROR(CheckRange(block, offset, out.size(), geometry().read_size, "read"));
  counters_.reads++;
  counters_.bytes_read += out.size();
  if (auto injected = TakeInjected(FaultOp::kRead)) return *injected;
  if (BadMode(block) == BadBlockMode::kReadError) {
    return IoError("read: block " + std::to_string(block) + " is bad (simulated)");
  }
  return base_->Read(block, offset, out);
}

Status FaultBlockDevice::Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) {
  if (powered_off_) return PoweredOff("prog");
  const BlockGeometry& g = geometry();
  COFFER_RETURN_IF_ERROR(CheckRange(block, offset, data.size(), g.prog_size, "prog"));
  mutating_ops_++;
  counters_.progs++;
  counters_.bytes_programmed += data.size();
  if (CutsNow()) {
    if (cut_mode_ == PowerCutMode::kTorn && !data.empty()) {
      // A prefix of the bytes lands; the rest stays as it was (erased, normally).
      std::vector<uint8_t> buf(data.size());
      if (base_->Read(block, offset, buf).ok()) {
        size_t landed = size_t(rng_() % data.size());
        std::memcpy(buf.data(), data.data(), landed);
        (void)RememberPreImage(block);
        (void)base_->Prog(block, offset, buf);
      }
    }
    CutPowerNow(cut_mode_);
    return IoError("prog: power cut (simulated) at block " + std::to_string(block));
  }
  if (auto injected = TakeInjected(FaultOp::kProg)) return *injected;
  auto bad = BadMode(block);
  if (bad == BadBlockMode::kProgError) {
    return Corrupt("prog: block " + std::to_string(block) + " is bad (simulated); relocate");
  }
  if (bad == BadBlockMode::kProgNoop) return Status::Ok();
  COFFER_RETURN_IF_ERROR(RememberPreImage(block));
  return base_->Prog(block, offset, data);
}

Status FaultBlockDevice::Erase(uint32_t block) {
  if (powered_off_) return PoweredOff("erase");
  const BlockGeometry& g = geometry();
  COFFER_RETURN_IF_ERROR(CheckRange(block, 0, 0, 1, "erase"));
  mutating_ops_++;
  counters_.erases++;
  counters_.bytes_erased += g.block_size;
  if (CutsNow()) {
    if (cut_mode_ == PowerCutMode::kTorn && g.erase_value >= 0) {
      // A prefix of the block is erased; the rest keeps its old bytes.
      std::vector<uint8_t> content;
      if (ReadBlockRaw(block, content).ok()) {
        size_t erased = size_t(rng_() % g.block_size);
        std::memset(content.data(), g.erase_value, erased);
        (void)RememberPreImage(block);
        (void)WriteBlockRaw(block, content);
      }
    }
    CutPowerNow(cut_mode_);
    return IoError("erase: power cut (simulated) at block " + std::to_string(block));
  }
  if (auto injected = TakeInjected(FaultOp::kErase)) return *injected;
  auto bad = BadMode(block);
  if (bad == BadBlockMode::kEraseError) {
    return Corrupt("erase: block " + std::to_string(block) + " is bad (simulated); relocate");
  }
  if (bad == BadBlockMode::kEraseNoop) return Status::Ok();
  COFFER_RETURN_IF_ERROR(RememberPreImage(block));
  COFFER_RETURN_IF_ERROR(base_->Erase(block));
  wear_[block]++;
  return Status::Ok();
}

Status FaultBlockDevice::Sync() {
  if (powered_off_) return PoweredOff("sync");
  counters_.syncs++;
  if (auto injected = TakeInjected(FaultOp::kSync)) return *injected;
  COFFER_RETURN_IF_ERROR(base_->Sync());
  pre_images_.clear();
  return Status::Ok();
}

Status FaultBlockDevice::FlipBit(uint32_t block, uint32_t offset, uint8_t bit) {
  const BlockGeometry& g = geometry();
  if (block >= g.block_count || offset >= g.block_size || bit > 7) {
    return OutOfRange("flip: block " + std::to_string(block) + " offset " + std::to_string(offset) +
                      " bit " + std::to_string(bit) + " outside the device");
  }
  std::vector<uint8_t> content;
  COFFER_RETURN_IF_ERROR(ReadBlockRaw(block, content));
  content[offset] ^= uint8_t(1u << bit);
  return WriteBlockRaw(block, content);
}

Status FaultBlockDevice::FlipRandomBits(uint32_t count, uint32_t first_block, uint32_t n_blocks) {
  const BlockGeometry& g = geometry();
  if (n_blocks == 0) n_blocks = g.block_count - std::min(first_block, g.block_count);
  if (first_block >= g.block_count || first_block + uint64_t(n_blocks) > g.block_count || n_blocks == 0) {
    return OutOfRange("flip: block range outside the device");
  }
  for (uint32_t i = 0; i < count; ++i) {
    COFFER_RETURN_IF_ERROR(FlipBit(first_block + uint32_t(rng_() % n_blocks),
                                   uint32_t(rng_() % g.block_size), uint8_t(rng_() % 8)));
  }
  return Status::Ok();
}

Result<std::vector<uint8_t>> FaultBlockDevice::Snapshot() {
  const BlockGeometry& g = geometry();
  std::vector<uint8_t> image(g.total_bytes());
  for (uint32_t b = 0; b < g.block_count; ++b) {
    COFFER_RETURN_IF_ERROR(base_->Read(
        b, 0, std::span<uint8_t>(image.data() + uint64_t(b) * g.block_size, g.block_size)));
  }
  return image;
}

Status FaultBlockDevice::Restore(const std::vector<uint8_t>& image) {
  const BlockGeometry& g = geometry();
  if (image.size() != g.total_bytes()) {
    return InvalidArgument("restore: snapshot is " + std::to_string(image.size()) +
                           " bytes, device is " + std::to_string(g.total_bytes()));
  }
  std::vector<uint8_t> now;
  for (uint32_t b = 0; b < g.block_count; ++b) {
    COFFER_RETURN_IF_ERROR(ReadBlockRaw(b, now));
    auto begin = image.begin() + int64_t(uint64_t(b) * g.block_size);
    if (!std::equal(now.begin(), now.end(), begin)) {
      COFFER_RETURN_IF_ERROR(WriteBlockRaw(b, std::vector<uint8_t>(begin, begin + g.block_size)));
    }
  }
  pre_images_.clear();
  return base_->Sync();
}

}  // namespace coffer
