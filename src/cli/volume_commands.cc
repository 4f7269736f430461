// `coffer volume create|info|verify|add-key|remove-key|erase`. Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterVolumeCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
