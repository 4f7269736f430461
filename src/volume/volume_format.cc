#include "volume/volume_format.h"

#include <algorithm>
#include <cstring>

namespace coffer::volume_format {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'V', 'O', 'L', 'U', 'M', 'E'};

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

Status Tampered(const std::string& where, const std::string& what) {
  return DataLoss("the volume header on " + where + " " + what +
                  ": the store was corrupted or tampered with (or this is not a coffer volume)");
}

}  // namespace

Result<Layout> MakeLayout(uint32_t sector_size, uint32_t record_size, uint64_t sector_count) {
  if (sector_size < 256 || sector_size > 65536 || (sector_size & (sector_size - 1)) != 0) {
    return InvalidArgument("sector size " + std::to_string(sector_size) + " must be a power of two from 256 to 65536");
  }
  if (record_size == 0 || record_size > (1u << 20)) return InvalidArgument("record size out of range");
  if (sector_count < 2 || sector_count > (uint64_t(1) << 32) - 1) {
    return InvalidArgument("a volume needs 2 to 2^32-1 sectors (got " + std::to_string(sector_count) + ")");
  }
  Layout l;
  l.sector_size = sector_size;
  l.record_size = record_size;
  l.sector_count = sector_count;
  l.records_per_sector = uint32_t(CeilDiv(sector_size + kSectorOverhead, record_size));
  l.fanout = std::clamp<uint32_t>(record_size / 32, 4, 128);
  l.records_per_node = uint32_t(CeilDiv(uint64_t(l.fanout) * 32, record_size));
  l.header_records = uint32_t(CeilDiv(kHeaderSize, record_size));
  uint64_t count = sector_count;
  do {
    count = CeilDiv(count, l.fanout);
    l.level_start.push_back(l.total_nodes);
    l.level_nodes.push_back(count);
    l.total_nodes += count;
  } while (count > 1);
  l.first_sector_record = l.header_records;
  l.first_tree_record = l.first_sector_record + sector_count * l.records_per_sector;
  l.records_used = l.first_tree_record + l.total_nodes * l.records_per_node;
  return l;
}

Result<Layout> FitLayout(uint32_t sector_size, uint32_t record_size, uint64_t record_count, uint64_t max_sectors) {
  uint64_t lo = 0, hi = std::min<uint64_t>(max_sectors, record_count);
  while (lo < hi) {  // largest n in [2, hi] that fits
    uint64_t mid = lo + (hi - lo + 1) / 2;
    auto l = MakeLayout(sector_size, record_size, std::max<uint64_t>(mid, 2));
    if (!l.ok()) return l.status();
    if (l->records_used <= record_count) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  if (lo < 2) {
    return NoSpace("the store (" + std::to_string(record_count) + " records of " + std::to_string(record_size) +
                   " bytes) is too small for a volume of " + std::to_string(sector_size) + "-byte sectors");
  }
  return MakeLayout(sector_size, record_size, lo);
}

Bytes EncodeHeaderBody(const Header& h) {
  Bytes b(kHeaderSize, 0);
  uint8_t* p = b.data();
  const Layout& l = h.layout;
  std::memcpy(p, kMagic, 8);
  PutLe16(p + 8, h.version);
  PutLe16(p + 10, uint16_t(kHeaderSize));
  PutLe16(p + 12, uint16_t(h.suite));
  std::memcpy(p + 16, h.id.data(), 16);
  PutLe32(p + 32, l.sector_size);
  PutLe32(p + 36, l.record_size);
  PutLe64(p + 40, l.sector_count);
  PutLe64(p + 48, l.records_used);
  PutLe32(p + 56, l.records_per_sector);
  PutLe32(p + 60, l.fanout);
  PutLe32(p + 64, l.records_per_node);
  PutLe32(p + 68, l.header_records);
  PutLe64(p + 72, l.first_sector_record);
  PutLe64(p + 80, l.first_tree_record);
  PutLe64(p + 88, h.counter);
  std::memcpy(p + 96, h.root.data(), 32);
  PutLe64(p + 128, h.sealed_writes);
  for (size_t k = 0; k < kSlotCount; ++k) {
    const Slot& s = h.slots[k];
    uint8_t* q = p + kSlotsOffset + k * kSlotSize;
    if (s.type == KeySlotType::kEmpty) continue;
    q[0] = uint8_t(s.type);
    q[1] = 1;
    PutLe16(q + 2, uint16_t(s.params.size()));
    std::memcpy(q + 8, s.key_id.data(), 16);
    std::memcpy(q + 24, s.wrap_nonce.data(), 24);
    std::memcpy(q + 48, s.wrapped.data(), 48);
    if (!s.params.empty()) std::memcpy(q + 96, s.params.data(), std::min(s.params.size(), kMaxSlotParams));
  }
  return b;
}

void SealHeader(Bytes& b, ByteSpan mac_key) {
  Blake2bKeyed({b.data() + kMacOffset, 32}, mac_key, {ByteSpan(b.data(), kMacOffset)});
  Hash256 sum = Blake2b256({ByteSpan(b.data(), kChecksumOffset)});
  std::memcpy(b.data() + kChecksumOffset, sum.data(), 32);
}

bool VerifyHeaderMac(ByteSpan b, ByteSpan mac_key) {
  uint8_t mac[32];
  Blake2bKeyed(mac, mac_key, {b.subspan(0, kMacOffset)});
  return ConstantTimeEquals(mac, b.subspan(kMacOffset, 32));
}

Result<Header> ParseHeader(ByteSpan b, const std::string& where) {
  if (b.size() < kHeaderSize) return Tampered(where, "is truncated");
  if (std::all_of(b.begin(), b.begin() + kHeaderSize, [](uint8_t x) { return x == 0; })) {
    return NotFound("no sealed volume on " + where + " (its header is blank); create one with 'coffer volume create'");
  }
  const uint8_t* p = b.data();
  if (std::memcmp(p, kMagic, 8) != 0) return Tampered(where, "has a bad magic");
  uint16_t version = GetLe16(p + 8);
  uint32_t header_size = GetLe16(p + 10);
  if (header_size < 64 || header_size > b.size()) return Tampered(where, "has an impossible header size");
  Hash256 sum = Blake2b256({b.subspan(0, header_size - 32)});
  if (std::memcmp(sum.data(), p + header_size - 32, 32) != 0) return Tampered(where, "fails its checksum");
  if (version < kOldestFormatVersion || version > kFormatVersion) {
    return Unsupported("the volume on " + where + " uses format version " + std::to_string(version) +
                       "; this coffer reads versions " + std::to_string(kOldestFormatVersion) + " to " +
                       std::to_string(kFormatVersion) + ": upgrade coffer to open it");
  }
  if (header_size != kHeaderSize) {
    return Tampered(where, "has the wrong header size for version " + std::to_string(version));
  }
  Header h;
  h.version = version;
  uint16_t suite = GetLe16(p + 12);
  if (suite != uint16_t(CipherSuite::kXChaCha20Poly1305) && suite != uint16_t(CipherSuite::kAes256Gcm)) {
    return Unsupported("the volume on " + where + " uses cipher suite " + std::to_string(suite) +
                       ", unknown to this coffer: upgrade coffer");
  }
  h.suite = CipherSuite(suite);
  std::memcpy(h.id.data(), p + 16, 16);
  auto layout = MakeLayout(GetLe32(p + 32), GetLe32(p + 36), GetLe64(p + 40));
  if (!layout.ok()) return Tampered(where, "has an impossible geometry (" + layout.status().message() + ")");
  const Layout& l = *layout;
  if (GetLe64(p + 48) != l.records_used || GetLe32(p + 56) != l.records_per_sector || GetLe32(p + 60) != l.fanout ||
      GetLe32(p + 64) != l.records_per_node || GetLe32(p + 68) != l.header_records ||
      GetLe64(p + 72) != l.first_sector_record || GetLe64(p + 80) != l.first_tree_record) {
    return Tampered(where, "has an inconsistent geometry");
  }
  h.layout = l;
  h.counter = GetLe64(p + 88);
  std::memcpy(h.root.data(), p + 96, 32);
  h.sealed_writes = GetLe64(p + 128);
  for (size_t k = 0; k < kSlotCount; ++k) {
    const uint8_t* q = p + kSlotsOffset + k * kSlotSize;
    Slot& s = h.slots[k];
    s.type = KeySlotType(q[0]);
    if (s.type == KeySlotType::kEmpty) continue;
    uint16_t plen = GetLe16(q + 2);
    if (q[1] != 1 || plen > kMaxSlotParams) return Tampered(where, "has a malformed key slot " + std::to_string(k));
    std::memcpy(s.key_id.data(), q + 8, 16);
    std::memcpy(s.wrap_nonce.data(), q + 24, 24);
    std::memcpy(s.wrapped.data(), q + 48, 48);
    s.params.assign(q + 96, q + 96 + plen);
  }
  return h;
}

}  // namespace coffer::volume_format
