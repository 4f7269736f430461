// libFuzzer target: rclone crypt file parsing (header, sizes, chunk framing) and the coffer crypt
// manifest parser on arbitrary bytes. Must never crash; any accepted file must re-encrypt to the
// same length.
#include <cstdint>
#include <cstdlib>

#include "coffer/rclone/file_cipher.h"
#include "coffer/rclone/manifest.h"

using namespace coffer;
using namespace coffer::rclone;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static RcloneKeys keys = std::move(DeriveKeys("", "").value());  // all-zero keys: no scrypt per input
  static FileCipher files(keys);
  ByteSpan in(data, size);
  (void)FileCipher::ParseHeader(in, "fuzz");
  (void)DecryptedSize(size);
  auto plain = files.DecryptBuffer(in, "fuzz");
  if (plain.ok() && EncryptedSize(plain->size()) != size) std::abort();
  (void)ParseManifest(in, keys);
  return 0;
}
