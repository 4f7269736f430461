// `coffer key new|...` (keys module). Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterKeyCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
