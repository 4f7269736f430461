// Key files: 32 random bytes from the OS CSPRNG in a small self-checking file (magic, version,
// key, BLAKE2b checksum; docs/format/key_file.md), written atomically with mode 0600 so power loss
// at any byte leaves no file or a whole one. Keys are returned in SecretBytes. Thread-safe.
#pragma once

#include <string>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer {

constexpr size_t kKeyFileSize = 64;
constexpr size_t kKeyFileKeySize = 32;

// Encodes a 32-byte key into the 64-byte key file image (held in SecretBytes: it contains the key).
SecretBytes EncodeKeyFile(const SecretBytes& key);
// Decodes a key file image. kUnauthenticated (the key cannot be used) naming the problem: wrong
// size, bad magic, checksum mismatch; kUnsupported for an unknown version.
Result<SecretBytes> DecodeKeyFile(const SecretBytes& image, const std::string& name);

// Creates a new random key file at path. kAlreadyExists if it exists and !force.
Status CreateKeyFile(const std::string& path, bool force);
// Reads and decodes a key file (kNotFound if missing).
Result<SecretBytes> ReadKeyFile(const std::string& path);

}  // namespace coffer
