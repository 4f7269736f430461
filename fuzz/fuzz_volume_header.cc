// Fuzzes the sealed volume header parser: any input must parse or fail cleanly (kDataLoss,
// kNotFound, kUnsupported), and a parsed header must re-encode to the same body bytes.
#include <cstring>

#include "volume/volume_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  auto h = volume_format::ParseHeader({data, size}, "fuzz");
  if (!h.ok()) {
    auto c = h.status().code();
    if (c != StatusCode::kDataLoss && c != StatusCode::kNotFound && c != StatusCode::kUnsupported) __builtin_trap();
    return 0;
  }
  Bytes again = volume_format::EncodeHeaderBody(*h);
  auto h2 = volume_format::ParseHeader(again, "fuzz");  // unsealed: checksum must now fail
  if (h2.ok()) __builtin_trap();
  return 0;
}
