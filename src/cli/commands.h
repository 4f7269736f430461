// One Register function per command group, each in its own file under src/cli/.
// main.cc calls them in order; add yours here and there.
#pragma once

#include "cli/cli.h"

namespace coffer::cli {

// Calls every Register*Commands below (commands.cc).
void RegisterAllCommands(CLI::App& app, Context& ctx);

}  // namespace coffer::cli
