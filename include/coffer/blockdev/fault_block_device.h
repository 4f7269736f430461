// FaultBlockDevice: a decorator that injects the faults real flash and real power supplies produce,
// in the spirit of littlefs's lfs_emubd — power cuts (atomic, torn, out-of-order), bit flips, bad
// blocks, one-shot errors — and counts operations and wear. Owns the device below. One thread at a time.
//
// Error codes it returns (what a filesystem above must expect):
// - kCorrupt from Prog or Erase: "bad block, relocate". This is littlefs's LFS_ERR_CORRUPT from a
//   prog/erase callback: the filesystem must give up the block and relocate its contents. A bad block
//   in kProgNoop/kEraseNoop mode instead returns OK and silently does nothing, so only a read-back
//   verification (littlefs's prog validation) can notice.
// - kIoError from any call after a power cut ("the power is off") until Reset(), and from a bad
//   block in kReadError mode or an injected read error.
// - Whatever the device below returns otherwise (kDataLoss from a sealed volume passes through).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "coffer/blockdev/block_device.h"
#include "coffer/blockdev/memory_block_device.h"  // BlockDeviceCounters

namespace coffer {

// What happens to the prog/erase that the power cut interrupts (and, out-of-order, to earlier ones).
enum class PowerCutMode {
  kAtomic,      // the interrupted operation does not happen at all; everything before it did
  kTorn,        // the interrupted prog is applied to a prefix of its bytes (an erase: a prefix of
                // the block is erased, the rest keeps its old bytes)
  kOutOfOrder,  // like kAtomic for the interrupted operation, and every block touched since the last
                // Sync() ends, independently per prog unit, as before or after its unsynced writes
                // (the device reordered or lost writes it had not promised to keep)
};

// How a bad block misbehaves (littlefs emubd's badblock behaviours).
enum class BadBlockMode {
  kProgError,   // Prog returns kCorrupt and changes nothing
  kEraseError,  // Erase returns kCorrupt and changes nothing
  kReadError,   // Read returns kIoError
  kProgNoop,    // Prog returns OK but changes nothing (stuck cells)
  kEraseNoop,   // Erase returns OK but changes nothing
};

enum class FaultOp { kRead, kProg, kErase, kSync };

class FaultBlockDevice : public ForwardingBlockDevice {
 public:
  // `seed` drives every random choice (torn lengths, out-of-order outcomes): runs are reproducible.
  explicit FaultBlockDevice(std::unique_ptr<BlockDevice> base, uint64_t seed = 1);

  Status Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) override;
  Status Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) override;
  Status Erase(uint32_t block) override;
  Status Sync() override;

  // --- power ---
  // The power fails during the prog/erase after `ops_before_cut` more progs/erases have completed
  // (0: the very next one is interrupted). After the cut every call fails with kIoError.
  void ArmPowerCut(uint64_t ops_before_cut, PowerCutMode mode);
  void DisarmPowerCut() { cut_in_.reset(); }
  // Cut the power now (applies kOutOfOrder effects to unsynced writes if `mode` says so).
  void CutPowerNow(PowerCutMode mode);
  bool powered_off() const { return powered_off_; }
  uint64_t power_cuts() const { return power_cuts_; }
  // Power back on: calls work again (the state is whatever the cut left). Faults stay armed except
  // the power cut; counters keep counting.
  void Reset();

  // --- bad blocks and injected errors ---
  void SetBadBlock(uint32_t block, BadBlockMode mode) { bad_blocks_[block] = mode; }
  void ClearBadBlock(uint32_t block) { bad_blocks_.erase(block); }
  // A block wears out (becomes bad with `mode`) once it has been erased `cycles` times; 0 disables.
  void SetEraseCycles(uint64_t cycles, BadBlockMode mode);
  // The next `count` calls of `op` (after `skip` more succeed) fail with `code` and change nothing.
  void FailNext(FaultOp op, StatusCode code, uint64_t count = 1, uint64_t skip = 0);

  // --- bit flips (made directly on the device below; not counted) ---
  Status FlipBit(uint32_t block, uint32_t offset, uint8_t bit);
  // Flips `count` bits at random places within blocks [first, first+n).
  Status FlipRandomBits(uint32_t count, uint32_t first_block = 0, uint32_t n_blocks = 0);

  // --- image snapshots (made directly on the device below; not counted) ---
  Result<std::vector<uint8_t>> Snapshot();
  Status Restore(const std::vector<uint8_t>& image);

  // --- counters ---
  const BlockDeviceCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = {}; }
  uint64_t wear(uint32_t block) const { return block < wear_.size() ? wear_[block] : 0; }
  uint64_t max_wear() const;
  // Progs+erases performed so far (the clock ArmPowerCut counts on), including failed ones.
  uint64_t mutating_ops() const { return mutating_ops_; }

 private:
  struct Injected {
    StatusCode code;
    uint64_t skip;
    uint64_t count;
  };
  std::optional<Status> TakeInjected(FaultOp op);
  std::optional<BadBlockMode> BadMode(uint32_t block) const;
  // Records the pre-image of `block` before its first change since the last Sync (out-of-order).
  Status RememberPreImage(uint32_t block);
  Status ReadBlockRaw(uint32_t block, std::vector<uint8_t>& out);
  Status WriteBlockRaw(uint32_t block, const std::vector<uint8_t>& content);
  Status ApplyOutOfOrder();
  // True if this prog/erase is the one the power cut interrupts.
  bool CutsNow();
  Status PoweredOff(const char* op) const;

  std::mt19937_64 rng_;
  BlockDeviceCounters counters_;
  std::vector<uint64_t> wear_;
  std::map<uint32_t, BadBlockMode> bad_blocks_;
  uint64_t erase_cycles_ = 0;
  BadBlockMode wear_out_mode_ = BadBlockMode::kProgError;
  std::map<FaultOp, Injected> injected_;
  std::optional<uint64_t> cut_in_;
  PowerCutMode cut_mode_ = PowerCutMode::kAtomic;
  bool powered_off_ = false;
  uint64_t power_cuts_ = 0;
  uint64_t mutating_ops_ = 0;
  std::map<uint32_t, std::vector<uint8_t>> pre_images_;  // blocks changed since the last Sync
};

}  // namespace coffer
