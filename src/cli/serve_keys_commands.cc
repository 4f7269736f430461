// `coffer serve keys` (key server); gets the `serve` parent. Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterServeKeysCommands(CLI::App& serve, Context& ctx) {
  (void)serve;
  (void)ctx;
}

}  // namespace coffer::cli
