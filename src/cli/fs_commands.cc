// `coffer fs ...` (littlefs on --image or --volume). Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterFsCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
