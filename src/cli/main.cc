// The coffer binary: argv in, exit status out. Everything else is in RunCoffer.
#include <unistd.h>

#include "cli/cli.h"
#include "coffer/base/secret.h"

int main(int argc, char** argv) {
  coffer::HardenProcessForSecrets();
  std::vector<std::string> args(argv + 1, argv + argc);
  coffer::cli::Console console{std::cout, std::cerr, std::cin, isatty(1) != 0, isatty(2) != 0};
  int rc = coffer::cli::RunCoffer(args, console);
  std::cout.flush();
  return rc;
}
