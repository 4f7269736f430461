// `coffer flash image|inspect|ota|encrypted-img|partitions` (factory images and OTA artefacts).
#include "cli/commands.h"

namespace coffer::cli {

void RegisterFlashImageCommands(CLI::App& flash, Context& ctx) {
  (void)flash;
  (void)ctx;
}

}  // namespace coffer::cli
