#include "cli/commands.h"

namespace coffer::cli {

void RegisterAllCommands(CLI::App& app, Context& ctx) {
  RegisterKeyCommands(app, ctx);
  RegisterVolumeCommands(app, ctx);
  RegisterFsCommands(app, ctx);
  RegisterMountCommands(app, ctx);
  RegisterCryptCommands(app, ctx);
  RegisterFlashCommands(app, ctx);
  RegisterObjectCommands(app, ctx);
  RegisterFleetCommands(app, ctx);
  CLI::App* serve = app.add_subcommand("serve", "Run a coffer server (block host, key server)");
  serve->require_subcommand(1);
  RegisterServeBlocksCommands(*serve, ctx);
  RegisterServeKeysCommands(*serve, ctx);
}

}  // namespace coffer::cli
