// Factory flash images: from a partition CSV, a key and the images, write the whole flash with
// everything flash encryption covers encrypted at its own address (bootloader, partition table,
// apps, otadata, partitions flagged encrypted; never nvs), an otadata that boots the chosen slot,
// and a JSON manifest of what is where. InspectImage decrypts an image back and checks it; OTA
// variants encrypt one app for every OTA slot. Streams inputs in bounded memory. Not thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "coffer/flash/flash_cipher.h"
#include "coffer/flash/flash_io.h"
#include "coffer/flash/partition_table.h"

namespace coffer::flash {

struct ChipInfo {
  std::string name;
  Scheme scheme;
  uint32_t bootloader_offset;
  std::vector<size_t> key_file_lengths;  // key file sizes the chip's eFuse key block accepts
};

// esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c5, esp32c6, esp32c61, esp32h2, esp32p4.
Result<ChipInfo> LookupChip(std::string_view name);
std::string KnownChips();

struct NamedFile {
  std::string partition;
  std::string path;
};
// Parses "NAME=FILE".
Result<NamedFile> ParseNamedFile(std::string_view arg);

struct ImageSpec {
  ChipInfo chip;
  PartitionTable table;
  std::string bootloader_path;
  std::vector<NamedFile> apps, data;
  std::optional<std::string> boot_slot;  // partition name; default: factory, else the first OTA slot with an app
  uint32_t flash_crypt_conf = 0xF;
  std::optional<uint64_t> flash_size;    // default: end of the last partition
};

// Writes the image to out_path and returns the manifest (also what `--json` prints).
Result<nlohmann::json> BuildImage(const FlashKey& key, const ImageSpec& spec, const std::string& out_path,
                                  const ProgressFn& progress = nullptr);

struct InspectOptions {
  std::optional<ChipInfo> chip;          // default: detected from the partition table
  uint32_t table_offset = 0x8000;
  uint32_t flash_crypt_conf = 0xF;
  std::optional<PartitionTable> expected_table;  // --partitions: must match the image's table
  std::optional<nlohmann::json> manifest;        // a BuildImage manifest: every hash must match
};

// Decrypts and checks an image. Returns a report; a manifest hash or table mismatch is kDataLoss,
// an undecryptable partition table (wrong key or not an encrypted image) kUnauthenticated.
Result<nlohmann::json> InspectImage(const FlashKey& key, const std::string& image_path, const InspectOptions& options);

// One encrypted variant of app_path per OTA slot in the table (DIR/<slot>.bin) plus DIR/manifest.json.
Result<nlohmann::json> BuildOtaVariants(const FlashKey& key, const ChipInfo& chip, const PartitionTable& table,
                                        const std::string& app_path, const std::string& out_dir,
                                        uint32_t flash_crypt_conf = 0xF, const ProgressFn& progress = nullptr);

}  // namespace coffer::flash
