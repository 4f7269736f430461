#include "coffer/base/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "coffer/base/random.h"

namespace coffer {
namespace {

std::string ParentDirectory(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status WriteAll(int fd, ByteSpan data, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + what, errno);
    }
    done += size_t(n);
  }
  return Status::Ok();
}

template <typename Sink>
Status ReadAllInto(const std::string& path, size_t max_size, Sink&& make) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoStatus("stat " + path, e);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path + " is not a regular file");
  }
  if (size_t(st.st_size) > max_size) {
    ::close(fd);
    return InvalidArgument(path + " is too large (" + std::to_string(st.st_size) + " bytes)");
  }
  auto&& buf = make(size_t(st.st_size));
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t n = ::read(fd, buf.data() + done, buf.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return ErrnoStatus("read " + path, e);
    }
    if (n == 0) break;
    done += size_t(n);
  }
  ::close(fd);
  if (done != buf.size()) return IoError(path + " changed size while being read");
  return Status::Ok();
}

}  // namespace

Result<Bytes> ReadFileBytes(const std::string& path) {
  Bytes out;
  Status s = ReadAllInto(path, size_t(1) << 40, [&](size_t n) -> Bytes& {
    out.resize(n);
    return out;
  });
  if (!s.ok()) return s;
  return out;
}

Result<SecretBytes> ReadSecretFile(const std::string& path, size_t max_size) {
  SecretBytes out;
  struct View {
    SecretBytes* s;
    uint8_t* data() { return s->reveal().data(); }
    size_t size() const { return s->size(); }
  };
  Status s = ReadAllInto(path, max_size, [&](size_t n) {
    out = SecretBytes(n);
    return View{&out};
  });
  if (!s.ok()) return s;
  return out;
}

Status PwriteAll(int fd, const uint8_t* data, size_t size, uint64_t offset, const std::string& what) {
  while (size > 0) {
    ssize_t w = ::pwrite(fd, data, size, off_t(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return ErrnoStatus("write " + what, errno);
    data += w;
    size -= size_t(w);
    offset += uint64_t(w);
  }
  return Status::Ok();
}

Status PreadAll(int fd, uint8_t* out, size_t size, uint64_t offset, const std::string& what,
                StatusCode short_read) {
  while (size > 0) {
    ssize_t r = ::pread(fd, out, size, off_t(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("read " + what, errno);
    if (r == 0) return Status(short_read, what + " is shorter than its header says (truncated?)");
    out += r;
    size -= size_t(r);
    offset += uint64_t(r);
  }
  return Status::Ok();
}

Status SyncParentDirectory(const std::string& path) {
  std::string dir = ParentDirectory(path);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open directory " + dir, errno);
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus("fsync directory " + dir, e);
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, ByteSpan data, AtomicWriteOptions options) {
  if (!options.overwrite && ::access(path.c_str(), F_OK) == 0) {
    return AlreadyExists(path + " already exists");
  }
  std::string tmp = path + ".tmp-" + HexEncode(RandomBytes(6));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, options.mode);
  if (fd < 0) return ErrnoStatus("create " + tmp, errno);
  Status s;
  if (::fchmod(fd, options.mode) != 0) s = ErrnoStatus("chmod " + tmp, errno);
  if (s.ok()) s = WriteAll(fd, data, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus("fsync " + tmp, errno);
  if (::close(fd) != 0 && s.ok()) s = ErrnoStatus("close " + tmp, errno);
  if (s.ok()) {
    if (!options.overwrite) {
      // link() fails if path appeared meanwhile: no silent overwrite.
      if (::link(tmp.c_str(), path.c_str()) != 0) s = ErrnoStatus("create " + path, errno);
      ::unlink(tmp.c_str());
    } else if (::rename(tmp.c_str(), path.c_str()) != 0) {
      s = ErrnoStatus("rename " + tmp + " to " + path, errno);
    }
  }
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return s;
  }
  return SyncParentDirectory(path);
}

}  // namespace coffer
