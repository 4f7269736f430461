// Helpers for the `coffer fs` commands: path checks for paths inside a littlefs filesystem, entry
// name checks for names read from an (untrusted) image, a progress bar for long transfers, local
// output files that appear only when complete, and whole-tree walks. Single-threaded.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "coffer/base/status.h"
#include "coffer/fs/filesystem.h"

namespace coffer::cli {

// Normalises a path inside the filesystem to "/a/b" form ("/" for the root). Refuses empty paths,
// "." and ".." components, NUL bytes and names longer than `name_max`.
Result<std::string> FsPath(const std::string& path, uint32_t name_max = 255, bool allow_root = true);
std::string JoinFsPath(const std::string& dir, const std::string& name);
std::string FsBaseName(const std::string& path);

// A name read from a directory of the image is safe to create on the host: not empty, not "."/"..",
// no '/' or NUL.
Status CheckEntryName(const std::string& name, const std::string& where);

// Progress on stderr, only when stderr is a terminal: "label [#####.....]  45%  1.2/2.7 MiB".
class Progress {
 public:
  Progress(Console& console, std::string label, uint64_t total);
  ~Progress();  // clears the line
  void Advance(uint64_t bytes);

 private:
  void Draw(bool force);
  Console& console_;
  std::string label_;
  uint64_t total_, done_ = 0;
  int last_percent_ = -1;
  bool active_;
};

// A local file written under a temporary name in the same directory and renamed into place by
// Commit(); destroyed without Commit() it removes the temporary file (no partial outputs).
class LocalOutputFile {
 public:
  static Result<std::unique_ptr<LocalOutputFile>> Create(const std::string& path);
  ~LocalOutputFile();
  Status Write(const uint8_t* data, size_t size);
  Status Commit();

 private:
  LocalOutputFile(std::string path, std::string temp, int fd) : path_(path), temp_(temp), fd_(fd) {}
  std::string path_, temp_;
  int fd_;
};

// Visits every entry below `dir` (depth first, names sorted as littlefs stores them), skipping "."
// and "..". Each entry's name is checked with CheckEntryName.
struct WalkEntry {
  std::string path;  // "/a/b"
  fs::EntryInfo info;
  int depth;  // 0 for children of `dir`
};
Status WalkFs(fs::Filesystem& fs, const std::string& dir, const std::function<Status(const WalkEntry&)>& visit,
              int depth = 0);
// The entries of one directory, without "." and "..".
Result<std::vector<fs::EntryInfo>> ListDir(fs::Filesystem& fs, const std::string& dir);

// Copies a whole file out of the filesystem, calling sink for each chunk.
Status ReadFsFile(fs::Filesystem& fs, const std::string& path,
                  const std::function<Status(const uint8_t*, size_t)>& sink);

std::string DiskVersionString(fs::DiskVersion v);
std::string HumanBytes(uint64_t n);

}  // namespace coffer::cli
