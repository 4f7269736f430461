#include "coffer/blockdev/file_block_device.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace coffer {

Result<std::unique_ptr<FileBlockDevice>> FileBlockDevice::Open(const std::string& path,
                                                               BlockGeometry geometry, Options options) {
  COFFER_RETURN_IF_ERROR(geometry.Validate());
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  if (options.create && !options.read_only) flags |= O_CREAT;
  int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) return ErrnoStatus("open image " + path, errno);
  auto fail = [&](Status s) {
    ::close(fd);
    return s;
  };
  struct stat st;
  if (::fstat(fd, &st) != 0) return fail(ErrnoStatus("stat " + path, errno));
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) return fail(InvalidArgument(path + " is not a file"));
  uint64_t want = geometry.total_bytes();
  if (options.create && S_ISREG(st.st_mode) && uint64_t(st.st_size) != want) {
    // Fill the new tail with the fill byte (the state of fresh flash).
    std::vector<uint8_t> chunk(1 << 16, options.fill);
    for (uint64_t off = uint64_t(st.st_size); off < want;) {
      size_t n = size_t(std::min<uint64_t>(chunk.size(), want - off));
      ssize_t w = ::pwrite(fd, chunk.data(), n, off_t(off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail(ErrnoStatus("extend " + path, errno));
      }
      off += uint64_t(w);
    }
    if (uint64_t(st.st_size) > want && ::ftruncate(fd, off_t(want)) != 0) {
      return fail(ErrnoStatus("truncate " + path, errno));
    }
  } else if (S_ISREG(st.st_mode) && uint64_t(st.st_size) < want) {
    return fail(Corrupt(path + " is " + std::to_string(st.st_size) + " bytes, smaller than the geometry's " +
                        std::to_string(want) + " (" + geometry.ToString() + "): truncated image?"));
  }
  return std::unique_ptr<FileBlockDevice>(new FileBlockDevice(fd, path, geometry, options.read_only));
}

FileBlockDevice::FileBlockDevice(int fd, std::string path, BlockGeometry geometry, bool read_only)
    : fd_(fd), path_(std::move(path)), geometry_(geometry), read_only_(read_only) {}

FileBlockDevice::~FileBlockDevice() { ::close(fd_); }

Status FileBlockDevice::Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) {
  COFFER_RETURN_IF_ERROR(CheckRange(block, offset, out.size(), geometry_.read_size, "read"));
  off_t pos = off_t(uint64_t(block) * geometry_.block_size + offset);
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd_, out.data() + done, out.size() - done, pos + off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("read " + path_, errno);
    if (n == 0) return Corrupt(path_ + ": unexpected end of image at block " + std::to_string(block));
    done += size_t(n);
  }
  return Status::Ok();
}

Status FileBlockDevice::Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) {
  if (read_only_) return PermissionDenied(path_ + " is open read-only");
  COFFER_RETURN_IF_ERROR(CheckRange(block, offset, data.size(), geometry_.prog_size, "prog"));
  off_t pos = off_t(uint64_t(block) * geometry_.block_size + offset);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd_, data.data() + done, data.size() - done, pos + off_t(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus("write " + path_, errno);
    done += size_t(n);
  }
  return Status::Ok();
}

Status FileBlockDevice::Erase(uint32_t block) {
  if (read_only_) return PermissionDenied(path_ + " is open read-only");
  COFFER_RETURN_IF_ERROR(CheckRange(block, 0, 0, 1, "erase"));
  if (geometry_.erase_value < 0) return Status::Ok();  // erase leaves bytes as they were
  std::vector<uint8_t> fill(geometry_.block_size, uint8_t(geometry_.erase_value));
  return Prog(block, 0, fill);
}

Status FileBlockDevice::Sync() {
  if (read_only_) return Status::Ok();
  if (::fdatasync(fd_) != 0) return ErrnoStatus("sync " + path_, errno);
  return Status::Ok();
}

}  // namespace coffer
