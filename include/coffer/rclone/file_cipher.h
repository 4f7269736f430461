// rclone crypt file contents: "RCLONE\0\0" magic, a random 24-byte nonce, then the plaintext in
// 64 KiB chunks, each sealed with NaCl secretbox (XSalsa20-Poly1305, 16-byte tag first) under the
// data key and nonce + chunk index (little-endian 192-bit add). The byte layout is in
// docs/format/rclone_crypt.md. FileCipher is immutable after construction and thread-safe; the
// stream functions use only their own buffers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"
#include "coffer/rclone/keys.h"

namespace coffer::rclone {

inline constexpr char kFileMagic[8] = {'R', 'C', 'L', 'O', 'N', 'E', 0, 0};
inline constexpr size_t kFileMagicSize = 8;
inline constexpr size_t kFileNonceSize = 24;
inline constexpr size_t kFileHeaderSize = kFileMagicSize + kFileNonceSize;  // 32
inline constexpr size_t kChunkTagSize = 16;
inline constexpr size_t kChunkDataSize = 64 * 1024;
inline constexpr size_t kChunkSize = kChunkTagSize + kChunkDataSize;

using FileNonce = std::array<uint8_t, kFileNonceSize>;

uint64_t EncryptedSize(uint64_t plain_size);
// kDataLoss when enc_size cannot be an rclone crypt file length (shorter than the header, or a
// last chunk with no data byte).
Result<uint64_t> DecryptedSize(uint64_t enc_size);
// Nonce of chunk `index` given the file nonce.
FileNonce ChunkNonce(const FileNonce& file_nonce, uint64_t index);

// Called with the number of plaintext bytes processed since the last call.
using ProgressFn = std::function<void(uint64_t bytes)>;

class FileCipher {
 public:
  explicit FileCipher(const RcloneKeys& keys);

  // Writes the header for `nonce` into out (32 bytes).
  static void WriteHeader(const FileNonce& nonce, uint8_t* out);
  // Checks magic and returns the nonce; `what` names the file in errors.
  static Result<FileNonce> ParseHeader(ByteSpan header, std::string_view what);

  // Seals one chunk (plain.size() <= 64 KiB) into out (plain.size() + 16 bytes).
  void SealChunk(const FileNonce& file_nonce, uint64_t index, ByteSpan plain, uint8_t* out) const;
  // Opens one chunk (16 < sealed.size() <= kChunkSize) into out; kDataLoss on failure.
  Status OpenChunk(const FileNonce& file_nonce, uint64_t index, ByteSpan sealed, uint8_t* out,
                   std::string_view what) const;

  // Whole-buffer helpers (tests, small files, the mount).
  Bytes EncryptBuffer(ByteSpan plain, const FileNonce& nonce) const;
  Result<Bytes> DecryptBuffer(ByteSpan enc, std::string_view what) const;

  // Streams between file descriptors. Encrypt reads in_fd to EOF. Decrypt authenticates every
  // chunk before writing it; on failure the caller must discard what was written. Decrypt with
  // out_fd < 0 only authenticates.
  // `threads` > 1 seals/opens chunks of large files in parallel.
  Status EncryptFd(int in_fd, int out_fd, const FileNonce& nonce, const ProgressFn& progress = {},
                   int threads = 1) const;
  Status DecryptFd(int in_fd, int out_fd, std::string_view what, const ProgressFn& progress = {},
                   int threads = 1) const;

 private:
  SecretBytes data_key_;
};

FileNonce RandomFileNonce();

}  // namespace coffer::rclone
