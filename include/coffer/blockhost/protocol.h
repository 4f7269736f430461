// Block host protocol v1 wire pieces shared by the server (src/blockhost) and the client
// (src/remote): the batch body codec and volume-name rules. docs/format/blockhost_protocol.md is the
// byte-level reference. Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"
#include "coffer/blockdev/backing_store.h"

namespace coffer::blockhost {

inline constexpr char kBatchMagic[4] = {'C', 'B', 'H', 'B'};
inline constexpr uint16_t kProtocolVersion = 1;
inline constexpr size_t kBatchHeaderSize = 40;
inline constexpr uint32_t kMaxRecordSize = 1 << 20;
// Geometry of the original disk host (DESIGN 1.1): 16384 records of 256 data + 16 tag bytes.
inline constexpr uint32_t kCompatRecordSize = 272;
inline constexpr uint64_t kCompatRecordCount = 16384;

using BatchId = std::array<uint8_t, 16>;

struct BatchView {
  BatchId id{};
  uint64_t generation = 0;
  uint32_t record_size = 0;
  std::vector<RecordWrite> writes;  // point into the parsed body
};

// Parses a batch body; checks magic, version, sizes, and that indices are distinct. Does not know
// the volume, so the caller checks record_size and bounds.
Result<BatchView> ParseBatch(std::span<const uint8_t> body);
Bytes EncodeBatch(const BatchId& id, uint64_t generation, uint32_t record_size,
                  std::span<const RecordWrite> writes);

// Volume names: 1..64 of [A-Za-z0-9._-], not starting with '.'.
bool IsValidVolumeName(std::string_view name);
// Strict unsigned decimal (no sign, no spaces, no leading '+', fits uint64).
bool ParseDecimal(std::string_view text, uint64_t& out);

}  // namespace coffer::blockhost
