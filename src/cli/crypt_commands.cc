// `coffer crypt ...` (rclone-crypt folders and their mount). Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterCryptCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
