// libFuzzer target for the TPM 2.0 parsers that see untrusted bytes or text: key-slot parameters
// (from a volume header), the anchor record (from TPM NV, before its MAC is checked) and the
// tpm2: spec / PCR selection text. None needs a TPM.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coffer/tpm/tpm2_anchor.h"
#include "coffer/tpm/tpm2_keyspec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  using namespace coffer::tpm;
  ByteSpan in(data, size);
  auto blob = DecodeSlotParams(in);
  if (blob.ok()) {
    auto again = EncodeSlotParams(*blob);
    if (!again.ok() || Bytes(in.begin(), in.end()) != *again) __builtin_trap();  // canonical round trip
  }
  (void)ParseAnchorRecord(in, 0x01500020, "fuzz");
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ParseTpm2Spec(text, true);
  (void)ParseTpm2Spec(text, false);
  (void)ParsePcrSelection(text);
  return 0;
}
