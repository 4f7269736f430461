#include "coffer/rclone/file_cipher.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "coffer/base/random.h"

namespace coffer::rclone {
namespace {

static_assert(crypto_secretbox_MACBYTES == kChunkTagSize);
static_assert(crypto_secretbox_NONCEBYTES == kFileNonceSize);

// Reads until `len` bytes or EOF; returns bytes read. At `off` with pread, or (off < 0) from the
// file position with read.
Result<size_t> ReadFull(int fd, uint8_t* buf, size_t len, int64_t off = -1) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = off < 0 ? ::read(fd, buf + got, len - got)
                        : ::pread(fd, buf + got, len - got, off_t(off) + off_t(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read", errno);
    }
    if (n == 0) break;
    got += size_t(n);
  }
  return got;
}

Status PwriteFull(int fd, const uint8_t* buf, size_t len, uint64_t off) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, buf, len, off_t(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", errno);
    }
    buf += n;
    len -= size_t(n);
    off += uint64_t(n);
  }
  return Status::Ok();
}

Status WriteFull(int fd, const uint8_t* buf, size_t len) {
  while (len > 0) {
    ssize_t n = ::write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", errno);
    }
    buf += n;
    len -= size_t(n);
  }
  return Status::Ok();
}

// Runs fn(i) for i in [0, n) on up to `threads` threads.
template <typename Fn>
void ParallelFor(size_t n, int threads, Fn fn) {
  if (threads <= 1 || n < 2) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  size_t t = std::min<size_t>(size_t(threads), n);
  std::vector<std::thread> pool;
  pool.reserve(t - 1);
  for (size_t w = 1; w < t; ++w)
    pool.emplace_back([&, w] { for (size_t i = w; i < n; i += t) fn(i); });
  for (size_t i = 0; i < n; i += t) fn(i);
  for (auto& th : pool) th.join();
}

constexpr size_t kChunksPerBatch = 32;  // 2 MiB of plaintext per read/write

// Chunks per batch for this input: small files get small (uninitialised) buffers, so a tree of
// small files does not pay for megabytes of zero-filling per file.
size_t BatchChunks(int fd, int threads, size_t chunk_bytes) {
  size_t batch = threads > 1 ? kChunksPerBatch * 2 : kChunksPerBatch;
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    size_t need = size_t(st.st_size) / chunk_bytes + 1;
    batch = std::min(batch, need);
  }
  return batch;
}

// Plaintext per worker step of the positional decrypt (4 chunks, 256 KiB): a slice's sealed and
// opened copies stay in the core's L2 cache between the pread, the cipher and the pwrite.
constexpr size_t kSliceChunks = 4;

// Decrypts a regular file into a fresh, empty regular file with `workers` threads that each pread a
// slice of chunks, open it into their own buffers and pwrite the plaintext at its offset: the read,
// the cipher and the page-cache write of different slices then run at once on every core, with no
// hand-off between threads (the read -> open -> write pipeline it replaces kept about one core
// busy). On a failure the output is cut at the first chunk that failed (or was not written), so
// nothing from a bad chunk on is left in it, as on the sequential path. Returns false (and does
// nothing) when the inputs do not allow it: then the caller streams sequentially.
bool DecryptPositional(const FileCipher& cipher, const FileNonce& nonce, int in_fd, int out_fd,
                       std::string_view what, const ProgressFn& progress, int workers, Status* result) {
  struct stat in_st, out_st;
  if (workers < 2 || out_fd < 0 || ::fstat(in_fd, &in_st) != 0 || ::fstat(out_fd, &out_st) != 0 ||
      !S_ISREG(in_st.st_mode) || !S_ISREG(out_st.st_mode) || out_st.st_size != 0)
    return false;
  int out_flags = ::fcntl(out_fd, F_GETFL);
  off_t in_pos = ::lseek(in_fd, 0, SEEK_CUR);
  if (out_flags < 0 || (out_flags & O_APPEND) || ::lseek(out_fd, 0, SEEK_CUR) != 0 || in_pos < 0 ||
      in_st.st_size < in_pos)
    return false;
  const uint64_t body = uint64_t(in_st.st_size - in_pos);
  auto plain_size = DecryptedSize(body + kFileHeaderSize);
  // Malformed lengths keep the sequential path and its error messages; small files gain nothing.
  if (!plain_size.ok() || body <= 2 * kSliceChunks * kChunkSize) return false;
  const size_t chunks = size_t((body + kChunkSize - 1) / kChunkSize);
  const size_t slices = (chunks + kSliceChunks - 1) / kSliceChunks;
  (void)::posix_fadvise(in_fd, in_pos, off_t(body), POSIX_FADV_SEQUENTIAL);

  std::atomic<size_t> next{0};
  std::atomic<size_t> fail_slice{SIZE_MAX};  // no slice after a failed one needs doing
  std::mutex mu;                              // guards fail_* and progress
  uint64_t fail_chunk = UINT64_MAX;           // first chunk not in the output
  Status fail = Status::Ok();
  auto work = [&] {
    std::unique_ptr<uint8_t[]> in(new uint8_t[kSliceChunks * kChunkSize]);
    std::unique_ptr<uint8_t[]> out(new uint8_t[kSliceChunks * kChunkDataSize]);
    while (true) {
      size_t s = next.fetch_add(1, std::memory_order_relaxed);
      if (s >= slices || s > fail_slice.load(std::memory_order_relaxed)) return;
      const uint64_t first = uint64_t(s) * kSliceChunks;
      const size_t in_len = size_t(std::min<uint64_t>(kSliceChunks * kChunkSize, body - first * kChunkSize));
      Status st = Status::Ok();
      uint64_t done = first;  // chunks [first, done) opened
      size_t out_len = 0;
      auto got = ReadFull(in_fd, in.get(), in_len, int64_t(in_pos + first * kChunkSize));
      if (!got.ok()) {
        st = got.status().WithContext(what);
      } else if (*got < in_len) {
        st = IoError(std::string(what) + ": file shrank while it was being decrypted");
      } else {
        for (size_t off = 0; off < in_len; off += kChunkSize, ++done) {
          size_t len = std::min(kChunkSize, in_len - off);
          st = cipher.OpenChunk(nonce, done, ByteSpan(in.get() + off, len), out.get() + out_len, what);
          if (!st.ok()) break;
          out_len += len - kChunkTagSize;
        }
      }
      if (out_len > 0) {
        Status w = PwriteFull(out_fd, out.get(), out_len, first * kChunkDataSize);
        if (!w.ok()) {
          st = w;
          done = first;
        }
      }
      std::lock_guard lock(mu);
      if (!st.ok()) {
        if (done < fail_chunk) {
          fail_chunk = done;
          fail = st;
        }
        if (s < fail_slice.load()) fail_slice.store(s);
        return;
      }
      if (progress) progress(out_len);
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(size_t(workers - 1));
  for (int w = 1; w < std::min<int>(workers, int(slices)); ++w) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (!fail.ok()) {
    (void)::ftruncate(out_fd, off_t(fail_chunk * kChunkDataSize));
    *result = fail;
    return true;
  }
  // Leave both descriptors where a sequential stream would have.
  (void)::lseek(in_fd, in_st.st_size, SEEK_SET);
  (void)::lseek(out_fd, off_t(*plain_size), SEEK_SET);
  *result = Status::Ok();
  return true;
}

}  // namespace

uint64_t EncryptedSize(uint64_t plain_size) {
  uint64_t full = plain_size / kChunkDataSize;
  uint64_t rest = plain_size % kChunkDataSize;
  return kFileHeaderSize + full * kChunkSize + (rest ? rest + kChunkTagSize : 0);
}

Result<uint64_t> DecryptedSize(uint64_t enc_size) {
  if (enc_size < kFileHeaderSize) return DataLoss("file is too short to be an rclone crypt file");
  uint64_t body = enc_size - kFileHeaderSize;
  uint64_t full = body / kChunkSize;
  uint64_t rest = body % kChunkSize;
  if (rest != 0 && rest <= kChunkTagSize) return DataLoss("file has a truncated chunk (cut inside a chunk header)");
  return full * kChunkDataSize + (rest ? rest - kChunkTagSize : 0);
}

FileNonce ChunkNonce(const FileNonce& file_nonce, uint64_t index) {
  FileNonce n = file_nonce;
  unsigned carry = 0;
  for (size_t i = 0; i < 8; ++i) {
    carry += unsigned(n[i]) + unsigned((index >> (8 * i)) & 0xFF);
    n[i] = uint8_t(carry);
    carry >>= 8;
  }
  for (size_t i = 8; carry && i < kFileNonceSize; ++i) {
    carry += n[i];
    n[i] = uint8_t(carry);
    carry >>= 8;
  }
  return n;
}

FileNonce RandomFileNonce() {
  FileNonce n;
  FillRandom(n);
  return n;
}

FileCipher::FileCipher(const RcloneKeys& keys) : data_key_(keys.data_key.Clone()) {
  if (sodium_init() < 0) std::abort();  // libsodium cannot work at all
}

void FileCipher::WriteHeader(const FileNonce& nonce, uint8_t* out) {
  std::memcpy(out, kFileMagic, kFileMagicSize);
  std::memcpy(out + kFileMagicSize, nonce.data(), kFileNonceSize);
}

Result<FileNonce> FileCipher::ParseHeader(ByteSpan header, std::string_view what) {
  if (header.size() < kFileHeaderSize)
    return DataLoss(std::string(what) + ": file is too short to be an rclone crypt file (" +
                    std::to_string(header.size()) + " bytes, the header alone is 32)");
  if (std::memcmp(header.data(), kFileMagic, kFileMagicSize) != 0)
    return DataLoss(std::string(what) + ": not an rclone crypt file (bad magic \"RCLONE\\0\\0\")");
  FileNonce n;
  std::memcpy(n.data(), header.data() + kFileMagicSize, kFileNonceSize);
  return n;
}

void FileCipher::SealChunk(const FileNonce& file_nonce, uint64_t index, ByteSpan plain, uint8_t* out) const {
  FileNonce n = ChunkNonce(file_nonce, index);
  crypto_secretbox_easy(out, plain.data(), plain.size(), n.data(), data_key_.reveal().data());
}

Status FileCipher::OpenChunk(const FileNonce& file_nonce, uint64_t index, ByteSpan sealed, uint8_t* out,
                             std::string_view what) const {
  if (sealed.size() <= kChunkTagSize)
    return DataLoss(std::string(what) + ": file has a truncated chunk " + std::to_string(index) +
                    " (cut inside its header)");
  FileNonce n = ChunkNonce(file_nonce, index);
  if (crypto_secretbox_open_easy(out, sealed.data(), sealed.size(), n.data(), data_key_.reveal().data()) != 0)
    return DataLoss(std::string(what) + ": chunk " + std::to_string(index) +
                    " failed authentication (file was modified, or wrong password)");
  return Status::Ok();
}

Bytes FileCipher::EncryptBuffer(ByteSpan plain, const FileNonce& nonce) const {
  Bytes out(EncryptedSize(plain.size()));
  WriteHeader(nonce, out.data());
  size_t o = kFileHeaderSize;
  for (uint64_t i = 0, off = 0; off < plain.size(); ++i, off += kChunkDataSize) {
    size_t len = std::min(kChunkDataSize, plain.size() - off);
    SealChunk(nonce, i, plain.subspan(off, len), &out[o]);
    o += len + kChunkTagSize;
  }
  return out;
}

Result<Bytes> FileCipher::DecryptBuffer(ByteSpan enc, std::string_view what) const {
  COFFER_ASSIGN_OR_RETURN(FileNonce nonce, ParseHeader(enc, what));
  auto plain_size = DecryptedSize(enc.size());
  if (!plain_size.ok()) return plain_size.status().WithContext(what);
  Bytes out(*plain_size);
  size_t in = kFileHeaderSize, o = 0;
  for (uint64_t i = 0; in < enc.size(); ++i) {
    size_t len = std::min(kChunkSize, enc.size() - in);
    COFFER_RETURN_IF_ERROR(OpenChunk(nonce, i, enc.subspan(in, len), &out[o], what));
    in += len;
    o += len - kChunkTagSize;
  }
  return out;
}

Status FileCipher::EncryptFd(int in_fd, int out_fd, const FileNonce& nonce, const ProgressFn& progress,
                             int threads) const {
  uint8_t header[kFileHeaderSize];
  WriteHeader(nonce, header);
  COFFER_RETURN_IF_ERROR(WriteFull(out_fd, header, sizeof header));
  const size_t batch = BatchChunks(in_fd, threads, kChunkDataSize);
  std::span<uint8_t> in, out;
  std::unique_ptr<uint8_t[]> in_buf(new uint8_t[batch * kChunkDataSize]), out_buf(new uint8_t[batch * kChunkSize]);
  in = {in_buf.get(), batch * kChunkDataSize};
  out = {out_buf.get(), batch * kChunkSize};
  uint64_t index = 0;
  while (true) {
    COFFER_ASSIGN_OR_RETURN(size_t got, ReadFull(in_fd, in.data(), in.size()));
    if (got == 0) break;
    size_t chunks = (got + kChunkDataSize - 1) / kChunkDataSize;
    ParallelFor(chunks, got >= 4 * kChunkDataSize ? threads : 1, [&](size_t c) {
      size_t off = c * kChunkDataSize;
      size_t len = std::min(kChunkDataSize, got - off);
      SealChunk(nonce, index + c, ByteSpan(in.data() + off, len), out.data() + c * kChunkSize);
    });
    size_t out_len = got + chunks * kChunkTagSize;
    COFFER_RETURN_IF_ERROR(WriteFull(out_fd, out.data(), out_len));
    index += chunks;
    if (progress) progress(got);
    if (got < in.size()) break;
  }
  return Status::Ok();
}

Status FileCipher::DecryptFd(int in_fd, int out_fd, std::string_view what, const ProgressFn& progress,
                             int threads) const {
  uint8_t header[kFileHeaderSize];
  COFFER_ASSIGN_OR_RETURN(size_t hgot, ReadFull(in_fd, header, sizeof header));
  COFFER_ASSIGN_OR_RETURN(FileNonce nonce, ParseHeader(ByteSpan(header, hgot), what));
  if (Status st; DecryptPositional(*this, nonce, in_fd, out_fd, what, progress, threads, &st)) return st;
  const size_t batch = BatchChunks(in_fd, threads, kChunkSize);
  // Two buffer pairs: while batch k is written out (by a writer thread, for files of more than one
  // batch), batch k+1 is read and opened. The write() into the page cache is as costly as the
  // cipher here, so overlapping them is most of the decrypt throughput.
  struct Buffers {
    std::unique_ptr<uint8_t[]> in, out;
  } bufs[2];
  for (auto& b : bufs) {
    b.in.reset(new uint8_t[batch * kChunkSize]);
    b.out.reset(new uint8_t[batch * kChunkDataSize]);
  }
  struct stat st;
  bool pipelined = out_fd >= 0 && ::fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode) &&
                   uint64_t(st.st_size) > kFileHeaderSize + batch * kChunkSize;
  std::thread writer;
  Status write_status = Status::Ok();
  auto join = [&]() -> Status {
    if (writer.joinable()) writer.join();
    return write_status;
  };
  struct Joiner {  // never leave the writer running on an early return
    std::thread& t;
    ~Joiner() { if (t.joinable()) t.join(); }
  } joiner{writer};
  uint64_t index = 0;
  int cur = 0;
  while (true) {
    uint8_t* in = bufs[cur].in.get();
    uint8_t* out = bufs[cur].out.get();
    COFFER_ASSIGN_OR_RETURN(size_t got, ReadFull(in_fd, in, batch * kChunkSize));
    if (got == 0) break;
    size_t chunks = (got + kChunkSize - 1) / kChunkSize;
    std::vector<Status> st_chunks(chunks);
    ParallelFor(chunks, got >= 4 * kChunkSize ? threads : 1, [&](size_t c) {
      size_t off = c * kChunkSize;
      size_t len = std::min(kChunkSize, got - off);
      st_chunks[c] = OpenChunk(nonce, index + c, ByteSpan(in + off, len), out + c * kChunkDataSize, what);
    });
    for (auto& s : st_chunks) COFFER_RETURN_IF_ERROR(s);
    size_t out_len = got - chunks * kChunkTagSize;
    COFFER_RETURN_IF_ERROR(join());
    if (out_fd >= 0) {
      if (pipelined) {
        writer = std::thread([&write_status, out_fd, out, out_len] { write_status = WriteFull(out_fd, out, out_len); });
      } else {
        COFFER_RETURN_IF_ERROR(WriteFull(out_fd, out, out_len));
      }
    }
    index += chunks;
    if (progress) progress(out_len);
    cur ^= 1;
    if (got < batch * kChunkSize) break;
  }
  return join();
}

}  // namespace coffer::rclone
