// Streaming file helpers for the flash tools: an output written to a temporary file beside its final
// path and renamed into place only on Commit (so a failed command never leaves an output file), a
// chunked input reader, and TransformFile, which runs espsecure's encrypt/decrypt over a file in
// bounded memory. Objects are single-owner and not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"
#include "coffer/flash/flash_cipher.h"

namespace coffer::flash {

// Called with (bytes done, bytes total) as a long operation advances.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

class AtomicOutput {
 public:
  AtomicOutput() = default;
  ~AtomicOutput();  // removes the temporary file unless committed
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;
  AtomicOutput(AtomicOutput&& o) noexcept;
  AtomicOutput& operator=(AtomicOutput&& o) noexcept;

  // mode: final permissions (0644 for ciphertext, 0600 for plaintext or keys).
  static Result<AtomicOutput> Create(const std::string& path, unsigned mode = 0644, bool overwrite = true);
  Status Write(ByteSpan data);
  Status WriteAt(uint64_t offset, ByteSpan data);
  // Extends (or fills) to `size` bytes with `fill` from the current end.
  Status FillTo(uint64_t size, uint8_t fill);
  uint64_t size() const { return size_; }
  // fsync, rename over the final path, fsync the directory.
  Status Commit();
  const std::string& path() const { return path_; }

 private:
  void Abandon();
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t size_ = 0;
  bool overwrite_ = true;
};

class InputFile {
 public:
  ~InputFile();
  InputFile() = default;
  InputFile(InputFile&& o) noexcept;
  InputFile& operator=(InputFile&& o) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  // Opens a regular file for reading (kNotFound if it does not exist).
  static Result<InputFile> Open(const std::string& path);
  uint64_t size() const { return size_; }
  // Reads exactly out.size() bytes at offset (kIoError if the file shrank).
  Status ReadAt(uint64_t offset, MutableByteSpan out) const;

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// True if both paths name the same existing file (same device and inode), or are the same path.
bool SameFile(const std::string& a, const std::string& b);

struct TransformOptions {
  uint64_t address = 0;
  bool decrypt = false;
  ProgressFn progress;       // optional
  size_t chunk_size = 1 << 20;
};

struct TransformResult {
  uint64_t input_bytes = 0;
  uint64_t output_bytes = 0;
  uint64_t padding_bytes = 0;  // random bytes appended (ESP32 encrypt of a non-16-multiple input)
};

// Encrypts or decrypts in_path into out_path (espsecure encrypt-flash-data / decrypt-flash-data),
// with espsecure's checks and messages, streaming in chunks. Nothing is left at out_path on failure.
Result<TransformResult> TransformFile(FlashCipher& cipher, const std::string& in_path, const std::string& out_path,
                                      const TransformOptions& options);

}  // namespace coffer::flash
