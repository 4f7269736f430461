// Whole-folder operations: encrypt a plaintext tree into an rclone crypt tree and back.
// Each file is written to a temporary name in its destination folder and renamed only after it
// was completely written (decrypt: completely authenticated), so a failed or tampered file never
// leaves plaintext behind. Errors on one file do not stop the others; the report lists them all.
// Thread-compatible: one call at a time per destination.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "coffer/base/status.h"
#include "coffer/rclone/file_cipher.h"
#include "coffer/rclone/name_cipher.h"

namespace coffer::rclone {

struct TreeProgress {
  uint64_t files_done = 0, files_total = 0;
  uint64_t bytes_done = 0, bytes_total = 0;
};

struct TreeOptions {
  int threads = 2;
  // Called from worker threads, at most every few milliseconds.
  std::function<void(const TreeProgress&)> progress;
  // Called for every warning (skipped symlink, special file...). May be called from any thread.
  std::function<void(const std::string&)> warn;
};

struct TreeFileError {
  std::string path;  // source path relative to the source root
  Status status;
};

struct TreeReport {
  uint64_t files = 0, dirs = 0, bytes = 0;  // plaintext bytes
  std::vector<TreeFileError> errors;
  // OK, or the most serious error (kDataLoss first) with a summary message.
  Status status() const;
};

// One file of a listing: both names and sizes.
struct TreeEntry {
  std::string plain_path;      // relative, '/'-separated
  std::string encrypted_path;  // relative, '/'-separated
  bool is_dir = false;
  uint64_t encrypted_size = 0;
  uint64_t plain_size = 0;  // from the encrypted size
};

TreeReport EncryptTree(const NameCipher& names, const FileCipher& files, const std::string& src,
                       const std::string& dst, const TreeOptions& options);
TreeReport DecryptTree(const NameCipher& names, const FileCipher& files, const std::string& src,
                       const std::string& dst, const TreeOptions& options);

// Authenticates every name and every chunk of an encrypted tree, writing nothing.
TreeReport VerifyTree(const NameCipher& names, const FileCipher& files, const std::string& root,
                      const TreeOptions& options);

// Lists an encrypted tree, decrypting names only. Entries whose names do not decrypt are reported
// in `errors` (kDataLoss) and left out.
std::vector<TreeEntry> ListEncryptedTree(const NameCipher& names, const std::string& root,
                                         std::vector<TreeFileError>* errors);

// Reserved names inside an encrypted folder that are never treated as encrypted files.
bool IsReservedName(std::string_view name);

}  // namespace coffer::rclone
