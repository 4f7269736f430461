#include "coffer/keys/key_file.h"

#include <cstring>

#include "coffer/base/file_util.h"
#include "coffer/crypt/hash.h"

namespace coffer {
namespace {

constexpr char kMagic[8] = {'C', 'F', 'K', 'E', 'Y', 'F', 'I', 'L'};
constexpr uint16_t kVersion = 1;
constexpr uint16_t kTypeRaw256 = 1;

}  // namespace

SecretBytes EncodeKeyFile(const SecretBytes& key) {
  SecretBytes image(kKeyFileSize);
  uint8_t* p = image.reveal().data();
  std::memcpy(p, kMagic, 8);
  PutLe16(p + 8, kVersion);
  PutLe16(p + 10, kTypeRaw256);
  std::memcpy(p + 16, key.reveal().data(), kKeyFileKeySize);
  Blake2bKeyed({p + 48, 16}, {}, {ByteSpan(p, 48)});
  return image;
}

Result<SecretBytes> DecodeKeyFile(const SecretBytes& image, const std::string& name) {
  const uint8_t* p = image.reveal().data();
  if (image.size() != kKeyFileSize || std::memcmp(p, kMagic, 8) != 0) {
    return Unauthenticated(name + " is not a coffer key file (" + std::to_string(image.size()) +
                           " bytes, expected a 64-byte file made by 'coffer key new')");
  }
  uint8_t sum[16];
  Blake2bKeyed(sum, {}, {ByteSpan(p, 48)});
  if (!ConstantTimeEquals(sum, ByteSpan(p + 48, 16))) {
    return Unauthenticated("key file " + name + " is corrupt (checksum mismatch)");
  }
  uint16_t version = GetLe16(p + 8);
  if (version != kVersion || GetLe16(p + 10) != kTypeRaw256) {
    return Unsupported("key file " + name + " has format version " + std::to_string(version) +
                       "; this coffer reads version 1: upgrade coffer");
  }
  return SecretBytes::CopyOf(ByteSpan(p + 16, kKeyFileKeySize));
}

Status CreateKeyFile(const std::string& path, bool force) {
  SecretBytes key = SecretBytes::Random(kKeyFileKeySize);
  SecretBytes image = EncodeKeyFile(key);
  Status s = WriteFileAtomic(path, image.reveal(), {.mode = 0600, .overwrite = force});
  if (s.code() == StatusCode::kAlreadyExists) {
    return AlreadyExists(path + " already exists; refusing to overwrite a key (use --force if you mean it)");
  }
  return s;
}

Result<SecretBytes> ReadKeyFile(const std::string& path) {
  auto image = ReadSecretFile(path, 4096);
  if (!image.ok()) {
    if (image.status().code() == StatusCode::kInvalidArgument) {
      return Unauthenticated(path + " is not a coffer key file: " + image.status().message());
    }
    return image.status();
  }
  return DecodeKeyFile(*image, path);
}

}  // namespace coffer
