// Tpm2NvAnchor: the sealed volume's Anchor kept in a TPM 2.0 — an NV counter index (TPM2_NT_COUNTER,
// which no one can move backwards) and, at the next handle, an ordinary NV index holding the
// per-volume (commit counter, root) entries plus the NV counter value they were written at, MAC'ed
// by a TPM-resident key (optionally PCR-bound). A restored older record is evident because its
// counter value is below the NV counter. Layout and argument: docs/format/tpm2_anchor.md, docs/fleet.md.
// One thread at a time; concurrent writers on one TPM are not coordinated (one device, one writer).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "coffer/keys/anchor.h"
#include "coffer/tpm/tpm2.h"

namespace coffer::tpm {

constexpr size_t kAnchorRecordSize = 512;
constexpr size_t kAnchorMaxVolumes = 8;

// The record's structure (docs/format/tpm2_anchor.md) without its MAC, which only the TPM can check:
// kDataLoss for a bad magic, entry count or index, kUnsupported for another version.
struct AnchorRecord {
  uint64_t written_at = 0;
  std::vector<std::pair<VolumeId, AnchorEntry>> entries;
};
Result<AnchorRecord> ParseAnchorRecord(ByteSpan record, uint32_t counter_index, const std::string& where);

class Tpm2NvAnchor : public Anchor {
 public:
  // counter_index: the NV counter; counter_index + 1: the record. Both are defined on first Commit.
  Tpm2NvAnchor(std::string tcti, uint32_t counter_index, PcrSelection pcrs = {})
      : tpm_(std::move(tcti)), counter_index_(counter_index), pcrs_(pcrs) {}

  Result<std::optional<AnchorEntry>> Load(const VolumeId& id) override;
  Status Commit(const VolumeId& id, const AnchorEntry& entry) override;
  Status Forget(const VolumeId& id) override;
  std::string Describe() const override;

  // The NV counter's current value (nullopt before first use); for tests and `volume info`.
  Result<std::optional<uint64_t>> CounterValue();

 private:
  struct State {
    bool fresh = true;  // neither index defined
    uint64_t tpm_counter = 0;
    std::vector<std::pair<VolumeId, AnchorEntry>> entries;
  };
  Result<State> ReadState();
  Status WriteState(State& state);
  Result<std::array<uint8_t, 32>> Mac(ByteSpan body);

  Tpm2 tpm_;
  uint32_t counter_index_;
  PcrSelection pcrs_;
};

}  // namespace coffer::tpm
