// `coffer mount --volume SPEC --key KEYSPEC MOUNTPOINT` (littlefs on a sealed volume or a plain
// image, through FUSE: src/fuse/volume_mount.cc) and `coffer umount MOUNTPOINT` (any coffer mount).
#include "cli/commands.h"
#include "cli/device_options.h"
#include "coffer/fuse/volume_mount.h"

namespace coffer::cli {
namespace {

void RegisterMount(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("mount", "Mount the littlefs filesystem of a sealed volume (or an image) read-write (FUSE)");
  struct Args {
    DeviceOptions device;
    fuse::VolumeMountOptions mount;
  };
  auto a = std::make_shared<Args>();
  a->mount.foreground = false;
  cmd->add_option("MOUNTPOINT", a->mount.mountpoint, "Empty folder to mount on")->required();
  AddDeviceOptions(*cmd, a->device, DeviceUse::kReadWrite);
  cmd->add_flag("--read-only", a->mount.read_only, "Refuse every change (EROFS); nothing is committed");
  cmd->add_flag("--foreground", a->mount.foreground,
                "Stay in the foreground, errors on stderr (default: go to the background once mounted)");
  cmd->add_flag("--debug", a->mount.debug, "Print every FUSE request (with --foreground)");
  cmd->footer(
      "\nThe volume is unlocked (wrong key: exit 4, nothing mounted) and its littlefs mounted before the\n"
      "FUSE mount appears; the filesystem must exist (`coffer fs format --volume ...`).\n"
      "\nDurability: every littlefs metadata commit is a sealed-volume commit (one atomic batch, then the\n"
      "anchor). The mount commits on create, mkdir, rename, unlink, rmdir and truncate, when a written file\n"
      "is closed (flush) or fsync'ed, and at unmount: a file written and closed survives a crash; data still\n"
      "in an open, unsynced file does not (like flash). With --read-only nothing is ever committed.\n"
      "\nIntegrity: a sector that fails authentication (tampering, rollback) is EIO for the reader and a line\n"
      "in syslog (and on stderr with --foreground); never wrong data. littlefs errors map to ENOENT, EEXIST,\n"
      "ENOTEMPTY, ENOTDIR, EISDIR, ENOSPC, ENAMETOOLONG (names over 255 bytes) and EFBIG (files over 2 GiB).\n"
      "littlefs stores no owners, modes or times: files show 0644, folders 0755, owned by the mounting user;\n"
      "utimens (touch) is accepted and not stored; chmod/chown are not supported.\n"
      "\nUnmount with SIGTERM/SIGINT to the mount process or `coffer umount MOUNTPOINT` (which waits for the\n"
      "final commit). One request at a time reaches littlefs (it is single-threaded).\n"
      "\nExamples:\n"
      "  coffer fs format --volume file:disk.vol --key disk.key\n"
      "  coffer mount --volume file:disk.vol --key disk.key /mnt/disk\n"
      "  coffer mount --volume https://host:8443/v1/volumes/cam1 --key pass:file:pw.txt /mnt/cam1 --foreground\n"
      "  coffer mount --image flash.img /mnt/flash --read-only\n"
      "  coffer umount /mnt/disk\n\n" +
      std::string(kExitCodesHelp));
  cmd->callback([&ctx, a] {
    if (Status usage = CheckDeviceOptions(a->device); !usage.ok()) {
      ReportError(ctx.console, usage, "run 'coffer mount --help' for the device options");
      ctx.exit_code = kExitUsage;
      return;
    }
    auto dev = OpenFsDevice(a->device, a->mount.read_only ? DeviceUse::kReadOnly : DeviceUse::kReadWrite);
    if (!dev.ok()) {
      ctx.exit_code = ReportError(ctx.console, dev.status(), FsHint(dev.status()));
      return;
    }
    a->mount.description = dev->description;
    ctx.console.out.flush();
    Status s = fuse::RunVolumeMount(a->mount, std::move(dev->device), dev->config);
    if (!s.ok()) ctx.exit_code = ReportError(ctx.console, s, FsHint(s));
  });
}

}  // namespace

void RegisterMountCommands(CLI::App& app, Context& ctx) {
  RegisterMount(app, ctx);
  auto* cmd = app.add_subcommand("umount", "Unmount a coffer FUSE mount (volume or crypt folder)");
  auto mp = std::make_shared<std::string>();
  cmd->add_option("MOUNTPOINT", *mp, "Mount point")->required();
  cmd->footer("\nThe mount's process writes back open files (crypt: updates the manifest; volume: commits)\n"
              "and exits; umount waits for it (up to 2 minutes) so the data is on disk when it returns.\n"
              "\nExamples:\n  coffer umount /mnt/plain\n\n" + std::string(kExitCodesHelp));
  cmd->callback([&ctx, mp] {
    Status s = fuse::Unmount(*mp);
    if (!s.ok()) ctx.exit_code = ReportError(ctx.console, s, "is it mounted? (see `findmnt -t fuse.coffer`)");
  });
}

}  // namespace coffer::cli
