// `coffer key new PATH [--force]`: make a random key file (keys module).
#include <memory>

#include "cli/commands.h"
#include "coffer/keys/key_file.h"

namespace coffer::cli {

void RegisterKeyCommands(CLI::App& app, Context& ctx) {
  CLI::App* key = app.add_subcommand("key", "Create key files that unlock sealed volumes");
  key->require_subcommand(1);
  key->footer(std::string("\n") + kExitCodesHelp);

  struct NewOpts {
    std::string path;
    bool force = false;
  };
  auto o = std::make_shared<NewOpts>();
  CLI::App* cmd = key->add_subcommand("new", "Write a new random 256-bit key file (mode 0600, written atomically)");
  cmd->add_option("PATH", o->path, "where to write the key file")->required();
  cmd->add_flag("--force", o->force, "replace an existing key file (the old key is lost for good)");
  cmd->footer(std::string(R"(
The key comes from the OS random generator. The file is 64 bytes (magic, version, key, checksum;
docs/format/key_file.md), written to a temporary file, synced and renamed, so a power cut never
leaves a half-written key. Keep it secret; anyone holding it can open volumes that have a slot for it.
The volume's freshness anchor is kept next to it as PATH.anchor.

Examples:
  coffer key new /etc/coffer/device.key
  coffer volume create file:/data/vol.img --key /etc/coffer/device.key

)") + kExitCodesHelp);
  cmd->callback([&ctx, o] {
    Status s = CreateKeyFile(o->path, o->force);
    if (!s.ok()) {
      ctx.exit_code = ReportError(ctx.console, s,
                                  s.code() == StatusCode::kAlreadyExists ? "pick another path, or pass --force" : "");
      return;
    }
    ctx.console.out << "wrote key file " << o->path << " (mode 0600)\n";
    ctx.exit_code = kExitOk;
  });
}

}  // namespace coffer::cli
