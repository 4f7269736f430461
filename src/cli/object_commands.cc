// `coffer objectd` and `coffer object ...`. Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterObjectCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
