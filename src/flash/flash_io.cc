#include "coffer/flash/flash_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"

namespace coffer::flash {

AtomicOutput::~AtomicOutput() { Abandon(); }

AtomicOutput::AtomicOutput(AtomicOutput&& o) noexcept { *this = std::move(o); }

AtomicOutput& AtomicOutput::operator=(AtomicOutput&& o) noexcept {
  if (this != &o) {
    Abandon();
    path_ = std::move(o.path_);
    tmp_ = std::move(o.tmp_);
    fd_ = o.fd_;
    size_ = o.size_;
    overwrite_ = o.overwrite_;
    o.fd_ = -1;
    o.tmp_.clear();
  }
  return *this;
}

void AtomicOutput::Abandon() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
  tmp_.clear();
}

Result<AtomicOutput> AtomicOutput::Create(const std::string& path, unsigned mode, bool overwrite) {
  if (path.empty()) return InvalidArgument("output path is empty");
  if (!overwrite && ::access(path.c_str(), F_OK) == 0) {
    return AlreadyExists(path + " already exists");
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return InvalidArgument(path + " is a directory; name an output file");
  }
  AtomicOutput out;
  out.path_ = path;
  out.overwrite_ = overwrite;
  out.tmp_ = path + ".tmp-" + HexEncode(RandomBytes(6));
  out.fd_ = ::open(out.tmp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (out.fd_ < 0) {
    int e = errno;
    out.tmp_.clear();
    return ErrnoStatus("create output " + path, e);
  }
  if (::fchmod(out.fd_, mode) != 0) return ErrnoStatus("chmod " + out.tmp_, errno);
  return out;
}

Status AtomicOutput::WriteAt(uint64_t offset, ByteSpan data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path_, errno);
    }
    done += size_t(n);
  }
  size_ = std::max(size_, offset + data.size());
  return Status::Ok();
}

Status AtomicOutput::Write(ByteSpan data) { return WriteAt(size_, data); }

Status AtomicOutput::FillTo(uint64_t size, uint8_t fill) {
  Bytes buf(1 << 16, fill);
  while (size_ < size) {
    size_t n = size_t(std::min<uint64_t>(buf.size(), size - size_));
    COFFER_RETURN_IF_ERROR(Write(ByteSpan(buf.data(), n)));
  }
  return Status::Ok();
}

Status AtomicOutput::Commit() {
  if (fd_ < 0) return Internal("output already committed or abandoned");
  if (::fsync(fd_) != 0) return ErrnoStatus("fsync " + tmp_, errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return ErrnoStatus("close " + tmp_, errno);
  }
  fd_ = -1;
  if (!overwrite_) {
    // link() fails if the target appeared meanwhile: never clobber.
    if (::link(tmp_.c_str(), path_.c_str()) != 0) return ErrnoStatus("create " + path_, errno);
    ::unlink(tmp_.c_str());
  } else if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    return ErrnoStatus("rename into " + path_, errno);
  }
  tmp_.clear();
  return SyncParentDirectory(path_);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}
InputFile::InputFile(InputFile&& o) noexcept { *this = std::move(o); }
InputFile& InputFile::operator=(InputFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(o.path_);
    fd_ = o.fd_;
    size_ = o.size_;
    o.fd_ = -1;
  }
  return *this;
}

Result<InputFile> InputFile::Open(const std::string& path) {
  InputFile f;
  f.path_ = path;
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd_ < 0) {
    int e = errno;
    if (e == ENOENT) return NotFound(path + ": No such file or directory");
    return ErrnoStatus("open " + path, e);
  }
  struct stat st;
  if (::fstat(f.fd_, &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument(path + " is not a regular file");
  f.size_ = uint64_t(st.st_size);
  return f;
}

Status InputFile::ReadAt(uint64_t offset, MutableByteSpan out) const {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, off_t(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("read " + path_, errno);
    }
    if (n == 0) return IoError(path_ + " shrank while being read");
    done += size_t(n);
  }
  return Status::Ok();
}

bool SameFile(const std::string& a, const std::string& b) {
  if (a == b) return true;
  struct stat sa, sb;
  if (::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0) {
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  }
  char ra[PATH_MAX], rb[PATH_MAX];
  // A missing output may still name the same path spelled differently ("./x" vs "x").
  std::string da = a.substr(0, a.find_last_of('/') + 1), db = b.substr(0, b.find_last_of('/') + 1);
  if (da.empty()) da = ".";
  if (db.empty()) db = ".";
  if (::realpath(da.c_str(), ra) && ::realpath(db.c_str(), rb)) {
    std::string fa = a.substr(a.find_last_of('/') + 1), fb = b.substr(b.find_last_of('/') + 1);
    return std::string(ra) == std::string(rb) && fa == fb;
  }
  return false;
}

Result<TransformResult> TransformFile(FlashCipher& cipher, const std::string& in_path, const std::string& out_path,
                                      const TransformOptions& options) {
  if (SameFile(in_path, out_path)) {
    return InvalidArgument("The input \"" + in_path + "\" and output \"" + out_path + "\" should not be the same!");
  }
  COFFER_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(in_path));
  const uint64_t total = in.size();
  COFFER_RETURN_IF_ERROR(CheckOperation(cipher.scheme(), options.address, total, options.decrypt));
  TransformResult result;
  result.input_bytes = total;
  COFFER_ASSIGN_OR_RETURN(AtomicOutput out, AtomicOutput::Create(out_path, options.decrypt ? 0600 : 0644));
  size_t chunk = std::max<size_t>(16, options.chunk_size / 16 * 16);
  Bytes buf(chunk);
  uint64_t done = 0;
  while (done < total) {
    size_t n = size_t(std::min<uint64_t>(chunk, total - done));
    COFFER_RETURN_IF_ERROR(in.ReadAt(done, MutableByteSpan(buf.data(), n)));
    size_t padded = n;
    if (n % 16 != 0) {
      // Only the last chunk can be short; espsecure pads its last block with random bytes.
      padded = (n + 15) / 16 * 16;
      FillRandom(MutableByteSpan(buf.data() + n, padded - n));
      result.padding_bytes = padded - n;
    }
    MutableByteSpan span(buf.data(), padded);
    Status s = options.decrypt ? cipher.Decrypt(options.address + done, span, span)
                               : cipher.Encrypt(options.address + done, span, span);
    COFFER_RETURN_IF_ERROR(s);
    COFFER_RETURN_IF_ERROR(out.Write(span));
    done += n;
    if (options.progress) options.progress(done, total);
  }
  result.output_bytes = out.size();
  COFFER_RETURN_IF_ERROR(out.Commit());
  return result;
}

}  // namespace coffer::flash
