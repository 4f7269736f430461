// `coffer mount|umount` (FUSE mount of sealed volumes). Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterMountCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
