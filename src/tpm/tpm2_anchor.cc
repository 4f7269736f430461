#include "coffer/tpm/tpm2_anchor.h"

#include <algorithm>
#include <cstring>

#include "coffer/base/secret.h"

namespace coffer::tpm {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'T', 'P', 'M', 'A', 'N', 'C'};
constexpr uint16_t kVersion = 1;
constexpr size_t kHeaderSize = 24;
constexpr size_t kEntrySize = 56;
constexpr size_t kMacOffset = kAnchorRecordSize - 32;
constexpr std::string_view kMacLabel = "coffer tpm2 anchor mac v1";
static_assert(kHeaderSize + kAnchorMaxVolumes * kEntrySize <= kMacOffset);

}  // namespace

Result<AnchorRecord> ParseAnchorRecord(ByteSpan rec, uint32_t c_index, const std::string& where) {
  if (rec.size() != kAnchorRecordSize) return DataLoss(where + ": record is " + std::to_string(rec.size()) + " bytes");
  if (std::memcmp(rec.data(), kMagic, 8) != 0) return DataLoss(where + ": record has a bad magic");
  if (GetLe16(rec.data() + 8) != kVersion) {
    return Unsupported(where + ": record version " + std::to_string(GetLe16(rec.data() + 8)) + " (this build reads 1)");
  }
  uint16_t n = GetLe16(rec.data() + 10);
  if (n > kAnchorMaxVolumes) return DataLoss(where + ": record claims " + std::to_string(n) + " entries");
  if (GetLe32(rec.data() + 12) != c_index) return DataLoss(where + ": record belongs to another anchor index");
  AnchorRecord out;
  out.written_at = GetLe64(rec.data() + 16);
  for (uint16_t i = 0; i < n; ++i) {
    const uint8_t* e = rec.data() + kHeaderSize + i * kEntrySize;
    VolumeId id;
    std::memcpy(id.data(), e, 16);
    AnchorEntry entry;
    entry.counter = GetLe64(e + 16);
    std::memcpy(entry.root.data(), e + 24, 32);
    out.entries.emplace_back(id, entry);
  }
  return out;
}

std::string Tpm2NvAnchor::Describe() const {
  std::string d = "TPM NV anchor " + HexIndex(counter_index_) + " (tcti " + tpm_.tcti();
  if (!pcrs_.empty()) d += ", pcrs " + PcrSelectionToString(pcrs_);
  return d + ")";
}

Result<std::array<uint8_t, 32>> Tpm2NvAnchor::Mac(ByteSpan body) { return tpm_.Hmac(kMacLabel, pcrs_, body); }

Result<std::optional<uint64_t>> Tpm2NvAnchor::CounterValue() {
  COFFER_ASSIGN_OR_RETURN(auto info, tpm_.NvInfoOf(counter_index_));
  if (!info || !info->written) return std::optional<uint64_t>();
  COFFER_ASSIGN_OR_RETURN(uint64_t v, tpm_.NvReadCounter(counter_index_));
  return std::optional<uint64_t>(v);
}

Result<Tpm2NvAnchor::State> Tpm2NvAnchor::ReadState() {
  const uint32_t c_index = counter_index_, d_index = counter_index_ + 1;
  const std::string where = Describe();
  COFFER_ASSIGN_OR_RETURN(auto c, tpm_.NvInfoOf(c_index));
  COFFER_ASSIGN_OR_RETURN(auto d, tpm_.NvInfoOf(d_index));
  State st;
  if (!c && !d) return st;  // never used: trust on first use, like a missing anchor file
  if (!c) {
    return DataLoss(where + ": the record index " + HexIndex(d_index) +
                    " exists but its NV counter is gone (deleted?): freshness cannot be established");
  }
  if (!c->counter) {
    if (d && d->size == kAnchorRecordSize) {
      return DataLoss(where + ": NV index " + HexIndex(c_index) + " was replaced by a non-counter index");
    }
    return FailedPrecondition("NV index " + HexIndex(c_index) +
                              " is in use and is not an NV counter: choose another nv= handle for the anchor");
  }
  if (!d || !d->written) {
    if (c->written) {
      return DataLoss(where + ": the NV counter has been used but the record index " + HexIndex(d_index) +
                      " is missing or empty: the first commit was interrupted, or the record was deleted. To start "
                      "over (losing rollback protection once): tpm2_nvundefine " + HexIndex(d_index) +
                      "; tpm2_nvundefine " + HexIndex(c_index));
    }
    return st;  // defined, nothing recorded yet (interrupted first use before any counter increment)
  }
  if (d->size != kAnchorRecordSize) {
    return FailedPrecondition("NV index " + HexIndex(d_index) + " is in use (" + std::to_string(d->size) +
                              " bytes) and is not a coffer anchor record: choose another nv= handle");
  }
  if (!c->written) {
    return DataLoss(where + ": a record exists but the NV counter was never incremented: the counter was re-created");
  }
  COFFER_ASSIGN_OR_RETURN(Bytes rec, tpm_.NvRead(d_index, kAnchorRecordSize));
  COFFER_ASSIGN_OR_RETURN(AnchorRecord parsed, ParseAnchorRecord(rec, c_index, where));
  COFFER_ASSIGN_OR_RETURN(auto mac, Mac(ByteSpan(rec.data(), kMacOffset)));
  if (!ConstantTimeEquals(ByteSpan(mac), ByteSpan(rec.data() + kMacOffset, 32))) {
    return DataLoss(where + ": record MAC does not verify: it was forged" +
                    std::string(pcrs_.empty() ? "" : ", or PCRs " + PcrSelectionToString(pcrs_) +
                                                         " changed since it was written"));
  }
  uint64_t written_at = parsed.written_at;
  COFFER_ASSIGN_OR_RETURN(uint64_t now, tpm_.NvReadCounter(c_index));
  if (written_at == now) {
    // current
  } else if (written_at == now + 1) {
    // Commit wrote the record and lost power before the increment: finish it.
    COFFER_RETURN_IF_ERROR(tpm_.NvIncrement(c_index));
  } else if (written_at < now) {
    return DataLoss(where + ": the record was written at NV counter " + std::to_string(written_at) +
                    " but the counter is at " + std::to_string(now) +
                    ": an older record was restored (rollback of the anchor)");
  } else {
    return DataLoss(where + ": the record is ahead of the NV counter (" + std::to_string(written_at) + " > " +
                    std::to_string(now) + "): the counter was re-created");
  }
  st.fresh = false;
  st.tpm_counter = written_at;
  st.entries = std::move(parsed.entries);
  return st;
}

Status Tpm2NvAnchor::WriteState(State& st) {
  const uint32_t c_index = counter_index_, d_index = counter_index_ + 1;
  if (st.entries.size() > kAnchorMaxVolumes) {
    return NoSpace(Describe() + " holds at most " + std::to_string(kAnchorMaxVolumes) +
                   " volumes; use another nv= handle for more");
  }
  if (st.fresh) {
    // First use: the record index, then the counter, then one increment so the counter has a value
    // (a new counter starts at the highest count any counter on this TPM ever had).
    COFFER_ASSIGN_OR_RETURN(auto d, tpm_.NvInfoOf(d_index));
    if (!d) COFFER_RETURN_IF_ERROR(tpm_.NvDefineOrdinary(d_index, kAnchorRecordSize));
    COFFER_ASSIGN_OR_RETURN(auto c, tpm_.NvInfoOf(c_index));
    if (!c) COFFER_RETURN_IF_ERROR(tpm_.NvDefineCounter(c_index));
    if (!c || !c->written) COFFER_RETURN_IF_ERROR(tpm_.NvIncrement(c_index));
  }
  COFFER_ASSIGN_OR_RETURN(uint64_t now, tpm_.NvReadCounter(c_index));
  Bytes rec(kAnchorRecordSize, 0);
  std::memcpy(rec.data(), kMagic, 8);
  PutLe16(rec.data() + 8, kVersion);
  PutLe16(rec.data() + 10, uint16_t(st.entries.size()));
  PutLe32(rec.data() + 12, c_index);
  PutLe64(rec.data() + 16, now + 1);  // the value the counter has once this commit completes
  for (size_t i = 0; i < st.entries.size(); ++i) {
    uint8_t* e = rec.data() + kHeaderSize + i * kEntrySize;
    std::memcpy(e, st.entries[i].first.data(), 16);
    PutLe64(e + 16, st.entries[i].second.counter);
    std::memcpy(e + 24, st.entries[i].second.root.data(), 32);
  }
  COFFER_ASSIGN_OR_RETURN(auto mac, Mac(ByteSpan(rec.data(), kMacOffset)));
  std::memcpy(rec.data() + kMacOffset, mac.data(), 32);
  // Record first, then the increment: a power cut in between leaves written_at == counter + 1,
  // which ReadState completes; no order leaves an acceptable record older than the counter.
  COFFER_RETURN_IF_ERROR(tpm_.NvWrite(d_index, rec));
  COFFER_RETURN_IF_ERROR(tpm_.NvIncrement(c_index));
  st.tpm_counter = now + 1;
  st.fresh = false;
  return Status::Ok();
}

Result<std::optional<AnchorEntry>> Tpm2NvAnchor::Load(const VolumeId& id) {
  COFFER_ASSIGN_OR_RETURN(State st, ReadState());
  for (auto& [vid, entry] : st.entries) {
    if (vid == id) return std::optional<AnchorEntry>(entry);
  }
  return std::optional<AnchorEntry>();
}

Status Tpm2NvAnchor::Commit(const VolumeId& id, const AnchorEntry& entry) {
  COFFER_ASSIGN_OR_RETURN(State st, ReadState());
  auto it = std::find_if(st.entries.begin(), st.entries.end(), [&](auto& e) { return e.first == id; });
  if (it != st.entries.end()) {
    if (entry.counter < it->second.counter) {
      return FailedPrecondition(Describe() + " has seen commit " + std::to_string(it->second.counter) +
                                "; refusing to move back to " + std::to_string(entry.counter));
    }
    if (entry.counter == it->second.counter) {
      if (entry.root != it->second.root) {
        return FailedPrecondition(Describe() + " holds a different root at commit " + std::to_string(entry.counter) +
                                  " (two writers?)");
      }
      return Status::Ok();  // already recorded: spare the TPM an NV write
    }
    it->second = entry;
  } else {
    st.entries.emplace_back(id, entry);
  }
  return WriteState(st);
}

Status Tpm2NvAnchor::Forget(const VolumeId& id) {
  COFFER_ASSIGN_OR_RETURN(State st, ReadState());
  auto it = std::find_if(st.entries.begin(), st.entries.end(), [&](auto& e) { return e.first == id; });
  if (it == st.entries.end()) return Status::Ok();
  st.entries.erase(it);
  return WriteState(st);
}

}  // namespace coffer::tpm
