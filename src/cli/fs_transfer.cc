// `coffer fs put|get|pack|unpack`: moving bytes between the host and a littlefs filesystem.
// Nothing half-made is left behind on failure: get writes a temporary file and renames it, unpack
// fills a temporary directory and renames it, pack builds a temporary image and renames it, and put
// writes a temporary entry inside the filesystem and renames it over the target (littlefs renames
// are atomic). Progress bars appear only when stderr is a terminal.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>

#include "cli/device_options.h"
#include "cli/fs_commands.h"
#include "cli/fs_util.h"
#include "coffer/base/random.h"

namespace coffer::cli {
namespace {

namespace stdfs = std::filesystem;

constexpr size_t kChunk = 64 * 1024;

std::string RandomSuffix() {
  uint8_t rnd[6];
  FillRandom(rnd);
  std::string s;
  for (uint8_t b : rnd) s += "0123456789abcdef"[b & 15];
  return s;
}

// Reads a local file in chunks.
class LocalInput {
 public:
  static Result<LocalInput> Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open " + path, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      return ErrnoStatus("stat " + path, err);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd);
      return InvalidArgument(path + " is not a regular file" +
                             std::string(S_ISDIR(st.st_mode) ? " (to copy a directory use 'coffer fs pack')" : ""));
    }
    return LocalInput(fd, path, uint64_t(st.st_size));
  }
  LocalInput(LocalInput&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)), size_(o.size_) { o.fd_ = -1; }
  ~LocalInput() {
    if (fd_ >= 0) ::close(fd_);
  }
  uint64_t size() const { return size_; }
  Result<size_t> Read(std::vector<uint8_t>& buf) {
    for (;;) {
      ssize_t n = ::read(fd_, buf.data(), buf.size());
      if (n >= 0) return size_t(n);
      if (errno != EINTR) return ErrnoStatus("read " + path_, errno);
    }
  }

 private:
  LocalInput(int fd, std::string path, uint64_t size) : fd_(fd), path_(std::move(path)), size_(size) {}
  int fd_;
  std::string path_;
  uint64_t size_;
};

// Copies a local file into the filesystem as `path` (which must not exist).
Status WriteNewFsFile(fs::Filesystem& f, LocalInput& in, const std::string& path, Progress& progress) {
  COFFER_ASSIGN_OR_RETURN(fs::File file, f.Open(path, fs::kWrOnly | fs::kCreat | fs::kExcl));
  std::vector<uint8_t> buf(kChunk);
  uint64_t total = 0;
  for (;;) {
    COFFER_ASSIGN_OR_RETURN(size_t n, in.Read(buf));
    if (n == 0) break;
    COFFER_ASSIGN_OR_RETURN(size_t w, file.Write(std::span<const uint8_t>(buf.data(), n)));
    if (w != n) return NoSpace("short write to " + path);
    total += n;
    progress.Advance(n);
  }
  if (total != in.size()) return IoError("the local file changed size while it was being copied");
  return file.Close();
}

Status DoPut(const DeviceOptions& o, const std::string& local, const std::string& raw, Console& con) {
  COFFER_ASSIGN_OR_RETURN(LocalInput in, LocalInput::Open(local));
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadWrite));
  fs::Filesystem& f = *m->fs;
  uint32_t nm = f.info().name_max;
  COFFER_ASSIGN_OR_RETURN(std::string path, FsPath(raw, nm));
  auto st = f.Stat(path);
  if (st.ok() && st->type == fs::EntryType::kDir) {
    COFFER_ASSIGN_OR_RETURN(path, FsPath(JoinFsPath(path, stdfs::path(local).filename().string()), nm, false));
  } else if (!st.ok() && st.status().code() != StatusCode::kNotFound) {
    return st.status();
  }
  if (path == "/") return InvalidArgument("put: name a file path inside the filesystem");
  std::string parent = path.substr(0, std::max<size_t>(1, path.rfind('/')));
  std::string temp = JoinFsPath(parent, ".coffer-put-" + RandomSuffix());
  Status s;
  {
    Progress progress(con, "put " + path, in.size());
    s = WriteNewFsFile(f, in, temp, progress);
  }
  if (s.ok()) s = f.Rename(temp, path).WithContext("put " + path);
  if (!s.ok()) {
    (void)f.Remove(temp);  // best effort: the target keeps its old content either way
    if (s.code() == StatusCode::kNotFound) return NotFound("put " + path + ": directory " + parent + " does not exist");
    return s.WithContext("put " + path);
  }
  COFFER_RETURN_IF_ERROR(m->fs->Unmount());
  return m->dev.device->Sync();
}

Status DoGet(const DeviceOptions& o, const std::string& raw, const std::string& local_arg, Console& con) {
  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  COFFER_ASSIGN_OR_RETURN(std::string path, FsPath(raw, m->fs->info().name_max, false));
  COFFER_ASSIGN_OR_RETURN(fs::EntryInfo st, m->fs->Stat(path));
  if (st.type != fs::EntryType::kFile) return FailedPrecondition(path + " is a directory; use 'coffer fs unpack'");
  std::string local = local_arg;
  std::error_code ec;
  if (stdfs::is_directory(local, ec)) local = (stdfs::path(local) / FsBaseName(path)).string();
  COFFER_ASSIGN_OR_RETURN(auto out, LocalOutputFile::Create(local));
  {
    Progress progress(con, "get " + path, st.size);
    COFFER_RETURN_IF_ERROR(ReadFsFile(*m->fs, path, [&](const uint8_t* d, size_t n) {
      progress.Advance(n);
      return out->Write(d, n);
    }));
  }
  return out->Commit();
}

// --- pack ---

struct LocalEntry {
  std::string local;  // host path
  std::string fs_path;
  bool dir;
  uint64_t size;
};

Status ScanLocal(const stdfs::path& dir, const std::string& fs_dir, uint32_t name_max, std::vector<LocalEntry>& out,
                 uint64_t& bytes, Console& con) {
  std::error_code ec;
  std::vector<stdfs::directory_entry> entries;
  for (stdfs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(*it);
  if (ec) return IoError("read directory " + dir.string() + ": " + ec.message());
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
  for (const auto& e : entries) {
    std::string name = e.path().filename().string();
    if (name.size() > name_max) {
      return InvalidArgument("pack: " + e.path().string() + ": name is " + std::to_string(name.size()) +
                             " bytes; littlefs allows at most " + std::to_string(name_max));
    }
    auto status = e.symlink_status(ec);
    if (ec) return IoError("stat " + e.path().string() + ": " + ec.message());
    std::string fs_path = JoinFsPath(fs_dir, name);
    if (stdfs::is_directory(status)) {
      out.push_back({e.path().string(), fs_path, true, 0});
      COFFER_RETURN_IF_ERROR(ScanLocal(e.path(), fs_path, name_max, out, bytes, con));
    } else if (stdfs::is_regular_file(status)) {
      uint64_t size = stdfs::file_size(e.path(), ec);
      if (ec) return IoError("stat " + e.path().string() + ": " + ec.message());
      if (size > 0x7fffffffu) return InvalidArgument("pack: " + e.path().string() + " is larger than littlefs's 2 GiB file limit");
      out.push_back({e.path().string(), fs_path, false, size});
      bytes += size;
    } else {
      con.err << "coffer: warning: skipping " << e.path().string()
              << " (littlefs holds only regular files and directories)\n";
    }
  }
  return Status::Ok();
}

Status PackInto(fs::Filesystem& f, const std::vector<LocalEntry>& entries, uint64_t bytes, Console& con) {
  Progress progress(con, "pack", bytes);
  std::vector<uint8_t> buf(kChunk);
  for (const auto& e : entries) {
    if (e.dir) {
      COFFER_RETURN_IF_ERROR(f.Mkdir(e.fs_path).WithContext("pack: mkdir " + e.fs_path));
      continue;
    }
    COFFER_ASSIGN_OR_RETURN(LocalInput in, LocalInput::Open(e.local));
    COFFER_RETURN_IF_ERROR(WriteNewFsFile(f, in, e.fs_path, progress).WithContext("pack: " + e.fs_path));
  }
  return Status::Ok();
}

Status DoPack(const DeviceOptions& o, const std::string& dir, Console& con) {
  std::error_code ec;
  if (!stdfs::is_directory(dir, ec)) return InvalidArgument("pack: " + dir + " is not a directory");
  if (!o.image.empty() && (o.block_size == 0 || o.block_count == 0)) {
    return InvalidArgument("pack needs --block-size and --block-count for the new image");
  }
  std::vector<LocalEntry> entries;
  uint64_t bytes = 0;
  COFFER_RETURN_IF_ERROR(ScanLocal(dir, "/", 255, entries, bytes, con));
  std::string temp = o.image.empty() ? std::string() : o.image + ".coffer-tmp-" + RandomSuffix();
  auto build = [&]() -> Status {
    COFFER_ASSIGN_OR_RETURN(FsDevice dev, OpenFsDevice(o, DeviceUse::kFormat, temp));
    COFFER_RETURN_IF_ERROR(fs::Filesystem::Format(*dev.device, dev.config).WithContext("format " + dev.description));
    COFFER_ASSIGN_OR_RETURN(auto f, fs::Filesystem::Mount(*dev.device, dev.config));
    Status s = PackInto(*f, entries, bytes, con);
    if (s.code() == StatusCode::kNoSpace) {
      return NoSpace("pack: " + std::to_string(bytes) + " bytes in " + std::to_string(entries.size()) +
                     " entries do not fit in " + dev.description + ": " + s.message());
    }
    COFFER_RETURN_IF_ERROR(s);
    COFFER_ASSIGN_OR_RETURN(uint32_t used, f->BlocksInUse());
    COFFER_RETURN_IF_ERROR(f->Unmount());
    f.reset();
    COFFER_RETURN_IF_ERROR(dev.device->Sync());
    size_t files = size_t(std::count_if(entries.begin(), entries.end(), [](const auto& e) { return !e.dir; }));
    con.out << "packed " << files << " files and " << entries.size() - files << " directories (" << bytes
            << " bytes) into " << dev.description << ", littlefs " << o.disk_version << "; " << used
            << " blocks in use\n";
    return Status::Ok();
  };
  Status s = build();
  if (temp.empty()) return s;
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  if (::rename(temp.c_str(), o.image.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return ErrnoStatus("pack: rename into " + o.image, err);
  }
  return Status::Ok();
}

// --- unpack ---

Status DoUnpack(const DeviceOptions& o, const std::string& dir, Console& con) {
  std::error_code ec;
  stdfs::path target(dir);
  if (dir.empty()) return InvalidArgument("unpack: empty output directory");
  bool exists = stdfs::exists(stdfs::symlink_status(target, ec));
  if (exists && !(stdfs::is_directory(stdfs::symlink_status(target, ec)) && stdfs::is_empty(target, ec))) {
    return AlreadyExists("unpack: " + dir + " exists and is not an empty directory");
  }
  stdfs::path parent = stdfs::absolute(target, ec).parent_path();
  if (!stdfs::is_directory(parent, ec)) return NotFound("unpack: parent directory " + parent.string() + " does not exist");

  COFFER_ASSIGN_OR_RETURN(auto m, MountFs(o, DeviceUse::kReadOnly));
  fs::Filesystem& f = *m->fs;
  std::vector<WalkEntry> entries;
  uint64_t bytes = 0;
  COFFER_RETURN_IF_ERROR(WalkFs(f, "/", [&](const WalkEntry& w) {
    entries.push_back(w);
    if (w.info.type == fs::EntryType::kFile) bytes += w.info.size;
    return Status::Ok();
  }));

  stdfs::path temp = parent / (target.filename().string() + ".coffer-tmp-" + RandomSuffix());
  if (::mkdir(temp.c_str(), 0755) != 0) return ErrnoStatus("unpack: create " + temp.string(), errno);
  auto fill = [&]() -> Status {
    Progress progress(con, "unpack", bytes);
    for (const auto& w : entries) {
      std::string local = (temp / w.path.substr(1)).string();
      if (w.info.type == fs::EntryType::kDir) {
        if (::mkdir(local.c_str(), 0755) != 0) return ErrnoStatus("unpack: mkdir " + local, errno);
        continue;
      }
      int fd = ::open(local.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0) return ErrnoStatus("unpack: create " + local, errno);
      uint64_t got = 0;
      Status s = ReadFsFile(f, w.path, [&](const uint8_t* d, size_t n) -> Status {
        while (n > 0) {
          ssize_t k = ::write(fd, d, n);
          if (k < 0) {
            if (errno == EINTR) continue;
            return ErrnoStatus("unpack: write " + local, errno);
          }
          d += k;
          n -= size_t(k);
          got += uint64_t(k);
          progress.Advance(uint64_t(k));
        }
        return Status::Ok();
      });
      if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus("unpack: write " + local, errno);
      ::close(fd);
      COFFER_RETURN_IF_ERROR(s.WithContext("unpack " + w.path));
      if (got != w.info.size) {
        return Corrupt("unpack " + w.path + ": directory says " + std::to_string(w.info.size) +
                       " bytes but the file holds " + std::to_string(got));
      }
    }
    return Status::Ok();
  };
  Status s = fill();
  if (s.ok() && exists && ::rmdir(target.c_str()) != 0) s = ErrnoStatus("unpack: replace " + dir, errno);
  if (s.ok() && ::rename(temp.c_str(), target.c_str()) != 0) s = ErrnoStatus("unpack: rename into " + dir, errno);
  if (!s.ok()) {
    stdfs::remove_all(temp, ec);
    return s;
  }
  size_t files = size_t(std::count_if(entries.begin(), entries.end(),
                                      [](const auto& w) { return w.info.type == fs::EntryType::kFile; }));
  con.out << "unpacked " << files << " files and " << entries.size() - files << " directories (" << bytes
          << " bytes) into " << dir << "\n";
  return Status::Ok();
}

}  // namespace

void RegisterFsTransferCommands(CLI::App& fs, Context& ctx, std::shared_ptr<DeviceOptions> o) {
  {
    auto local = std::make_shared<std::string>(), path = std::make_shared<std::string>();
    auto* c = AddFsSubcommand(fs, "put", "Copy a local file into the filesystem (replaces atomically)",
                              "  coffer fs put --image disk.img ./app.json /config/app.json\n"
                              "  coffer fs put --volume file:disk.vol --key disk.key ./a.bin /");
    AddDeviceOptions(*c, *o, DeviceUse::kReadWrite);
    c->add_option("LOCAL", *local, "Local file to copy")->required();
    c->add_option("PATH", *path, "Destination path (an existing directory: copy into it)")->required();
    c->callback([&ctx, o, local, path] { RunFsCommand(ctx, *o, [&] { return DoPut(*o, *local, *path, ctx.console); }); });
  }
  {
    auto local = std::make_shared<std::string>(), path = std::make_shared<std::string>();
    auto* c = AddFsSubcommand(fs, "get", "Copy a file out of the filesystem (the local file appears only when complete)",
                              "  coffer fs get --image disk.img /config/app.json ./app.json\n"
                              "  coffer fs get --volume file:disk.vol --key disk.key /a.bin .");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->add_option("PATH", *path, "File inside the filesystem")->required();
    c->add_option("LOCAL", *local, "Local destination (an existing directory: copy into it)")->required();
    c->callback([&ctx, o, local, path] { RunFsCommand(ctx, *o, [&] { return DoGet(*o, *path, *local, ctx.console); }); });
  }
  {
    auto dir = std::make_shared<std::string>();
    auto* c = AddFsSubcommand(
        fs, "pack", "Build a littlefs image (or fill a sealed volume) from a local directory, like mklittlefs",
        "  coffer fs pack ./data --image data.img --block-size 4096 --block-count 256\n"
        "  coffer fs pack ./disk --image disk.img --block-size 256 --block-count 16384 --disk-version 2.0\n"
        "  coffer fs pack ./data --image esp.img --block-size 4096 --block-count 256 --read-size 16 --prog-size 16\n"
        "The image file is replaced only when the whole tree fits; a failed pack leaves no file behind.");
    AddDeviceOptions(*c, *o, DeviceUse::kFormat);
    c->add_option("DIR", *dir, "Local directory whose contents become the filesystem's root")->required();
    c->callback([&ctx, o, dir] { RunFsCommand(ctx, *o, [&] { return DoPack(*o, *dir, ctx.console); }); });
  }
  {
    auto dir = std::make_shared<std::string>();
    auto* c = AddFsSubcommand(fs, "unpack",
                              "Copy the whole filesystem into a new local directory",
                              "  coffer fs unpack --image data.img ./data\n"
                              "  coffer fs unpack --volume file:disk.vol --key disk.key ./restore\n"
                              "DIR must not exist (or be empty); on failure nothing is left behind.");
    AddDeviceOptions(*c, *o, DeviceUse::kReadOnly);
    c->add_option("DIR", *dir, "Local directory to create")->required();
    c->callback([&ctx, o, dir] { RunFsCommand(ctx, *o, [&] { return DoUnpack(*o, *dir, ctx.console); }); });
  }
}

}  // namespace coffer::cli
