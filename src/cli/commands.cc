#include "cli/commands.h"

namespace coffer::cli {

void RegisterAllCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
