#define FUSE_USE_VERSION 35
#include "coffer/fuse/crypt_mount.h"

#include <dirent.h>
#include <fcntl.h>
#include <fuse.h>
#include <malloc.h>
#include <sodium.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <functional>
#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"
#include "coffer/rclone/manifest.h"
#include "coffer/rclone/tree.h"

namespace coffer::fuse {
namespace {

using rclone::kChunkDataSize;
using rclone::kChunkSize;
using rclone::kFileHeaderSize;

constexpr unsigned kMaxRead = 8 * kChunkDataSize;  // read request cap: eight chunks (512 KiB)

// Runs two halves of a job at once: the caller runs one, a persistent helper thread the other
// (thread creation per 128 KiB request costs more than the decryption on a virtual machine). If no
// helper is free the caller takes the second half back and runs it itself.
class HelperPool {
 public:
  explicit HelperPool(int threads) : threads_(threads) {}
  ~HelperPool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  void Both(const std::function<void()>& first, const std::function<void()>& second) {
    Job job{&second};
    {
      std::lock_guard lock(mu_);
      // Started on first use: the mount may fork into the background after construction.
      while (int(workers_.size()) < threads_) workers_.emplace_back([this] { Loop(); });
      queue_.push_back(&job);
    }
    cv_.notify_one();
    first();
    std::unique_lock lock(mu_);
    if (!job.taken) {  // nobody picked it up: run it here
      queue_.erase(std::find(queue_.begin(), queue_.end(), &job));
      lock.unlock();
      second();
      return;
    }
    job_done_.wait(lock, [&] { return job.done; });
  }

 private:
  struct Job {
    const std::function<void()>* fn;
    bool taken = false, done = false;
  };
  void Loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      Job* job = queue_.front();
      queue_.pop_front();
      job->taken = true;
      lock.unlock();
      (*job->fn)();
      lock.lock();
      job->done = true;
      job_done_.notify_all();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_, job_done_;
  std::deque<Job*> queue_;
  bool stop_ = false;
  const int threads_;
  std::vector<std::thread> workers_;
};

// An open encrypted file and its header nonce; closed when the last reader drops it.
struct EncReader {
  int fd = -1;
  rclone::FileNonce nonce{};
  uint64_t plain_size = 0;
  ~EncReader() { if (fd >= 0) ::close(fd); }
};

struct OpenFile {
  std::mutex mu;
  std::string rel;         // plaintext path relative to the mount root
  bool loaded = false;     // data holds the whole plaintext
  bool dirty = false;
  Bytes data;
  int refs = 0;
  // Read path for files not loaded: the encrypted file, opened once (shared with in-flight reads,
  // which decrypt without holding mu; dropped whenever the file is written back).
  std::shared_ptr<EncReader> reader;
  // Streaming write-back for files written from empty strictly in order (the common `cp`/`dd`
  // case): each full 64 KiB chunk is sealed and written to a temp file as it arrives, only the
  // partial last chunk stays in memory, and flush seals it and renames the temp file into place.
  // Any other access (a read, a write elsewhere, a truncate) first turns it back into `data`.
  bool streaming = false;
  int stream_fd = -1;
  std::string stream_tmp;
  rclone::FileNonce stream_nonce{};
  uint64_t stream_chunks = 0;  // sealed chunks already in the temp file
  Bytes tail;                  // plaintext after them (< 64 KiB)
  crypto_hash_sha256_state stream_hash;
  uint64_t Size() const { return streaming ? stream_chunks * kChunkDataSize + tail.size() : data.size(); }
};

class CryptFs {
 public:
  CryptFs(const CryptMountOptions& o, const rclone::RcloneKeys& keys, const rclone::NameOptions& names)
      : opts_(o), keys_{keys.data_key.Clone(), keys.name_key.Clone(), keys.name_tweak.Clone()},
        names_(keys_, names), files_(keys_), root_(o.encrypted_dir) {}

  Status LoadManifest() {
    rclone::AnchorStore anchors(opts_.state_file.empty() ? rclone::AnchorStore::DefaultPath() : opts_.state_file);
    bool present = false;
    auto problems = rclone::CheckFolderManifest(root_, names_, keys_, anchors, opts_.manifest, &present);
    if (!problems.empty()) {
      std::string msg = problems[0].second.message();
      if (problems.size() > 1) msg += " (and " + std::to_string(problems.size() - 1) + " more problems)";
      return Status(problems[0].second.code(), msg);
    }
    if (!present) return Status::Ok();
    auto bytes = ReadFileBytes(root_ + "/" + rclone::kManifestName);
    if (!bytes.ok()) return bytes.status();
    auto m = rclone::ParseManifest(*bytes, keys_);
    if (!m.ok()) return m.status();
    man_ = std::move(*m);
    has_manifest_ = true;
    return Status::Ok();
  }

  Status SaveManifest() {
    std::lock_guard lock(man_mu_);
    if (!has_manifest_ || !man_dirty_) return Status::Ok();
    man_.counter++;
    Bytes bytes = rclone::SerializeManifest(man_, keys_);
    COFFER_RETURN_IF_ERROR(WriteFileAtomic(root_ + "/" + rclone::kManifestName, bytes, AtomicWriteOptions{0644, true}));
    rclone::AnchorStore anchors(opts_.state_file.empty() ? rclone::AnchorStore::DefaultPath() : opts_.state_file);
    man_dirty_ = false;
    return anchors.CheckAndAdvance(root_, &man_, bytes);
  }

  void Log(const std::string& msg) { LogMountError(opts_.mountpoint, opts_.foreground, msg); }

  static std::string Rel(const char* path) {
    std::string p = path;
    while (!p.empty() && p.front() == '/') p.erase(0, 1);
    return p;
  }
  std::string EncRelFile(const std::string& rel) const { return names_.EncryptFileName(rel); }
  std::string EncFile(const std::string& rel) const { return root_ + "/" + EncRelFile(rel); }
  std::string EncDir(const std::string& rel) const {
    return rel.empty() ? root_ : root_ + "/" + names_.EncryptDirName(rel);
  }
  static bool SegmentsFit(const std::string& enc_rel) {
    size_t start = 0;
    while (true) {
      size_t slash = enc_rel.find('/', start);
      size_t end = slash == std::string::npos ? enc_rel.size() : slash;
      if (end - start > 255) return false;
      if (slash == std::string::npos) return true;
      start = slash + 1;
    }
  }

  std::shared_ptr<OpenFile> Find(const std::string& rel) {
    std::lock_guard lock(map_mu_);
    auto it = open_.find(rel);
    return it == open_.end() ? nullptr : it->second;
  }
  std::shared_ptr<OpenFile> Acquire(const std::string& rel) {
    std::lock_guard lock(map_mu_);
    auto& slot = open_[rel];
    if (!slot) {
      slot = std::make_shared<OpenFile>();
      slot->rel = rel;
    }
    slot->refs++;
    return slot;
  }
  void Release(const std::shared_ptr<OpenFile>& f) {
    std::lock_guard lock(map_mu_);
    if (--f->refs == 0) {
      auto it = open_.find(f->rel);
      if (it != open_.end() && it->second == f) open_.erase(it);
    }
  }

  // Checks the encrypted file against the manifest (if any). -EIO on mismatch.
  int CheckAgainstManifest(const std::string& rel) {
    if (!has_manifest_) return 0;
    std::string enc_rel = EncRelFile(rel);
    rclone::ManifestEntry want;
    {
      std::lock_guard lock(man_mu_);
      auto it = man_.files.find(enc_rel);
      if (it == man_.files.end()) {
        Log(rel + ": not listed in the manifest (added outside coffer); refusing to read it");
        return -EIO;
      }
      want = it->second;
    }
    auto got = rclone::HashEncryptedFile(root_ + "/" + enc_rel);
    if (!got.ok()) return StatusToErrno(got.status());
    if (got->encrypted_size != want.encrypted_size || !ConstantTimeEquals(got->sha256, want.sha256)) {
      Log(rel + ": content differs from the manifest (swapped, cut or rolled back); refusing to read it");
      return -EIO;
    }
    return 0;
  }

  // Loads the whole plaintext (f->mu held).
  int Load(OpenFile& f) {
    if (f.streaming) return Unstream(f);
    if (f.loaded) return 0;
    std::string enc = EncFile(f.rel);
    auto bytes = ReadFileBytes(enc);
    if (!bytes.ok()) {
      if (bytes.status().code() == StatusCode::kNotFound) { f.data.clear(); f.loaded = true; return 0; }
      return StatusToErrno(bytes.status());
    }
    auto plain = files_.DecryptBuffer(*bytes, f.rel);
    if (!plain.ok()) { Log(plain.status().message()); return -EIO; }
    f.data = std::move(*plain);
    f.loaded = true;
    return 0;
  }

  std::string TempPathFor(const std::string& enc) const {
    size_t slash = enc.rfind('/');
    return enc.substr(0, slash) + "/.coffer-tmp-" + HexEncode(RandomBytes(8));
  }

  static int PwriteAll(int fd, const uint8_t* p, size_t n, off_t off) {
    while (n > 0) {
      ssize_t w = ::pwrite(fd, p, n, off);
      if (w < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      p += w;
      n -= size_t(w);
      off += w;
    }
    return 0;
  }

  // Starts streaming write-back for an empty, just created or truncated file (f->mu held).
  void StartStream(OpenFile& f) {
    if (f.streaming || !f.data.empty()) return;
    std::string tmp = TempPathFor(EncFile(f.rel));
    int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);  // RDWR: Unstream reads it
    if (fd < 0) return;  // stay on the in-memory path
    f.stream_nonce = rclone::RandomFileNonce();
    uint8_t header[kFileHeaderSize];
    rclone::FileCipher::WriteHeader(f.stream_nonce, header);
    if (PwriteAll(fd, header, sizeof header, 0) != 0) { ::close(fd); ::unlink(tmp.c_str()); return; }
    if (has_manifest_) {  // the manifest records the encrypted file's SHA-256
      crypto_hash_sha256_init(&f.stream_hash);
      crypto_hash_sha256_update(&f.stream_hash, header, sizeof header);
    }
    f.streaming = true;
    f.stream_fd = fd;
    f.stream_tmp = tmp;
    f.stream_chunks = 0;
    f.tail.clear();
    f.tail.reserve(kChunkDataSize);
  }

  // Seals and writes chunk `stream_chunks` from `plain` (f->mu held, streaming).
  int StreamChunk(OpenFile& f, ByteSpan plain) {
    uint8_t sealed[kChunkSize];
    files_.SealChunk(f.stream_nonce, f.stream_chunks, plain, sealed);
    size_t n = plain.size() + rclone::kChunkTagSize;
    off_t off = off_t(kFileHeaderSize + f.stream_chunks * kChunkSize);
    if (int e = PwriteAll(f.stream_fd, sealed, n, off)) return e;
    if (has_manifest_) crypto_hash_sha256_update(&f.stream_hash, sealed, n);
    f.stream_chunks++;
    return 0;
  }

  // Appends at the end of a streaming file; full chunks go straight to the temp file.
  int StreamAppend(OpenFile& f, const uint8_t* p, size_t n) {
    if (!f.tail.empty()) {
      size_t take = std::min(n, kChunkDataSize - f.tail.size());
      f.tail.insert(f.tail.end(), p, p + take);
      p += take;
      n -= take;
      if (f.tail.size() < kChunkDataSize) return 0;
      if (int e = StreamChunk(f, f.tail)) return e;
      f.tail.clear();
    }
    if (size_t full = n / kChunkDataSize) {
      if (int e = StreamChunks(f, p, full)) return e;
      p += full * kChunkDataSize;
      n -= full * kChunkDataSize;
    }
    f.tail.assign(p, p + n);
    return 0;
  }

  // Seals `count` full chunks from p (two threads for several chunks: FUSE hands over up to 1 MiB
  // per write) and writes them with one pwrite (f->mu held, streaming).
  int StreamChunks(OpenFile& f, const uint8_t* p, size_t count) {
    if (count == 1) return StreamChunk(f, ByteSpan(p, kChunkDataSize));
    thread_local Bytes sealed;
    sealed.resize(count * kChunkSize);
    uint8_t* out = sealed.data();  // this thread's buffer (a thread_local named in the lambda would be the helper's)
    uint64_t first = f.stream_chunks;
    const rclone::FileNonce nonce = f.stream_nonce;
    auto seal = [this, out, p, first, nonce](size_t from, size_t to) {
      for (size_t c = from; c < to; ++c)
        files_.SealChunk(nonce, first + c, ByteSpan(p + c * kChunkDataSize, kChunkDataSize), out + c * kChunkSize);
    };
    pool_.Both([&] { seal(0, count / 2); }, [&] { seal(count / 2, count); });
    off_t off = off_t(kFileHeaderSize + first * kChunkSize);
    if (int e = PwriteAll(f.stream_fd, sealed.data(), sealed.size(), off)) return e;
    if (has_manifest_) crypto_hash_sha256_update(&f.stream_hash, sealed.data(), sealed.size());
    f.stream_chunks += count;
    return 0;
  }

  void DropStream(OpenFile& f) {
    if (f.stream_fd >= 0) ::close(f.stream_fd);
    if (!f.stream_tmp.empty()) ::unlink(f.stream_tmp.c_str());
    f.stream_fd = -1;
    f.stream_tmp.clear();
    f.streaming = false;
    f.tail.clear();
    f.tail.shrink_to_fit();
  }

  // Turns a streaming file back into plaintext in memory (f->mu held).
  int Unstream(OpenFile& f) {
    Bytes plain(f.Size());
    Bytes sealed(kChunkSize);
    for (uint64_t i = 0; i < f.stream_chunks; ++i) {
      ssize_t n = ::pread(f.stream_fd, sealed.data(), kChunkSize, off_t(kFileHeaderSize + i * kChunkSize));
      if (n != ssize_t(kChunkSize)) { Log(f.rel + ": could not read back the pending write"); return -EIO; }
      Status s = files_.OpenChunk(f.stream_nonce, i, sealed, plain.data() + i * kChunkDataSize, f.rel);
      if (!s.ok()) { Log(s.message()); return -EIO; }
    }
    std::memcpy(plain.data() + f.stream_chunks * kChunkDataSize, f.tail.data(), f.tail.size());
    DropStream(f);
    f.data = std::move(plain);
    f.loaded = true;
    f.dirty = true;
    return 0;
  }

  // Seals the tail, makes the temp file durable if asked and renames it into place (f->mu held).
  int FinishStream(OpenFile& f, bool sync) {
    if (!f.tail.empty()) {
      if (int e = StreamChunk(f, f.tail)) { DropStream(f); return e; }
      f.tail.clear();
    }
    std::string enc_rel = EncRelFile(f.rel);
    std::string enc = root_ + "/" + enc_rel;
    uint64_t plain_size = f.stream_chunks * kChunkDataSize;  // recomputed below from the file size
    struct stat st;
    if (::fstat(f.stream_fd, &st) != 0) { int e = -errno; DropStream(f); return e; }
    auto size = rclone::DecryptedSize(uint64_t(st.st_size));
    if (size.ok()) plain_size = *size;
    struct stat old;
    if (::stat(enc.c_str(), &old) == 0) (void)::fchmod(f.stream_fd, old.st_mode & 07777);
    if (sync && ::fsync(f.stream_fd) != 0) { int e = -errno; DropStream(f); return e; }
    ::close(f.stream_fd);
    f.stream_fd = -1;
    if (::rename(f.stream_tmp.c_str(), enc.c_str()) != 0) { int e = -errno; DropStream(f); return e; }
    f.stream_tmp.clear();
    rclone::ManifestEntry e;
    e.plain_size = plain_size;
    e.encrypted_size = uint64_t(st.st_size);
    if (has_manifest_) crypto_hash_sha256_final(&f.stream_hash, e.sha256.data());
    DropStream(f);
    f.dirty = false;
    f.loaded = false;  // later access reads the encrypted file
    f.data.clear();
    f.reader.reset();
    if (has_manifest_) {
      std::lock_guard lock(man_mu_);
      man_.files[enc_rel] = e;
      man_dirty_ = true;
    }
    return 0;
  }

  // Re-encrypts f to a temp file and renames it over the encrypted file (f->mu held).
  int WriteBack(OpenFile& f, bool sync) {
    if (f.streaming) return FinishStream(f, sync);
    if (!f.dirty) return 0;
    std::string enc_rel = EncRelFile(f.rel);
    std::string enc = root_ + "/" + enc_rel;
    Bytes out = files_.EncryptBuffer(f.data, rclone::RandomFileNonce());
    size_t slash = enc.rfind('/');
    std::string tmp = enc.substr(0, slash) + "/.coffer-tmp-" + HexEncode(RandomBytes(8));
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::write(fd, out.data() + done, out.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return -err;
      }
      done += size_t(n);
    }
    struct stat old;
    if (::stat(enc.c_str(), &old) == 0) (void)::fchmod(fd, old.st_mode & 07777);
    if (sync && ::fsync(fd) != 0) { int err = errno; ::close(fd); ::unlink(tmp.c_str()); return -err; }
    ::close(fd);
    if (::rename(tmp.c_str(), enc.c_str()) != 0) { int err = errno; ::unlink(tmp.c_str()); return -err; }
    f.dirty = false;
    f.reader.reset();
    if (has_manifest_) {
      rclone::ManifestEntry e;
      e.plain_size = f.data.size();
      e.encrypted_size = out.size();
      crypto_hash_sha256(e.sha256.data(), out.data(), out.size());
      std::lock_guard lock(man_mu_);
      man_.files[enc_rel] = e;
      man_dirty_ = true;
    }
    return 0;
  }

  // Opens the encrypted file for reading once (f->mu held, file not loaded).
  int GetReader(OpenFile& f, std::shared_ptr<EncReader>* out) {
    if (!f.reader) {
      auto r = std::make_shared<EncReader>();
      r->fd = ::open(EncFile(f.rel).c_str(), O_RDONLY | O_CLOEXEC);
      if (r->fd < 0) return -errno;
      (void)::posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);  // reads mostly stream: wider readahead
      struct stat st;
      if (::fstat(r->fd, &st) != 0) return -errno;
      auto plain_size = rclone::DecryptedSize(uint64_t(st.st_size));
      if (!plain_size.ok()) { Log(f.rel + ": " + plain_size.status().message()); return -EIO; }
      uint8_t header[kFileHeaderSize];
      ssize_t n = ::pread(r->fd, header, sizeof header, 0);
      auto nonce = rclone::FileCipher::ParseHeader(ByteSpan(header, n < 0 ? 0 : size_t(n)), f.rel);
      if (!nonce.ok()) { Log(nonce.status().message()); return -EIO; }
      r->nonce = *nonce;
      r->plain_size = *plain_size;
      f.reader = std::move(r);
    }
    *out = f.reader;
    return 0;
  }

  // Reads [off, off+size) from the encrypted file: one pread for every chunk the range touches,
  // whole chunks opened straight into buf. Thread-safe (no OpenFile state): concurrent
  // readahead requests decrypt in parallel.
  int ReadEncrypted(const EncReader& r, const std::string& rel, char* buf, size_t size, off_t off) {
    if (off < 0 || uint64_t(off) >= r.plain_size) return 0;
    size = size_t(std::min<uint64_t>(size, r.plain_size - uint64_t(off)));
    uint64_t first = uint64_t(off) / kChunkDataSize, last = (uint64_t(off) + size - 1) / kChunkDataSize;
    thread_local Bytes sealed, plain(kChunkDataSize);
    sealed.resize(size_t(last - first + 1) * kChunkSize);
    off_t at = off_t(kFileHeaderSize + first * kChunkSize);
    size_t got = 0;
    while (got < sealed.size()) {
      ssize_t n = ::pread(r.fd, sealed.data() + got, sealed.size() - got, at + off_t(got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      if (n == 0) break;
      got += size_t(n);
    }
    struct Piece {
      uint64_t index;
      size_t sealed_at, len, within, take, copied;
    };
    std::vector<Piece> pieces;
    size_t copied = 0;
    for (uint64_t i = first; i <= last; ++i) {
      size_t sealed_at = size_t(i - first) * kChunkSize;
      size_t len = got > sealed_at ? std::min(kChunkSize, got - sealed_at) : 0;
      size_t within = size_t(uint64_t(off) + copied - i * kChunkDataSize);
      if (len <= rclone::kChunkTagSize || within >= len - rclone::kChunkTagSize) {
        Log(rel + ": the encrypted file is shorter than its size says (cut while mounted?)");
        return -EIO;
      }
      size_t take = std::min(size - copied, len - rclone::kChunkTagSize - within);
      pieces.push_back({i, sealed_at, len, within, take, copied});
      copied += take;
    }
    // Opens pieces [from, to) with `scratch` for partial chunks; whole chunks go straight to buf.
    const uint8_t* in = sealed.data();
    auto open = [this, &r, &rel, &pieces, in, buf](size_t from, size_t to, uint8_t* scratch) -> Status {
      for (size_t k = from; k < to; ++k) {
        const Piece& pc = pieces[k];
        bool direct = pc.within == 0 && pc.take == pc.len - rclone::kChunkTagSize;
        uint8_t* dst = direct ? reinterpret_cast<uint8_t*>(buf + pc.copied) : scratch;
        COFFER_RETURN_IF_ERROR(files_.OpenChunk(r.nonce, pc.index, ByteSpan(in + pc.sealed_at, pc.len), dst, rel));
        if (!direct) std::memcpy(buf + pc.copied, scratch + pc.within, pc.take);
      }
      return Status::Ok();
    };
    Status s;
    // A request of several chunks is opened on two threads, unless other reads are in flight
    // (readahead sends several requests at once, which the loop's threads already spread over the
    // cores; handing half of each to a helper would only add thread switches).
    struct InFlight {
      std::atomic<int>& n;
      int now;
      explicit InFlight(std::atomic<int>& c) : n(c), now(c.fetch_add(1) + 1) {}
      ~InFlight() { n.fetch_sub(1); }
    } in_flight(reads_in_flight_);
    if (pieces.size() >= 2 && in_flight.now == 1) {
      size_t half = pieces.size() / 2;
      Status second_status;
      pool_.Both([&] { s = open(0, half, plain.data()); },
                 [&] {
                   thread_local std::unique_ptr<uint8_t[]> scratch(new uint8_t[kChunkDataSize]);
                   second_status = open(half, pieces.size(), scratch.get());
                 });
      if (s.ok()) s = second_status;
    } else {
      s = open(0, pieces.size(), plain.data());
    }
    if (!s.ok()) { Log(s.message()); return -EIO; }
    return int(copied);
  }

  const CryptMountOptions opts_;
  HelperPool pool_{2};
  std::atomic<int> reads_in_flight_{0};
  rclone::RcloneKeys keys_;
  rclone::NameCipher names_;
  rclone::FileCipher files_;
  std::string root_;
  std::mutex map_mu_;
  std::map<std::string, std::shared_ptr<OpenFile>> open_;
  std::mutex man_mu_;
  bool has_manifest_ = false;
  bool man_dirty_ = false;
  rclone::Manifest man_;
};

CryptFs* Fs() { return static_cast<CryptFs*>(fuse_get_context()->private_data); }

OpenFile* Handle(struct fuse_file_info* fi) { return fi ? reinterpret_cast<OpenFile*>(fi->fh) : nullptr; }

int OpGetattr(const char* path, struct stat* st, struct fuse_file_info* fi) {
  CryptFs* fs = Fs();
  std::string rel = CryptFs::Rel(path);
  if (rel.empty()) return ::lstat(fs->root_.c_str(), st) == 0 ? 0 : -errno;
  auto open = fs->Find(rel);
  std::string f = fs->EncFile(rel);
  if (::lstat(f.c_str(), st) == 0 && S_ISREG(st->st_mode)) {
    if (open) {
      std::lock_guard lock(open->mu);
      if (open->loaded || open->streaming) { st->st_size = off_t(open->Size()); return 0; }
    }
    auto size = rclone::DecryptedSize(uint64_t(st->st_size));
    if (!size.ok()) { fs->Log(rel + ": " + size.status().message()); return -EIO; }
    st->st_size = off_t(*size);
    st->st_blocks = (st->st_size + 511) / 512;
    return 0;
  }
  std::string d = fs->EncDir(rel);
  if (::lstat(d.c_str(), st) == 0 && S_ISDIR(st->st_mode)) return 0;
  if (open) {  // created but not yet written back
    std::memset(st, 0, sizeof *st);
    st->st_mode = S_IFREG | 0644;
    st->st_nlink = 1;
    st->st_uid = getuid();
    st->st_gid = getgid();
    std::lock_guard lock(open->mu);
    st->st_size = off_t(open->Size());
    return 0;
  }
  return -ENOENT;
}

int OpReaddir(const char* path, void* buf, fuse_fill_dir_t filler, off_t, struct fuse_file_info*,
              enum fuse_readdir_flags) {
  CryptFs* fs = Fs();
  std::string rel = CryptFs::Rel(path);
  DIR* dir = ::opendir(fs->EncDir(rel).c_str());
  if (!dir) return -errno;
  filler(buf, ".", nullptr, 0, fuse_fill_dir_flags(0));
  filler(buf, "..", nullptr, 0, fuse_fill_dir_flags(0));
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || rclone::IsReservedName(name)) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    }
    auto plain = is_dir ? fs->names_.DecryptDirName(name) : fs->names_.DecryptFileName(name);
    if (!plain.ok()) {
      fs->Log((rel.empty() ? "" : rel + "/") + name + ": name does not decrypt, hidden (" + plain.status().message() + ")");
      continue;
    }
    filler(buf, plain->c_str(), nullptr, 0, fuse_fill_dir_flags(0));
  }
  ::closedir(dir);
  return 0;
}

int CheckWritable(CryptFs* fs) { return fs->opts_.read_only ? -EROFS : 0; }

int OpMkdir(const char* path, mode_t mode) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  std::string rel = CryptFs::Rel(path);
  std::string enc_rel = fs->names_.EncryptDirName(rel);
  if (!CryptFs::SegmentsFit(enc_rel)) return -ENAMETOOLONG;
  return ::mkdir((fs->root_ + "/" + enc_rel).c_str(), mode) == 0 ? 0 : -errno;
}

int OpRmdir(const char* path) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  return ::rmdir(fs->EncDir(CryptFs::Rel(path)).c_str()) == 0 ? 0 : -errno;
}

int OpUnlink(const char* path) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  std::string rel = CryptFs::Rel(path);
  std::string enc_rel = fs->EncRelFile(rel);
  if (::unlink((fs->root_ + "/" + enc_rel).c_str()) != 0) return -errno;
  if (fs->has_manifest_) {
    std::lock_guard lock(fs->man_mu_);
    fs->man_.files.erase(enc_rel);
    fs->man_dirty_ = true;
  }
  return 0;
}

int OpRename(const char* from, const char* to, unsigned int flags) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  if (flags & ~unsigned(RENAME_NOREPLACE)) return -EINVAL;
  std::string rf = CryptFs::Rel(from), rt = CryptFs::Rel(to);
  struct stat st;
  bool is_dir = ::lstat(fs->EncDir(rf).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  std::string ef = is_dir ? fs->names_.EncryptDirName(rf) : fs->EncRelFile(rf);
  std::string et = is_dir ? fs->names_.EncryptDirName(rt) : fs->EncRelFile(rt);
  if (!CryptFs::SegmentsFit(et)) return -ENAMETOOLONG;
  // Flush a file that is open with pending writes so the rename moves its current content.
  if (auto open = fs->Find(rf)) {
    std::lock_guard lock(open->mu);
    if (int e = fs->WriteBack(*open, false)) return e;
  }
  std::string src = fs->root_ + "/" + ef, dst = fs->root_ + "/" + et;
  if (flags & RENAME_NOREPLACE) {
    if (::renameat2(AT_FDCWD, src.c_str(), AT_FDCWD, dst.c_str(), RENAME_NOREPLACE) != 0) return -errno;
  } else if (::rename(src.c_str(), dst.c_str()) != 0) {
    return -errno;
  }
  {
    std::lock_guard lock(fs->map_mu_);
    std::map<std::string, std::shared_ptr<OpenFile>> moved;
    for (auto it = fs->open_.begin(); it != fs->open_.end();) {
      const std::string& k = it->first;
      if (k == rf || (is_dir && k.starts_with(rf + "/"))) {
        std::string nk = rt + k.substr(rf.size());
        { std::lock_guard fl(it->second->mu); it->second->rel = nk; }
        moved[nk] = it->second;
        it = fs->open_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [k, v] : moved) fs->open_[k] = v;
  }
  if (fs->has_manifest_) {
    std::lock_guard lock(fs->man_mu_);
    std::map<std::string, rclone::ManifestEntry> moved;
    for (auto it = fs->man_.files.begin(); it != fs->man_.files.end();) {
      if (it->first == ef || (is_dir && it->first.starts_with(ef + "/"))) {
        moved[et + it->first.substr(ef.size())] = it->second;
        it = fs->man_.files.erase(it);
      } else {
        ++it;
      }
    }
    if (!is_dir) fs->man_.files.erase(et);
    for (auto& [k, v] : moved) fs->man_.files[k] = v;
    fs->man_dirty_ = true;
  }
  return 0;
}

int OpOpen(const char* path, struct fuse_file_info* fi) {
  CryptFs* fs = Fs();
  bool writing = (fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC);
  if (writing) {
    if (int e = CheckWritable(fs)) return e;
  }
  std::string rel = CryptFs::Rel(path);
  auto f = fs->Acquire(rel);
  std::unique_lock lock(f->mu);
  if (!f->loaded && !f->dirty) {
    if (int e = fs->CheckAgainstManifest(rel)) { lock.unlock(); fs->Release(f); return e; }
  }
  if (writing) {
    if (fi->flags & O_TRUNC) {
      if (f->streaming) fs->DropStream(*f);
      f->data.clear();
      f->loaded = true;
      f->dirty = true;
      if (f->refs == 1) fs->StartStream(*f);
    } else if (int e = fs->Load(*f)) {
      lock.unlock();
      fs->Release(f);
      return e;
    }
  }
  fi->fh = reinterpret_cast<uint64_t>(f.get());
  fi->keep_cache = 0;
  return 0;
}

int OpCreate(const char* path, mode_t mode, struct fuse_file_info* fi) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  std::string rel = CryptFs::Rel(path);
  std::string enc_rel = fs->EncRelFile(rel);
  if (!CryptFs::SegmentsFit(enc_rel)) return -ENAMETOOLONG;
  // Write an empty encrypted file at once so the name exists for other processes.
  Bytes empty = fs->files_.EncryptBuffer({}, rclone::RandomFileNonce());
  std::string enc = fs->root_ + "/" + enc_rel;
  int fd = ::open(enc.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | ((fi->flags & O_EXCL) ? O_EXCL : 0), mode);
  if (fd < 0) return -errno;
  bool ok = ::write(fd, empty.data(), empty.size()) == ssize_t(empty.size());
  ::close(fd);
  if (!ok) return -EIO;
  auto f = fs->Acquire(rel);
  std::lock_guard lock(f->mu);
  if (f->streaming) fs->DropStream(*f);
  f->data.clear();
  f->loaded = true;
  f->dirty = true;
  f->reader.reset();
  if (f->refs == 1) fs->StartStream(*f);
  fi->fh = reinterpret_cast<uint64_t>(f.get());
  return 0;
}

int OpRead(const char* path, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  CryptFs* fs = Fs();
  OpenFile* f = Handle(fi);
  if (!f) return -EBADF;
  std::unique_lock lock(f->mu);
  if (f->streaming) {
    if (int e = fs->Unstream(*f)) return e;
  }
  if (f->loaded) {
    if (uint64_t(off) >= f->data.size()) return 0;
    size_t take = std::min(size, f->data.size() - size_t(off));
    std::memcpy(buf, f->data.data() + off, take);
    return int(take);
  }
  std::shared_ptr<EncReader> reader;
  if (int e = fs->GetReader(*f, &reader)) return e;
  std::string rel = f->rel;
  lock.unlock();  // decrypt outside the file's lock
  return fs->ReadEncrypted(*reader, rel, buf, size, off);
}

int OpWrite(const char* path, const char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  OpenFile* f = Handle(fi);
  if (!f) return -EBADF;
  std::lock_guard lock(f->mu);
  // A write at 0 into an empty file (dd flushes right after create, then writes) streams again.
  if (!f->streaming && !f->dirty && f->refs == 1 && off == 0) {
    struct stat st;
    bool empty = f->loaded ? f->data.empty()
                           : ::lstat(fs->EncFile(f->rel).c_str(), &st) == 0 && uint64_t(st.st_size) == kFileHeaderSize;
    if (empty) {
      f->data.clear();
      f->loaded = true;
      f->dirty = true;
      fs->StartStream(*f);
    }
  }
  if (f->streaming && f->refs == 1 && uint64_t(off) == f->Size()) {
    if (int e = fs->StreamAppend(*f, reinterpret_cast<const uint8_t*>(buf), size)) {
      fs->DropStream(*f);  // the write failed: the file keeps its last written-back content
      f->dirty = false;
      f->loaded = false;
      return e;
    }
    return int(size);
  }
  if (int e = fs->Load(*f)) return e;
  uint64_t end = uint64_t(off) + size;
  if (end > f->data.size()) {
    if (end > f->data.capacity()) f->data.reserve(std::max<uint64_t>(end, f->data.capacity() * 2));
    f->data.resize(end);
  }
  std::memcpy(f->data.data() + off, buf, size);
  f->dirty = true;
  return int(size);
}

int OpTruncate(const char* path, off_t size, struct fuse_file_info* fi) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  if (size < 0) return -EINVAL;
  std::string rel = CryptFs::Rel(path);
  std::shared_ptr<OpenFile> holder;
  OpenFile* f = Handle(fi);
  if (!f) {
    holder = fs->Acquire(rel);
    f = holder.get();
  }
  int rc;
  {
    std::lock_guard lock(f->mu);
    // A streaming file keeps streaming through no-op and to-zero truncates (dd, shells' >).
    if (f->streaming && uint64_t(size) == f->Size()) {
      rc = 0;
    } else if (f->streaming && size == 0 && fi) {
      fs->DropStream(*f);
      fs->StartStream(*f);
      rc = 0;
    } else {
      rc = fs->Load(*f);
    }
    if (rc == 0 && !f->streaming) {
      f->data.resize(size_t(size));
      f->dirty = true;
      if (!fi) rc = fs->WriteBack(*f, false);
    }
  }
  if (holder) fs->Release(holder);
  return rc;
}

int OpFlush(const char*, struct fuse_file_info* fi) {
  OpenFile* f = Handle(fi);
  if (!f) return 0;
  std::lock_guard lock(f->mu);
  return Fs()->WriteBack(*f, false);
}

int OpFsync(const char*, int, struct fuse_file_info* fi) {
  OpenFile* f = Handle(fi);
  if (!f) return 0;
  std::lock_guard lock(f->mu);
  f->dirty = f->dirty || false;
  return Fs()->WriteBack(*f, true);
}

int OpRelease(const char*, struct fuse_file_info* fi) {
  CryptFs* fs = Fs();
  OpenFile* f = Handle(fi);
  if (!f) return 0;
  std::shared_ptr<OpenFile> keep;
  {
    std::lock_guard lock(fs->map_mu_);
    auto it = fs->open_.find(f->rel);
    if (it != fs->open_.end() && it->second.get() == f) keep = it->second;
  }
  {
    std::lock_guard lock(f->mu);
    int rc = fs->WriteBack(*f, false);
    if (rc != 0) fs->Log(f->rel + ": could not write back on close: " + std::strerror(-rc));
    if (keep && keep->refs == 1) { f->data.clear(); f->data.shrink_to_fit(); f->loaded = false; }
  }
  if (keep) fs->Release(keep);
  return 0;
}

int OpStatfs(const char*, struct statvfs* st) {
  return ::statvfs(Fs()->root_.c_str(), st) == 0 ? 0 : -errno;
}

int OpChmod(const char* path, mode_t mode, struct fuse_file_info*) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  std::string rel = CryptFs::Rel(path);
  std::string p = rel.empty() ? fs->root_ : fs->EncFile(rel);
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) p = fs->EncDir(rel);
  return ::chmod(p.c_str(), mode) == 0 ? 0 : -errno;
}

int OpUtimens(const char* path, const struct timespec tv[2], struct fuse_file_info*) {
  CryptFs* fs = Fs();
  if (int e = CheckWritable(fs)) return e;
  std::string rel = CryptFs::Rel(path);
  std::string p = rel.empty() ? fs->root_ : fs->EncFile(rel);
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) p = fs->EncDir(rel);
  return ::utimensat(AT_FDCWD, p.c_str(), tv, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

void* OpInit(struct fuse_conn_info* conn, struct fuse_config* cfg) {
  conn->max_read = kMaxRead;  // must equal the max_read mount option (libfuse checks)
  cfg->use_ino = 0;
  cfg->kernel_cache = 0;
  cfg->attr_timeout = 1.0;
  cfg->entry_timeout = 1.0;
  cfg->negative_timeout = 0;
  return fuse_get_context()->private_data;
}

void OpDestroy(void* data) {
  auto* fs = static_cast<CryptFs*>(data);
  Status s = fs->SaveManifest();
  if (!s.ok()) fs->Log("could not update the manifest at unmount: " + s.message());
}

}  // namespace

Status RunCryptMount(const CryptMountOptions& options, const rclone::RcloneKeys& keys,
                     const rclone::NameOptions& names) {
  struct stat st;
  if (::stat(options.encrypted_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return NotFound("encrypted folder " + options.encrypted_dir + " does not exist");
  if (::stat(options.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return NotFound("mount point " + options.mountpoint + " does not exist or is not a folder");
  CryptMountOptions o = options;
  char real[PATH_MAX];
  if (::realpath(options.encrypted_dir.c_str(), real)) o.encrypted_dir = real;
  // libfuse mallocs and frees a reply buffer per read request (up to 512 KiB): keep freed memory in the
  // threads' arenas instead of trimming it back to the kernel (madvise + page faults per request).
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  auto fs = std::make_unique<CryptFs>(o, keys, names);
  COFFER_RETURN_IF_ERROR(fs->LoadManifest());

  static const struct fuse_operations ops = [] {
    struct fuse_operations x {};
    x.getattr = OpGetattr;
    x.readdir = OpReaddir;
    x.mkdir = OpMkdir;
    x.rmdir = OpRmdir;
    x.unlink = OpUnlink;
    x.rename = OpRename;
    x.open = OpOpen;
    x.create = OpCreate;
    x.read = OpRead;
    x.write = OpWrite;
    x.truncate = OpTruncate;
    x.flush = OpFlush;
    x.fsync = OpFsync;
    x.release = OpRelease;
    x.statfs = OpStatfs;
    x.chmod = OpChmod;
    x.utimens = OpUtimens;
    x.init = OpInit;
    x.destroy = OpDestroy;
    return x;
  }();
  FuseRunOptions run;
  run.mountpoint = o.mountpoint;
  run.fsname = "coffer-crypt";
  run.read_only = o.read_only;
  run.foreground = o.foreground;
  run.debug = o.debug;
  // Sequential reads: a 2 MiB readahead window sent as 512 KiB (eight-chunk) requests, which the
  // loop's threads decrypt in parallel (the default 128 KiB window keeps one 128 KiB request in
  // flight). Measured: 128, 256, 512 KiB and 1 MiB requests with 1-4 MiB windows; 512 KiB/2 MiB
  // used the least CPU per byte (fewer requests, each still small enough to spread over cores).
  run.read_ahead_kb = 2048;
  run.max_read = kMaxRead;
  return RunFuse(run, ops, fs.get());  // destroy (in RunFuse) saves the manifest
}

}  // namespace coffer::fuse
