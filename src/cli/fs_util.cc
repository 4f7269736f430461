#include "cli/fs_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"

namespace coffer::cli {

Result<std::string> FsPath(const std::string& path, uint32_t name_max, bool allow_root) {
  if (path.empty()) return InvalidArgument("empty path: name a path inside the filesystem such as /dir/file");
  if (path.find('\0') != std::string::npos) return InvalidArgument("path contains a NUL byte");
  std::string out;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string part = path.substr(i, j - i);
    if (part == "." || part == "..") {
      return InvalidArgument("path '" + path + "' contains '" + part +
                             "': give a plain absolute path inside the filesystem");
    }
    if (part.size() > name_max) {
      return InvalidArgument("name '" + part.substr(0, 40) + "...' in path is " + std::to_string(part.size()) +
                             " bytes; the filesystem allows at most " + std::to_string(name_max));
    }
    if (!part.empty()) out += "/" + part;
    i = j + 1;
  }
  if (out.empty()) {
    if (!allow_root) return InvalidArgument("path '" + path + "' names the root directory; name a file or directory");
    return std::string("/");
  }
  return out;
}

std::string JoinFsPath(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string FsBaseName(const std::string& path) {
  size_t p = path.rfind('/');
  return p == std::string::npos ? path : path.substr(p + 1);
}

Status CheckEntryName(const std::string& name, const std::string& where) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    std::string shown;
    for (char c : name) shown += (c >= 0x20 && c < 0x7f) ? std::string(1, c) : "?";
    return Corrupt("directory " + where + " holds an entry with an unusable name '" + shown +
                   "' (empty, '.', '..', or containing '/' or NUL): the image is damaged or hostile");
  }
  return Status::Ok();
}

Progress::Progress(Console& console, std::string label, uint64_t total)
    : console_(console), label_(std::move(label)), total_(total), active_(console.err_is_tty && total > 0) {
  Draw(true);
}

Progress::~Progress() {
  if (active_) console_.err << "\r\033[K" << std::flush;
}

void Progress::Advance(uint64_t bytes) {
  done_ += bytes;
  Draw(false);
}

void Progress::Draw(bool force) {
  if (!active_) return;
  int percent = int(total_ ? std::min<uint64_t>(100, done_ * 100 / total_) : 100);
  if (!force && percent == last_percent_) return;
  last_percent_ = percent;
  constexpr int kWidth = 30;
  int filled = percent * kWidth / 100;
  std::ostringstream line;
  line << "\r" << label_ << " [" << std::string(size_t(filled), '#') << std::string(size_t(kWidth - filled), '.')
       << "] " << percent << "%  " << HumanBytes(done_) << " / " << HumanBytes(total_) << "\033[K";
  console_.err << line.str() << std::flush;
}

Result<std::unique_ptr<LocalOutputFile>> LocalOutputFile::Create(const std::string& path) {
  if (path.empty()) return InvalidArgument("empty local path");
  uint8_t rnd[6];
  FillRandom(rnd);
  std::string temp = path + ".coffer-tmp-";
  for (uint8_t b : rnd) temp += "0123456789abcdef"[b & 15];
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("create " + path, errno);
  return std::unique_ptr<LocalOutputFile>(new LocalOutputFile(path, temp, fd));
}

LocalOutputFile::~LocalOutputFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

Status LocalOutputFile::Write(const uint8_t* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd_, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write " + path_, errno);
    }
    data += n;
    size -= size_t(n);
  }
  return Status::Ok();
}

Status LocalOutputFile::Commit() {
  if (::fsync(fd_) != 0) return ErrnoStatus("write " + path_, errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(temp_.c_str());
    return ErrnoStatus("write " + path_, errno);
  }
  fd_ = -1;
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(temp_.c_str());
    return ErrnoStatus("rename into " + path_, err);
  }
  return Status::Ok();
}

Result<std::vector<fs::EntryInfo>> ListDir(fs::Filesystem& fs, const std::string& dir) {
  COFFER_ASSIGN_OR_RETURN(fs::Dir d, fs.OpenDir(dir));
  std::vector<fs::EntryInfo> out;
  // A hostile image could hold a directory that never ends; littlefs bounds it by the block count.
  for (;;) {
    COFFER_ASSIGN_OR_RETURN(auto e, d.Read());
    if (!e) break;
    if (e->name == "." || e->name == "..") continue;
    COFFER_RETURN_IF_ERROR(CheckEntryName(e->name, dir));
    out.push_back(std::move(*e));
  }
  return out;
}

Status WalkFs(fs::Filesystem& fs, const std::string& dir, const std::function<Status(const WalkEntry&)>& visit,
              int depth) {
  if (depth > 1000) return Corrupt("directory nesting deeper than 1000 at " + dir + ": the image is damaged");
  COFFER_ASSIGN_OR_RETURN(auto entries, ListDir(fs, dir));
  for (auto& e : entries) {
    WalkEntry w{JoinFsPath(dir, e.name), e, depth};
    COFFER_RETURN_IF_ERROR(visit(w));
    if (e.type == fs::EntryType::kDir) COFFER_RETURN_IF_ERROR(WalkFs(fs, w.path, visit, depth + 1));
  }
  return Status::Ok();
}

Status ReadFsFile(fs::Filesystem& fs, const std::string& path,
                  const std::function<Status(const uint8_t*, size_t)>& sink) {
  COFFER_ASSIGN_OR_RETURN(fs::File f, fs.Open(path, fs::kRdOnly));
  std::vector<uint8_t> buf(64 * 1024);
  for (;;) {
    COFFER_ASSIGN_OR_RETURN(size_t n, f.Read(buf));
    if (n == 0) break;
    COFFER_RETURN_IF_ERROR(sink(buf.data(), n));
  }
  return f.Close();
}

std::string DiskVersionString(fs::DiskVersion v) {
  uint32_t raw = uint32_t(v);
  return std::to_string(raw >> 16) + "." + std::to_string(raw & 0xffff);
}

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace coffer::cli
