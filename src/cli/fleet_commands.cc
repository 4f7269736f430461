// `coffer exec|env|pki|certs|unlock`. Not yet implemented: registers nothing.
#include "cli/commands.h"

namespace coffer::cli {

void RegisterFleetCommands(CLI::App& app, Context& ctx) {
  (void)app;
  (void)ctx;
}

}  // namespace coffer::cli
