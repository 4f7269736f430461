// Test helper: runs a real swtpm (TPM 2.0 emulator) on 127.0.0.1 with its state in a directory,
// for tests that need a TPM. Start() picks free ports (server P, control P+1); Stop() (or the
// destructor) terminates it. Reusing the state directory is the same TPM after a reboot (PCRs
// reset); a fresh directory is a different TPM. Thread-compatible.
#pragma once

#include <sys/types.h>

#include <string>

namespace coffer::tpm::testing {

class Swtpm {
 public:
  // Path of the swtpm binary, or empty if it is not installed.
  static std::string Binary();
  ~Swtpm() { Stop(); }
  // Starts swtpm with state in `state_dir` (created if missing); waits until it accepts connections.
  bool Start(const std::string& state_dir, std::string* error);
  void Stop();
  // TCTI config for tss2: "swtpm:host=127.0.0.1,port=P".
  std::string tcti() const;
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// A fresh temporary directory (removed with its contents by the destructor).
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace coffer::tpm::testing
