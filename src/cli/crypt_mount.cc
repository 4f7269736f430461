// `coffer crypt mount ENCDIR MOUNTPOINT`: the FUSE view of an rclone crypt folder (src/fuse).
#include "cli/crypt_options.h"
#include "coffer/fuse/crypt_mount.h"

namespace coffer::cli {

void RegisterCryptMount(CLI::App& crypt, Context& ctx) {
  auto* cmd = crypt.add_subcommand("mount", "Mount a decrypted, read-write view of an rclone crypt folder (FUSE)");
  struct Args { fuse::CryptMountOptions m; CryptOptions o; };
  auto a = std::make_shared<Args>();
  a->m.foreground = false;
  cmd->add_option("ENCDIR", a->m.encrypted_dir, "Encrypted folder")->required();
  cmd->add_option("MOUNTPOINT", a->m.mountpoint, "Empty folder to mount on")->required();
  AddCryptOptions(*cmd, a->o);
  cmd->add_flag("--read-only", a->m.read_only, "Refuse every change (EROFS)");
  cmd->add_flag("--foreground", a->m.foreground, "Stay in the foreground (default: go to the background once mounted)");
  cmd->add_flag("--manifest", a->m.manifest, "Require the folder's authenticated manifest (checked anyway when present)");
  cmd->add_option("--state-file", a->m.state_file, "Anchor state file for manifest counters");
  cmd->add_flag("--debug", a->m.debug, "Print every FUSE request (implies nothing about secrets: names stay encrypted on disk)");
  cmd->footer(
      "\nFiles written through the mount land encrypted in ENCDIR in rclone's format (a fresh nonce per\n"
      "write-back, temp file + rename). Every read is authenticated chunk by chunk; a chunk that fails is\n"
      "an EIO for the reader and a line in syslog (and on stderr with --foreground). With a manifest the\n"
      "folder is checked at mount, each file's hash when it is opened, and the manifest is rewritten at\n"
      "unmount. SIGTERM/SIGINT or `coffer umount MOUNTPOINT` unmount cleanly.\n"
      "Passwords: --password-file, --rclone-config/--remote, or a prompt (never argv).\n"
      "\nExamples:\n"
      "  coffer crypt mount enc/ /mnt/plain --password-file pw.txt\n"
      "  coffer crypt mount enc/ /mnt/plain --rclone-config rclone.conf --remote secret --read-only --foreground\n"
      "  coffer umount /mnt/plain\n\n" +
      std::string(kExitCodesHelp));
  cmd->callback([&ctx, a] {
    auto setup = ResolveCrypt(a->o, ctx.console, false);
    if (!setup.ok()) { ctx.exit_code = ReportError(ctx.console, setup.status()); return; }
    ctx.console.out.flush();
    Status s = fuse::RunCryptMount(a->m, setup->keys, setup->names->options());
    if (!s.ok()) ctx.exit_code = ReportError(ctx.console, s);
  });
}

}  // namespace coffer::cli
