// `coffer pki init|issue|revoke` and `coffer certs generate`.
#include "cli/fleet_cli.h"

namespace coffer::cli {

void RegisterPkiCommands(CLI::App& app, Context& ctx) {}

}  // namespace coffer::cli
