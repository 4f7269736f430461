// `coffer serve blocks` (block host); gets the `serve` parent. Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterServeBlocksCommands(CLI::App& serve, Context& ctx) {
  (void)serve;
  (void)ctx;
}

}  // namespace coffer::cli
