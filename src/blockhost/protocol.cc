#include "coffer/blockhost/protocol.h"

#include <cstring>
#include <unordered_set>

namespace coffer::blockhost {

Result<BatchView> ParseBatch(std::span<const uint8_t> body) {
  if (body.size() < kBatchHeaderSize) {
    return InvalidArgument("batch body is " + std::to_string(body.size()) + " bytes, shorter than its " +
                           std::to_string(kBatchHeaderSize) + "-byte header");
  }
  const uint8_t* p = body.data();
  if (std::memcmp(p, kBatchMagic, 4) != 0) return InvalidArgument("batch body does not start with magic CBHB");
  uint16_t version = GetLe16(p + 4);
  if (version != kProtocolVersion) {
    return Unsupported("batch format version " + std::to_string(version) + " (this host speaks 1)");
  }
  if (GetLe16(p + 6) != 0) return InvalidArgument("batch flags must be 0");
  BatchView b;
  std::memcpy(b.id.data(), p + 8, 16);
  b.generation = GetLe64(p + 24);
  b.record_size = GetLe32(p + 32);
  uint32_t count = GetLe32(p + 36);
  if (b.record_size == 0 || b.record_size > kMaxRecordSize) {
    return InvalidArgument("batch record size " + std::to_string(b.record_size) + " out of range");
  }
  uint64_t entry = 8 + uint64_t(b.record_size);
  if (count == 0) return InvalidArgument("batch has no records");
  if ((body.size() - kBatchHeaderSize) != entry * count) {
    return InvalidArgument("batch body is " + std::to_string(body.size()) + " bytes; " + std::to_string(count) +
                           " records of " + std::to_string(b.record_size) + " need " +
                           std::to_string(kBatchHeaderSize + entry * count));
  }
  std::unordered_set<uint64_t> seen;
  b.writes.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t* e = p + kBatchHeaderSize + i * entry;
    uint64_t index = GetLe64(e);
    if (!seen.insert(index).second) {
      return InvalidArgument("record " + std::to_string(index) + " appears twice in one batch");
    }
    b.writes.push_back({index, std::span<const uint8_t>(e + 8, b.record_size)});
  }
  return b;
}

Bytes EncodeBatch(const BatchId& id, uint64_t generation, uint32_t record_size,
                  std::span<const RecordWrite> writes) {
  Bytes out(kBatchHeaderSize);
  out.reserve(kBatchHeaderSize + writes.size() * (8 + record_size));
  std::memcpy(out.data(), kBatchMagic, 4);
  PutLe16(out.data() + 4, kProtocolVersion);
  PutLe16(out.data() + 6, 0);
  std::memcpy(out.data() + 8, id.data(), 16);
  PutLe64(out.data() + 24, generation);
  PutLe32(out.data() + 32, record_size);
  PutLe32(out.data() + 36, uint32_t(writes.size()));
  for (const RecordWrite& w : writes) {
    AppendLe64(out, w.index);
    Append(out, w.data);
  }
  return out;
}

bool IsValidVolumeName(std::string_view name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool ParseDecimal(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    uint64_t d = uint64_t(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

}  // namespace coffer::blockhost
