// `coffer umount MOUNTPOINT` (any coffer FUSE mount). `coffer mount --volume` (sealed littlefs
// volumes) joins here once the fs module is on main.
#include "cli/commands.h"
#include "coffer/fuse/crypt_mount.h"

namespace coffer::cli {

void RegisterMountCommands(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("umount", "Unmount a coffer FUSE mount");
  auto mp = std::make_shared<std::string>();
  cmd->add_option("MOUNTPOINT", *mp, "Mount point")->required();
  cmd->footer("\nThe mount's process writes back open files, updates the manifest and exits.\n"
              "\nExamples:\n  coffer umount /mnt/plain\n\n" + std::string(kExitCodesHelp));
  cmd->callback([&ctx, mp] {
    Status s = fuse::Unmount(*mp);
    if (!s.ok()) ctx.exit_code = ReportError(ctx.console, s, "is it mounted? (see `findmnt -t fuse.coffer`)");
  });
}

}  // namespace coffer::cli
