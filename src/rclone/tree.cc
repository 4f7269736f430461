#include "coffer/rclone/tree.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "coffer/base/bytes.h"
#include "coffer/base/random.h"

namespace coffer::rclone {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxNameBytes = 255;

struct Job {
  std::string rel;       // source path relative to the source root
  std::string src_path;  // absolute source path
  std::string dst_path;  // final destination path
  uint64_t size = 0;
  struct timespec mtime {};
};

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
 private:
  int fd_;
};

mode_t FileMode() {
  static const mode_t mode = [] {
    mode_t m = ::umask(022);
    ::umask(m);
    return mode_t(0666 & ~m);
  }();
  return mode;
}

std::string TempNameIn(const std::string& final_path) {
  size_t slash = final_path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : final_path.substr(0, slash);
  return dir + "/.coffer-tmp-" + HexEncode(RandomBytes(8));
}

// Writes one file through `transform` into a temp file, then renames it into place. Nothing is
// left at the destination unless the whole transform succeeded.
Status WriteViaTemp(const Job& job, const std::function<Status(int in, int out)>& transform) {
  Fd in(::open(job.src_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (in.get() < 0) return ErrnoStatus("open " + job.src_path, errno);
  std::string tmp = TempNameIn(job.dst_path);
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (out.get() < 0) return ErrnoStatus("create " + tmp, errno);
  Status s = transform(in.get(), out.get());
  if (s.ok() && ::fchmod(out.get(), FileMode()) != 0) s = ErrnoStatus("chmod " + tmp, errno);
  if (s.ok()) {
    struct timespec times[2] = {job.mtime, job.mtime};
    (void)::futimens(out.get(), times);
  }
  if (s.ok() && ::close(out.release()) != 0) s = ErrnoStatus("close " + tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), job.dst_path.c_str()) != 0) s = ErrnoStatus("rename to " + job.dst_path, errno);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

Status CheckSegmentLengths(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    size_t end = slash == std::string_view::npos ? path.size() : slash;
    if (end - start > kMaxNameBytes)
      return InvalidArgument("encrypted name would be " + std::to_string(end - start) +
                             " bytes, more than the 255 a file system allows; shorten the name");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::Ok();
}

std::string Rel(const fs::path& p, const fs::path& root) { return p.lexically_relative(root).generic_string(); }

class Runner {
 public:
  Runner(const TreeOptions& options, TreeReport& report) : options_(options), report_(report) {}

  void AddError(std::string path, Status s) {
    std::lock_guard lock(mu_);
    report_.errors.push_back({std::move(path), std::move(s)});
  }
  void Warn(const std::string& w) {
    if (options_.warn) options_.warn(w);
  }

  // Runs fn on every job, spreading jobs (or, for few jobs, chunks) over the threads.
  void Run(std::vector<Job>& jobs, const std::function<Status(const Job&, int threads, const ProgressFn&)>& fn) {
    progress_.files_total = jobs.size();
    for (auto& j : jobs) progress_.bytes_total += j.size;
    int threads = std::max(1, options_.threads);
    size_t workers = std::min<size_t>(size_t(threads), std::max<size_t>(jobs.size(), 1));
    int inner = std::max(1, threads / int(workers));
    std::atomic<size_t> next{0};
    auto work = [&] {
      while (true) {
        size_t i = next.fetch_add(1);
        if (i >= jobs.size()) return;
        ProgressFn pf = [this](uint64_t n) { bytes_done_ += n; Report(false); };
        Status s = fn(jobs[i], inner, pf);
        if (!s.ok()) AddError(jobs[i].rel, s);
        else {
          std::lock_guard lock(mu_);
          report_.files++;
          report_.bytes += jobs[i].size;
        }
        files_done_++;
        Report(false);
      }
    };
    std::vector<std::thread> pool;
    for (size_t w = 1; w < workers; ++w) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    Report(true);
  }

 private:
  void Report(bool final) {
    if (!options_.progress) return;
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(progress_mu_);
    if (!final && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    TreeProgress p = progress_;
    p.files_done = files_done_;
    p.bytes_done = bytes_done_;
    options_.progress(p);
  }
  const TreeOptions& options_;
  TreeReport& report_;
  std::mutex mu_, progress_mu_;
  TreeProgress progress_;
  std::atomic<uint64_t> files_done_{0}, bytes_done_{0};
  std::chrono::steady_clock::time_point last_{};
};

Status MakeDirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return IoError("cannot create directory " + path + ": " + ec.message());
  return Status::Ok();
}

}  // namespace

bool IsReservedName(std::string_view name) {
  return name.starts_with(".coffer-tmp-") || name == ".coffer-manifest";
}

Status TreeReport::status() const {
  if (errors.empty()) return Status::Ok();
  const TreeFileError* worst = &errors[0];
  for (auto& e : errors)
    if (e.status.code() == StatusCode::kDataLoss && worst->status.code() != StatusCode::kDataLoss) worst = &e;
  std::string msg = worst->status.message();
  if (errors.size() > 1) msg += " (and " + std::to_string(errors.size() - 1) + " more failed file(s))";
  return Status(worst->status.code(), msg);
}

TreeReport EncryptTree(const NameCipher& names, const FileCipher& files, const std::string& src,
                       const std::string& dst, const TreeOptions& options) {
  TreeReport report;
  Runner runner(options, report);
  std::error_code ec;
  fs::path root = fs::path(src).lexically_normal();
  if (!fs::is_directory(root, ec)) {
    report.errors.push_back({src, NotFound("source folder " + src + " does not exist or is not a folder")});
    return report;
  }
  if (Status s = MakeDirs(dst); !s.ok()) { report.errors.push_back({dst, s}); return report; }
  std::vector<Job> jobs;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) { report.errors.push_back({src, IoError("cannot read " + src + ": " + ec.message())}); return report; }
  for (; it != end; it.increment(ec)) {
    if (ec) { runner.AddError(src, IoError("cannot read folder: " + ec.message())); break; }
    const fs::directory_entry& e = *it;
    std::string rel = Rel(e.path(), root);
    auto st = e.symlink_status(ec);
    if (fs::is_directory(st)) {
      std::string enc = names.EncryptDirName(rel);
      if (Status s = CheckSegmentLengths(enc); !s.ok()) {
        runner.AddError(rel, s.WithContext(rel));
        it.disable_recursion_pending();
        continue;
      }
      if (Status s = MakeDirs(dst + "/" + enc); !s.ok()) runner.AddError(rel, s);
      report.dirs++;
    } else if (fs::is_regular_file(st)) {
      Job j;
      j.rel = rel;
      j.src_path = e.path().string();
      std::string enc = names.EncryptFileName(rel);
      if (Status s = CheckSegmentLengths(enc); !s.ok()) { runner.AddError(rel, s.WithContext(rel)); continue; }
      j.dst_path = dst + "/" + enc;
      struct stat sb;
      if (::lstat(j.src_path.c_str(), &sb) == 0) { j.size = uint64_t(sb.st_size); j.mtime = sb.st_mtim; }
      jobs.push_back(std::move(j));
    } else {
      runner.Warn("skipping " + rel + ": not a regular file or folder (symlinks and devices are not encrypted)");
    }
  }
  runner.Run(jobs, [&](const Job& j, int threads, const ProgressFn& pf) {
    FileNonce nonce = RandomFileNonce();
    Status s = WriteViaTemp(j, [&](int in, int out) { return files.EncryptFd(in, out, nonce, pf, threads); });
    return s.ok() ? s : s.WithContext(j.rel);
  });
  return report;
}

std::vector<TreeEntry> ListEncryptedTree(const NameCipher& names, const std::string& root_dir,
                                         std::vector<TreeFileError>* errors) {
  std::vector<TreeEntry> out;
  std::error_code ec;
  fs::path root = fs::path(root_dir).lexically_normal();
  if (!fs::is_directory(root, ec)) {
    if (errors) errors->push_back({root_dir, NotFound("encrypted folder " + root_dir + " does not exist or is not a folder")});
    return out;
  }
  std::set<std::string> seen;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; it != end; it.increment(ec)) {
    if (ec) { if (errors) errors->push_back({root_dir, IoError("cannot read folder: " + ec.message())}); break; }
    const fs::directory_entry& e = *it;
    std::string name = e.path().filename().string();
    if (IsReservedName(name)) { it.disable_recursion_pending(); continue; }
    std::string rel = Rel(e.path(), root);
    auto st = e.symlink_status(ec);
    TreeEntry te;
    te.encrypted_path = rel;
    if (fs::is_directory(st)) {
      te.is_dir = true;
      auto p = names.DecryptDirName(rel);
      if (!p.ok()) {
        if (errors) errors->push_back({rel, DataLoss(rel + ": folder name does not decrypt (" + p.status().message() + ")")});
        it.disable_recursion_pending();
        continue;
      }
      te.plain_path = *p;
    } else if (fs::is_regular_file(st)) {
      auto p = names.DecryptFileName(rel);
      if (!p.ok()) {
        if (errors) errors->push_back({rel, DataLoss(rel + ": file name does not decrypt (" + p.status().message() + ")")});
        continue;
      }
      te.plain_path = *p;
      struct stat sb;
      if (::lstat(e.path().c_str(), &sb) == 0) te.encrypted_size = uint64_t(sb.st_size);
      auto ps = DecryptedSize(te.encrypted_size);
      te.plain_size = ps.ok() ? *ps : 0;
    } else {
      continue;
    }
    if (!seen.insert(te.plain_path).second) {
      if (errors) errors->push_back({rel, DataLoss(rel + ": decrypts to the same name as another entry (" + te.plain_path + ")")});
      continue;
    }
    out.push_back(std::move(te));
  }
  return out;
}

TreeReport DecryptTree(const NameCipher& names, const FileCipher& files, const std::string& src,
                       const std::string& dst, const TreeOptions& options) {
  TreeReport report;
  Runner runner(options, report);
  std::vector<TreeFileError> name_errors;
  std::vector<TreeEntry> entries = ListEncryptedTree(names, src, &name_errors);
  for (auto& e : name_errors) runner.AddError(e.path, e.status);
  if (!name_errors.empty() && entries.empty() && name_errors[0].status.code() == StatusCode::kNotFound) return report;
  if (Status s = MakeDirs(dst); !s.ok()) { runner.AddError(dst, s); return report; }
  std::vector<Job> jobs;
  std::string src_root = fs::path(src).lexically_normal().string();
  for (auto& e : entries) {
    if (e.is_dir) {
      if (Status s = MakeDirs(dst + "/" + e.plain_path); !s.ok()) runner.AddError(e.encrypted_path, s);
      report.dirs++;
      continue;
    }
    Job j;
    j.rel = e.encrypted_path;
    j.src_path = src_root + "/" + e.encrypted_path;
    j.dst_path = dst + "/" + e.plain_path;
    j.size = e.plain_size;
    struct stat sb;
    if (::lstat(j.src_path.c_str(), &sb) == 0) j.mtime = sb.st_mtim;
    size_t slash = e.plain_path.rfind('/');
    if (slash != std::string::npos) {
      if (Status s = MakeDirs(dst + "/" + e.plain_path.substr(0, slash)); !s.ok()) { runner.AddError(j.rel, s); continue; }
    }
    jobs.push_back(std::move(j));
  }
  runner.Run(jobs, [&](const Job& j, int threads, const ProgressFn& pf) {
    std::string what = j.rel;
    return WriteViaTemp(j, [&](int in, int out) { return files.DecryptFd(in, out, what, pf, threads); });
  });
  return report;
}

TreeReport VerifyTree(const NameCipher& names, const FileCipher& files, const std::string& root,
                      const TreeOptions& options) {
  TreeReport report;
  Runner runner(options, report);
  std::vector<TreeFileError> name_errors;
  std::vector<TreeEntry> entries = ListEncryptedTree(names, root, &name_errors);
  for (auto& e : name_errors) runner.AddError(e.path, e.status);
  std::string src_root = fs::path(root).lexically_normal().string();
  std::vector<Job> jobs;
  for (auto& e : entries) {
    if (e.is_dir) { report.dirs++; continue; }
    Job j;
    j.rel = e.encrypted_path;
    j.src_path = src_root + "/" + e.encrypted_path;
    j.size = e.plain_size;
    jobs.push_back(std::move(j));
  }
  runner.Run(jobs, [&](const Job& j, int threads, const ProgressFn& pf) {
    Fd in(::open(j.src_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (in.get() < 0) return ErrnoStatus("open " + j.src_path, errno);
    return files.DecryptFd(in.get(), -1, j.rel, pf, threads);
  });
  return report;
}

}  // namespace coffer::rclone
