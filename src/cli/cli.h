// Shared pieces of the `coffer` command line: the console (injected so tests run commands
// without a process), exit codes (DESIGN section 6), and the one error format:
//   coffer: error: <what went wrong>
//   coffer: hint: <the obvious fix>        (only when there is one)
// Each command group lives in its own file and exposes Register<Group>Commands (commands.h).
#pragma once

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitFailure = 1,      // any other error
  kExitUsage = 2,        // bad command line
  kExitIntegrity = 3,    // stored data failed authentication or freshness
  kExitUnlock = 4,       // wrong key or passphrase, no usable key slot
};

struct Console {
  std::ostream& out = std::cout;
  std::ostream& err = std::cerr;
  std::istream& in = std::cin;
  bool out_is_tty = false;
  bool err_is_tty = false;
};

// What every command callback sees; a callback stores its exit status in exit_code.
struct Context {
  Console console;
  int exit_code = kExitOk;
};

int ExitCodeFor(const Status& status);
// Prints the error (and hint) and returns its exit code.
int ReportError(Console& console, const Status& status, std::string_view hint = {});
// A hint for common statuses (wrong key, tampering...) or empty.
std::string DefaultHint(const Status& status);

// Reads a password file into locked memory, dropping one trailing "\n" or "\r\n". An empty
// password is an error unless allow_empty (rclone-crypt accepts the empty password).
Result<SecretBytes> ReadPasswordFile(const std::string& path, bool allow_empty = false);

// Text appended to every command's help: the exit codes.
extern const char* const kExitCodesHelp;

// Runs coffer with argv[1..] as args (for tests and main). Never throws.
int RunCoffer(const std::vector<std::string>& args, Console console);

}  // namespace coffer::cli
