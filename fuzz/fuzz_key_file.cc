// Fuzzes the key file decoder: any input decodes to a 32-byte key or fails with a clear status.
#include "coffer/keys/key_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace coffer;
  auto key = DecodeKeyFile(SecretBytes::CopyOf({data, size}), "fuzz");
  if (key.ok() && key->size() != 32) __builtin_trap();
  if (key.ok() && !DecodeKeyFile(EncodeKeyFile(*key), "fuzz").ok()) __builtin_trap();
  return 0;
}
