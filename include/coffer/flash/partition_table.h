// ESP-IDF partition tables: the CSV that gen_esp32part.py (ESP-IDF v5.5.5) reads, with its offset
// and alignment assignment and its checks, and the 0xC00-byte binary table (32-byte entries, an MD5
// entry, 0xFF padding) it writes. Also the otadata sectors that select the boot slot.
// Pure value types and functions; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"

namespace coffer::flash {

inline constexpr uint8_t kPartTypeApp = 0x00;
inline constexpr uint8_t kPartTypeData = 0x01;
inline constexpr uint8_t kPartTypeBootloader = 0x02;
inline constexpr uint8_t kPartTypePartitionTable = 0x03;
inline constexpr uint8_t kSubtypeAppFactory = 0x00;
inline constexpr uint8_t kSubtypeAppOtaMin = 0x10;  // ota_0 .. ota_15
inline constexpr uint8_t kSubtypeAppTest = 0x20;
inline constexpr uint8_t kSubtypeDataOta = 0x00;
inline constexpr uint8_t kSubtypeDataNvs = 0x02;
inline constexpr uint8_t kSubtypeDataCoredump = 0x03;
inline constexpr uint8_t kSubtypeDataNvsKeys = 0x04;
inline constexpr uint8_t kSubtypeDataTeeOta = 0x90;
inline constexpr uint32_t kPartitionTableSize = 0x1000;   // the flash sector the table occupies
inline constexpr uint32_t kPartitionTableBinLength = 0xC00;  // gen_esp32part's binary length
inline constexpr uint32_t kOtadataSize = 0x2000;

struct Partition {
  std::string name;  // at most 16 bytes
  uint8_t type = 0;
  uint8_t subtype = 0;
  uint32_t offset = 0;
  uint32_t size = 0;
  bool encrypted = false;  // CSV flag "encrypted" (bit 0)
  bool readonly = false;   // CSV flag "readonly" (bit 1)
  int line = 0;            // CSV line it came from (0 if parsed from binary)

  bool is_app() const { return type == kPartTypeApp; }
  bool is_ota_app() const { return type == kPartTypeApp && subtype >= kSubtypeAppOtaMin && subtype < kSubtypeAppOtaMin + 16; }
  bool is_otadata() const { return type == kPartTypeData && subtype == kSubtypeDataOta; }
  // Whether ESP-IDF treats it as encrypted once flash encryption is on: app, bootloader and
  // partition-table partitions, otadata, TEE otadata and nvs_keys always; others by their flag.
  bool flash_encrypted() const;
  std::string TypeName() const;
  std::string SubtypeName() const;
};

struct PartitionTableOptions {
  uint32_t table_offset = 0x8000;               // --offset
  std::optional<uint32_t> primary_bootloader_offset;  // for 'bootloader' type entries
  std::optional<uint32_t> flash_size;           // --flash-size: table must fit
  // $VAR expansion (gen_esp32part uses os.path.expandvars); nullptr = no variables defined.
  std::function<std::optional<std::string>(const std::string&)> env;
};

class PartitionTable {
 public:
  // Parses and verifies CSV text like `gen_esp32part.py` (errors are kInvalidArgument naming the
  // line and the problem).
  static Result<PartitionTable> FromCsv(std::string_view csv, const PartitionTableOptions& options = {});
  // Parses a binary table (checks magic, MD5, end marker).
  static Result<PartitionTable> FromBinary(ByteSpan data);

  const std::vector<Partition>& partitions() const { return parts_; }
  const Partition* Find(std::string_view name) const;
  const Partition* Otadata() const;
  std::vector<const Partition*> OtaSlots() const;  // by subtype order
  uint32_t table_offset() const { return table_offset_; }
  // End of the last partition.
  uint64_t FlashSize() const;

  // The 0xC00-byte binary gen_esp32part writes.
  Result<Bytes> ToBinary() const;
  std::string ToCsv() const;

 private:
  std::vector<Partition> parts_;
  uint32_t table_offset_ = 0x8000;
};

// One 32-byte esp_ota_select_entry_t.
struct OtaSelectEntry {
  uint32_t seq = 0xFFFFFFFF;
  uint8_t label[20];
  uint32_t state = 0xFFFFFFFF;  // ESP_OTA_IMG_UNDEFINED
  uint32_t crc = 0xFFFFFFFF;
};

// The CRC the bootloader checks: zlib crc32 of the 4-byte LE seq with 0xFFFFFFFF as the running
// value (binascii.crc32(seq_le, 0xFFFFFFFF)), which is not the standard CRC-32 of seq.
uint32_t OtadataCrc(uint32_t seq);
// The 8 KiB otadata partition that boots OTA slot `slot` (0 = ota_0): sector 0 holds seq slot+1
// (label all 0xFF, state UNDEFINED), sector 1 is erased. nullopt slot = all erased (boot factory).
Bytes MakeOtadata(std::optional<uint32_t> slot);
// Which OTA slot index the otadata selects given the number of OTA slots (nullopt: none valid).
std::optional<uint32_t> OtadataBootSlot(ByteSpan otadata, uint32_t ota_slot_count);

}  // namespace coffer::flash
