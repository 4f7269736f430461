// `coffer flash ...` (ESP32 flash encryption). Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterFlashCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
