// Small file helpers with the durability rules coffer needs: atomic replace (temp file, fsync,
// rename, fsync of the directory) so power loss at any byte leaves the old or the new file, and
// exact permissions (key files 0600) set before any byte is written. Thread-compatible.
#pragma once

#include <string>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer {

Result<Bytes> ReadFileBytes(const std::string& path);
// Reads a file straight into locked memory (for key files and passwords).
Result<SecretBytes> ReadSecretFile(const std::string& path, size_t max_size = 1 << 20);

struct AtomicWriteOptions {
  unsigned mode = 0600;
  bool overwrite = true;  // false: fail with kAlreadyExists if path exists
};
// Writes data to path atomically and durably.
Status WriteFileAtomic(const std::string& path, ByteSpan data, AtomicWriteOptions options = {});

// pwrite/pread of the whole range, retrying on EINTR and short transfers; `what` names the file in
// errors. A read that meets the end of the file is reported with `short_read` (kDataLoss for stores
// whose contents the attacker controls, kCorrupt for a server's own files).
Status PwriteAll(int fd, const uint8_t* data, size_t size, uint64_t offset, const std::string& what);
Status PreadAll(int fd, uint8_t* out, size_t size, uint64_t offset, const std::string& what,
                StatusCode short_read = StatusCode::kDataLoss);

// fsync of the directory holding path (after a rename or create).
Status SyncParentDirectory(const std::string& path);

}  // namespace coffer
