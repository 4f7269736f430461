#include "cli/cli.h"

#include <unistd.h>

#include "cli/commands.h"
#include "coffer/base/file_util.h"

namespace coffer::cli {

const char* const kExitCodesHelp =
    "Exit status: 0 success; 1 other error; 2 usage error; 3 stored data failed authentication or\n"
    "freshness (tampering, replay, rollback); 4 unlock failed (wrong key or passphrase, no usable key slot).";

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kDataLoss: return kExitIntegrity;
    case StatusCode::kUnauthenticated: return kExitUnlock;
    default: return kExitFailure;
  }
}

std::string DefaultHint(const Status& status) {
  switch (status.code()) {
    case StatusCode::kUnauthenticated:
      if (status.message().find("PCR values") != std::string::npos) {
        return "the measured boot state changed: open the volume with another key slot (recovery key or "
               "passphrase), then re-seal with 'coffer volume add-key ... --new-key tpm2:pcrs=...'";
      }
      if (status.message().find("different TPM") != std::string::npos) {
        return "a tpm2: slot opens only on the machine whose TPM sealed it; use that machine or another key slot";
      }
      return "check that --key names the key file (or passphrase) this volume was created with";
    case StatusCode::kDataLoss:
      return "the stored data was changed or rolled back outside coffer; restore it from a trusted copy";
    default: return {};
  }
}

int ReportError(Console& console, const Status& status, std::string_view hint) {
  console.err << "coffer: error: " << status.message() << "\n";
  std::string h = hint.empty() ? DefaultHint(status) : std::string(hint);
  if (!h.empty()) console.err << "coffer: hint: " << h << "\n";
  return ExitCodeFor(status);
}

Result<SecretBytes> ReadPasswordFile(const std::string& path, bool allow_empty) {
  auto raw = ReadSecretFile(path, 64 * 1024);
  if (!raw.ok()) return raw.status().WithContext("password file " + path);
  size_t n = raw->size();
  auto b = raw->reveal();
  if (n > 0 && b[n - 1] == '\n') --n;
  if (n > 0 && b[n - 1] == '\r') --n;
  if (n == 0 && !allow_empty) return InvalidArgument("password file " + path + " is empty");
  return SecretBytes::CopyOf(b.first(n));
}

int RunCoffer(const std::vector<std::string>& args, Console console) {
  Context ctx{console};
  CLI::App app{"coffer: authenticated, encrypted-at-rest storage for devices and their fleets.", "coffer"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "coffer 0.1.0");
  app.footer(std::string("\n") + kExitCodesHelp + "\nRun 'coffer COMMAND --help' for a command's options and examples.");
  RegisterAllCommands(app, ctx);

  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    // --help / --version (for the app or any subcommand) print and succeed.
    if (e.get_exit_code() == 0) return app.exit(e, console.out, console.err);
    console.err << "coffer: error: " << e.what() << "\n";
    console.err << "coffer: hint: run 'coffer --help' (or 'coffer COMMAND --help') for usage\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    console.err << "coffer: error: internal: " << e.what() << "\n";
    return kExitFailure;
  }
  return ctx.exit_code;
}

}  // namespace coffer::cli
