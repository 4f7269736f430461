// Shared pieces of the filesystem harnesses: a whole-tree snapshot of a mounted filesystem (paths,
// types, contents) to compare against models, and deterministic pseudo-random contents.
// Test-only; single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "coffer/base/status.h"
#include "coffer/fs/filesystem.h"

namespace coffer::fstest {

// path -> contents for files; directories map to the marker kDirMarker.
using Tree = std::map<std::string, std::string>;
inline const std::string kDirMarker = std::string("\0<dir>", 6);

// Reads every directory and file below the root.
Result<Tree> ReadTree(fs::Filesystem& fs);
std::string DescribeTree(const Tree& tree);  // for failure messages
std::string Content(uint32_t seed, size_t size);

Status WriteWholeFile(fs::Filesystem& fs, const std::string& path, const std::string& data,
                      uint32_t flags = fs::kWrOnly | fs::kCreat | fs::kTrunc);
Result<std::string> ReadWholeFile(fs::Filesystem& fs, const std::string& path);

}  // namespace coffer::fstest
