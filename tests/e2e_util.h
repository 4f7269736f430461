// Helpers for end-to-end tests that run the built coffer binary as a user would.
// RunCoffer forks/execs COFFER_BIN with arguments, optional stdin and extra environment, and
// captures stdout, stderr and the exit status. TempDir removes itself. Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace coffer::e2e {

struct RunResult {
  int exit_code = -1;  // 128+signal if killed by a signal
  std::string out, err;
};

struct RunOptions {
  std::string stdin_data;
  std::map<std::string, std::string> env;  // added to (or overriding) the test's environment
  std::vector<std::string> unset_env;
  int timeout_seconds = 300;
};

// Runs `program args...` (program is a path or a name looked up in PATH).
RunResult Run(const std::string& program, const std::vector<std::string>& args, const RunOptions& options = {});
// Runs the coffer binary under test.
RunResult RunCoffer(const std::vector<std::string>& args, const RunOptions& options = {});

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& data);
// A free TCP port on 127.0.0.1 (bind to port 0 and release).
int FreePort();
// Polls http://127.0.0.1:port/path until it answers 200 or the timeout passes.
bool WaitForHttp(int port, const std::string& path = "/healthz", int timeout_ms = 10000);
// Path to ../shared/vectors (COFFER_VECTORS_DIR); empty if missing.
std::string VectorsDir();

}  // namespace coffer::e2e
