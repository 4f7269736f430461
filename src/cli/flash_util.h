// Helpers shared by the `coffer flash ...` command files: exit-code mapping (espsecure's input
// checks are usage errors, exit 2, like espsecure's own exit status), a terminal progress bar
// (silent unless stderr is a terminal), and key-file loading. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "cli/cli.h"
#include "coffer/base/secret.h"
#include "coffer/flash/flash_io.h"

namespace coffer::cli {

// InvalidArgument / NotFound (bad key length, misaligned address, missing input) -> exit 2.
int FlashReportError(Console& console, const Status& status, std::string_view hint = {});

class ProgressBar {
 public:
  ProgressBar(Console& console, std::string label);
  ~ProgressBar();
  void Update(uint64_t done, uint64_t total);
  flash::ProgressFn Fn();
  void Finish();

 private:
  Console& console_;
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  int last_percent_ = -1;
};

// Reads a flash key file into locked memory (espsecure's length rules apply later).
Result<SecretBytes> ReadFlashKeyFile(const std::string& path);

}  // namespace coffer::cli
