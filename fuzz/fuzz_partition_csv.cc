// libFuzzer target: the partition CSV parser (gen_esp32part semantics) and the binary table parser.
// Whatever the input, parsing must not crash, and a table that parses must serialize and parse back
// to the same binary.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "coffer/flash/partition_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer::flash;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  PartitionTableOptions o;
  o.primary_bootloader_offset = 0x1000;
  o.env = [](const std::string& name) -> std::optional<std::string> {
    if (name == "X") return std::string("0x10000");
    return std::nullopt;
  };
  auto t = PartitionTable::FromCsv(text, o);
  if (t.ok()) {
    auto bin = t->ToBinary();
    if (bin.ok()) {
      auto back = PartitionTable::FromBinary(*bin);
      if (!back.ok()) abort();
      auto again = back->ToBinary();
      if (!again.ok() || *again != *bin) abort();
    }
    (void)t->ToCsv();
  }
  auto b = PartitionTable::FromBinary(coffer::ByteSpan(data, size));
  if (b.ok()) (void)b->ToCsv();
  return 0;
}
