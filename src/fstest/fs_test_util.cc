#include "fstest/fs_test_util.h"

#include <random>
#include <sstream>

namespace coffer::fstest {
namespace {

Status ReadDirInto(fs::Filesystem& fs, const std::string& dir, Tree& out, int depth) {
  if (depth > 64) return Corrupt("directory nesting too deep at " + dir);
  COFFER_ASSIGN_OR_RETURN(fs::Dir d, fs.OpenDir(dir));
  std::vector<fs::EntryInfo> entries;
  for (;;) {
    COFFER_ASSIGN_OR_RETURN(auto e, d.Read());
    if (!e) break;
    if (e->name == "." || e->name == "..") continue;
    entries.push_back(*e);
  }
  for (const auto& e : entries) {
    std::string path = (dir == "/" ? "/" : dir + "/") + e.name;
    if (out.count(path)) return Corrupt("entry " + path + " listed twice");
    if (e.type == fs::EntryType::kDir) {
      out[path] = kDirMarker;
      COFFER_RETURN_IF_ERROR(ReadDirInto(fs, path, out, depth + 1));
    } else {
      COFFER_ASSIGN_OR_RETURN(std::string data, ReadWholeFile(fs, path));
      if (data.size() != e.size) {
        return Corrupt(path + ": directory size " + std::to_string(e.size) + " but read " + std::to_string(data.size()));
      }
      out[path] = std::move(data);
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Tree> ReadTree(fs::Filesystem& fs) {
  Tree t;
  COFFER_RETURN_IF_ERROR(ReadDirInto(fs, "/", t, 0));
  return t;
}

std::string DescribeTree(const Tree& tree) {
  std::ostringstream os;
  for (const auto& [p, c] : tree) {
    if (c == kDirMarker) {
      os << "  " << p << "/\n";
    } else {
      os << "  " << p << " (" << c.size() << " bytes, first " << int(c.empty() ? -1 : uint8_t(c[0])) << ")\n";
    }
  }
  return os.str();
}

std::string Content(uint32_t seed, size_t size) {
  std::mt19937 rng(seed);
  std::string s(size, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

Status WriteWholeFile(fs::Filesystem& fs, const std::string& path, const std::string& data, uint32_t flags) {
  COFFER_ASSIGN_OR_RETURN(fs::File f, fs.Open(path, flags));
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t done = 0;
  while (done < data.size()) {
    size_t chunk = std::min<size_t>(data.size() - done, 1000);
    COFFER_ASSIGN_OR_RETURN(size_t n, f.Write(std::span<const uint8_t>(p + done, chunk)));
    if (n != chunk) return Internal("short write");
    done += n;
  }
  return f.Close();
}

Result<std::string> ReadWholeFile(fs::Filesystem& fs, const std::string& path) {
  COFFER_ASSIGN_OR_RETURN(fs::File f, fs.Open(path, fs::kRdOnly));
  std::string out;
  std::vector<uint8_t> buf(4096);
  for (;;) {
    COFFER_ASSIGN_OR_RETURN(size_t n, f.Read(buf));
    if (n == 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), n);
    if (out.size() > (64u << 20)) return Corrupt(path + " reads more than 64 MiB");
  }
  COFFER_RETURN_IF_ERROR(f.Close());
  return out;
}

}  // namespace coffer::fstest
