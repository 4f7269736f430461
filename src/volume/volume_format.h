// The sealed volume's on-store layout and header codec (docs/format/volume.md). Internal to the
// volume module. Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "coffer/base/bytes.h"
#include "coffer/crypt/hash.h"
#include "coffer/keys/anchor.h"
#include "coffer/keys/unlock.h"
#include "coffer/volume/sealed_volume.h"

namespace coffer::volume_format {

// Version 2 (current) makes a sector's leaf its (version, nonce) bytes; version 1 hashed them with
// the tag. Both are read and written (a volume keeps its version); new volumes are version 2.
constexpr uint16_t kFormatVersion = 2;
constexpr uint16_t kOldestFormatVersion = 1;
constexpr uint32_t kHeaderSize = 4096;
constexpr size_t kSlotCount = 8;
constexpr size_t kSlotSize = 432;
constexpr size_t kSlotsOffset = 144;
constexpr size_t kMacOffset = 4032;
constexpr size_t kChecksumOffset = 4064;
constexpr size_t kSectorOverhead = 8 + 24 + 16;  // version, nonce, tag
constexpr size_t kNonceSize = 24;

// Where everything lives, in records of the store.
struct Layout {
  uint32_t sector_size = 0;
  uint32_t record_size = 0;
  uint64_t sector_count = 0;
  uint32_t records_per_sector = 0;
  uint32_t fanout = 0;
  uint32_t records_per_node = 0;
  uint32_t header_records = 0;
  uint64_t first_sector_record = 0;
  uint64_t first_tree_record = 0;
  uint64_t records_used = 0;
  // Tree levels: level l (1-based) has level_nodes[l-1] nodes starting at node index level_start[l-1].
  std::vector<uint64_t> level_nodes, level_start;
  uint64_t total_nodes = 0;

  uint32_t tree_levels() const { return uint32_t(level_nodes.size()); }
};

// Layout for sector_count sectors of sector_size on records of record_size.
Result<Layout> MakeLayout(uint32_t sector_size, uint32_t record_size, uint64_t sector_count);
// The largest layout with at most max_sectors sectors that fits in record_count records.
Result<Layout> FitLayout(uint32_t sector_size, uint32_t record_size, uint64_t record_count, uint64_t max_sectors);
// The record size a store of our own choosing should use for sector_size.
inline uint32_t PreferredRecordSize(uint32_t sector_size) { return sector_size + uint32_t(kSectorOverhead); }

struct Slot {
  KeySlotType type = KeySlotType::kEmpty;
  std::array<uint8_t, 16> key_id{};
  std::array<uint8_t, 24> wrap_nonce{};
  std::array<uint8_t, 48> wrapped{};  // ciphertext(32) || tag(16)
  Bytes params;
};

struct Header {
  uint16_t version = kFormatVersion;
  CipherSuite suite = CipherSuite::kXChaCha20Poly1305;
  VolumeId id{};
  Layout layout;
  uint64_t counter = 0;
  std::array<uint8_t, 32> root{};
  uint64_t sealed_writes = 0;
  std::array<Slot, kSlotCount> slots;
};

// Encodes the header without MAC/checksum (bytes [0, kMacOffset) meaningful, rest zero).
Bytes EncodeHeaderBody(const Header& h);
// Fills the MAC (keyed by mac_key) and the checksum of an encoded header.
void SealHeader(Bytes& encoded, ByteSpan mac_key);
// Checks the checksum and version and decodes. kDataLoss for anything malformed (the store is the
// attacker's), kUnsupported for a well-formed header of another version, kNotFound for an all-zero
// header (no volume here).
Result<Header> ParseHeader(ByteSpan bytes, const std::string& where);
// Verifies the header MAC in constant time.
bool VerifyHeaderMac(ByteSpan encoded, ByteSpan mac_key);

}  // namespace coffer::volume_format
