// `coffer crypt ...`: rclone-crypt compatible folders (encrypt-dir, decrypt-dir, ls, cat, verify).
// The mount lives in crypt_mount.cc. Passwords come from files, a prompt or an rclone config
// (crypt_options.h), never from argv.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/crypt_options.h"
#include "coffer/base/file_util.h"
#include "coffer/rclone/manifest.h"
#include "coffer/rclone/tree.h"

namespace coffer::cli {
namespace {

constexpr const char* kPasswordHelp =
    "\nPasswords: --password-file FILE (and --password2-file FILE for rclone's password2/salt), or\n"
    "--rclone-config FILE --remote NAME (obscured passwords; an encrypted config asks for its password\n"
    "or reads --config-password-file), or a prompt on the terminal. Never on the command line.\n";

std::string Mib(uint64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", double(b) / (1024.0 * 1024.0));
  return buf;
}

rclone::TreeOptions MakeTreeOptions(Context& ctx, const CryptSetup& setup, const char* verb) {
  rclone::TreeOptions t;
  t.threads = setup.threads;
  Console* con = &ctx.console;
  t.warn = [con](const std::string& w) { con->err << "coffer: warning: " << w << "\n"; };
  if (ctx.console.err_is_tty) {
    std::string v = verb;
    t.progress = [con, v](const rclone::TreeProgress& p) {
      con->err << "\r" << v << ": " << p.files_done << "/" << p.files_total << " files, " << Mib(p.bytes_done) << "/"
               << Mib(p.bytes_total) << " MiB   " << std::flush;
      if (p.files_done == p.files_total) con->err << "\n";
    };
  }
  return t;
}

// Whole-tree failures where nothing decrypted point at the password, not at tampering.
Status ClassifyDecryptFailure(const rclone::TreeReport& r) {
  Status s = r.status();
  if (s.ok()) return s;
  if (r.files == 0 && r.errors.size() >= 2 && s.code() == StatusCode::kDataLoss) {
    return Unauthenticated("nothing in the folder decrypts (" + std::to_string(r.errors.size()) +
                           " entries failed, first: " + r.errors[0].status.message() +
                           "): wrong password or name settings");
  }
  return s;
}

int ReportTreeErrors(Context& ctx, const rclone::TreeReport& r, bool decrypting) {
  Status s = decrypting ? ClassifyDecryptFailure(r) : r.status();
  // Name every failed file (up to a screenful), then the summary line.
  if (s.code() != StatusCode::kUnauthenticated && r.errors.size() > 1)
    for (size_t i = 0; i < r.errors.size() && i < 50; ++i)
      ctx.console.err << "coffer: error: " << r.errors[i].status.message() << "\n";
  if (s.code() == StatusCode::kUnauthenticated)
    return ReportError(ctx.console, s, "check the password, password2 and --filename-encryption/--filename-encoding");
  if (s.code() == StatusCode::kDataLoss)
    return ReportError(ctx.console, s, "the encrypted files were changed, cut or replaced outside coffer (or the password is wrong)");
  return ReportError(ctx.console, s);
}

struct ManifestArgs {
  bool manifest = false;
  std::string state_file;
};

void AddManifestOptions(CLI::App& cmd, ManifestArgs& m, const char* what) {
  cmd.add_flag("--manifest", m.manifest, what);
  cmd.add_option("--state-file", m.state_file,
                 "Anchor state file for manifest counters (default ~/.local/state/coffer/crypt-anchors.json)");
}

constexpr const char* kManifestHelp =
    "\nManifest: .coffer-manifest in the encrypted folder lists every file's encrypted name, size and\n"
    "SHA-256 with a counter, MAC'ed with a key derived from the password; the counter's high-water mark is\n"
    "kept in a local state file. A swapped, cut, deleted or added file or a rolled-back folder then fails\n"
    "with exit 3. rclone ignores the file (it cannot decrypt its name).\n";

// Checks the manifest (if present, or required); returns the number of problems reported.
size_t CheckManifest(Context& ctx, const std::string& root, const CryptSetup& setup, const ManifestArgs& m,
                     rclone::TreeReport* report) {
  rclone::AnchorStore anchors(m.state_file.empty() ? rclone::AnchorStore::DefaultPath() : m.state_file);
  auto problems = rclone::CheckFolderManifest(root, *setup.names, setup.keys, anchors, m.manifest);
  for (auto& [path, st] : problems) report->errors.push_back({path, st});
  return problems.size();
}

void RegisterEncryptDir(CLI::App& crypt, Context& ctx) {
  auto* cmd = crypt.add_subcommand("encrypt-dir", "Encrypt a folder into an rclone crypt folder");
  struct Args { std::string src, dst; CryptOptions o; ManifestArgs m; };
  auto a = std::make_shared<Args>();
  cmd->add_option("SRC", a->src, "Plaintext folder")->required();
  cmd->add_option("DST", a->dst, "Encrypted folder (created if missing)")->required();
  AddCryptOptions(*cmd, a->o);
  AddManifestOptions(*cmd, a->m, "Write (or refresh) the authenticated manifest .coffer-manifest in DST");
  cmd->footer(std::string(kPasswordHelp) +
              "\nExamples:\n"
              "  coffer crypt encrypt-dir photos/ enc/ --password-file pw.txt\n"
              "  coffer crypt encrypt-dir docs/ enc/ --password-file pw --filename-encoding base32768\n"
              "  coffer crypt encrypt-dir docs/ enc/ --rclone-config ~/.config/rclone/rclone.conf --remote secret\n"
              "  coffer crypt encrypt-dir docs/ enc/ --password-file pw --manifest\n"
              "The output is byte-compatible with rclone's crypt remote (`rclone copy crypt: out/` reads it).\n" +
              kManifestHelp + "\n" +
              kExitCodesHelp);
  cmd->callback([&ctx, a] {
    auto setup = ResolveCrypt(a->o, ctx.console, true);
    if (!setup.ok()) { ctx.exit_code = ReportError(ctx.console, setup.status()); return; }
    auto report = rclone::EncryptTree(*setup->names, *setup->files, a->src, a->dst, MakeTreeOptions(ctx, *setup, "encrypting"));
    if (!report.errors.empty()) { ctx.exit_code = ReportTreeErrors(ctx, report, false); return; }
    if (a->m.manifest) {
      rclone::AnchorStore anchors(a->m.state_file.empty() ? rclone::AnchorStore::DefaultPath() : a->m.state_file);
      Status s = rclone::WriteFolderManifest(a->dst, *setup->names, setup->keys, anchors);
      if (!s.ok()) { ctx.exit_code = ReportError(ctx.console, s); return; }
    }
    if (ctx.console.err_is_tty)
      ctx.console.err << "encrypted " << report.files << " files (" << Mib(report.bytes) << " MiB) into " << a->dst << "\n";
  });
}

void RegisterDecryptDir(CLI::App& crypt, Context& ctx) {
  auto* cmd = crypt.add_subcommand("decrypt-dir", "Decrypt an rclone crypt folder (names and contents)");
  struct Args { std::string src, dst; CryptOptions o; ManifestArgs m; };
  auto a = std::make_shared<Args>();
  cmd->add_option("SRC", a->src, "Encrypted folder")->required();
  cmd->add_option("DST", a->dst, "Plaintext folder (created if missing)")->required();
  AddCryptOptions(*cmd, a->o);
  AddManifestOptions(*cmd, a->m, "Require the manifest (it is always checked when present)");
  cmd->footer(std::string(kPasswordHelp) +
              "\nEvery file is written to a temporary name and renamed only after all of it authenticated;\n"
              "a tampered or truncated file is reported (by name) and no plaintext of it is left behind.\n"
              "\nExamples:\n"
              "  coffer crypt decrypt-dir enc/ photos/ --password-file pw.txt\n"
              "  coffer crypt decrypt-dir enc/ out/ --password-file pw --password2-file salt --filename-encryption obfuscate\n" +
              kManifestHelp + "\n" +
              kExitCodesHelp);
  cmd->callback([&ctx, a] {
    auto setup = ResolveCrypt(a->o, ctx.console, false);
    if (!setup.ok()) { ctx.exit_code = ReportError(ctx.console, setup.status()); return; }
    rclone::TreeReport pre;
    if (CheckManifest(ctx, a->src, *setup, a->m, &pre) > 0) { ctx.exit_code = ReportTreeErrors(ctx, pre, false); return; }
    auto report = rclone::DecryptTree(*setup->names, *setup->files, a->src, a->dst, MakeTreeOptions(ctx, *setup, "decrypting"));
    if (!report.errors.empty()) { ctx.exit_code = ReportTreeErrors(ctx, report, true); return; }
    if (ctx.console.err_is_tty)
      ctx.console.err << "decrypted " << report.files << " files (" << Mib(report.bytes) << " MiB) into " << a->dst << "\n";
  });
}

void RegisterLs(CLI::App& crypt, Context& ctx) {
  auto* cmd = crypt.add_subcommand("ls", "List an rclone crypt folder with decrypted names and sizes");
  struct Args { std::string dir; CryptOptions o; bool json = false, show_encrypted = false; };
  auto a = std::make_shared<Args>();
  cmd->add_option("ENCDIR", a->dir, "Encrypted folder")->required();
  cmd->add_flag("--json", a->json, "Print a JSON array of {path, encrypted, size, dir}");
  cmd->add_flag("--encrypted-names", a->show_encrypted, "Also print each entry's encrypted name");
  AddCryptOptions(*cmd, a->o);
  cmd->footer(std::string(kPasswordHelp) +
              "\nSizes come from the encrypted sizes (no content is read; use `coffer crypt verify` for that).\n"
              "\nExamples:\n  coffer crypt ls enc/ --password-file pw.txt\n  coffer crypt ls enc/ --password-file pw --json\n\n" +
              kExitCodesHelp);
  cmd->callback([&ctx, a] {
    auto setup = ResolveCrypt(a->o, ctx.console, false);
    if (!setup.ok()) { ctx.exit_code = ReportError(ctx.console, setup.status()); return; }
    std::vector<rclone::TreeFileError> errors;
    auto entries = rclone::ListEncryptedTree(*setup->names, a->dir, &errors);
    std::sort(entries.begin(), entries.end(), [](auto& x, auto& y) { return x.plain_path < y.plain_path; });
    if (a->json) {
      nlohmann::json j = nlohmann::json::array();
      for (auto& e : entries)
        j.push_back({{"path", e.plain_path}, {"encrypted", e.encrypted_path}, {"size", e.plain_size}, {"dir", e.is_dir}});
      ctx.console.out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      for (auto& e : entries) {
        if (e.is_dir) ctx.console.out << std::string(12, ' ') << "- " << e.plain_path << "/";
        else ctx.console.out << std::setw(12) << e.plain_size << "  " << e.plain_path;
        if (a->show_encrypted) ctx.console.out << "  <- " << e.encrypted_path;
        ctx.console.out << "\n";
      }
    }
    if (!errors.empty()) {
      rclone::TreeReport r;
      r.errors = errors;
      r.files = entries.size();
      ctx.exit_code = ReportTreeErrors(ctx, r, true);
    }
  });
}

void RegisterCat(CLI::App& crypt, Context& ctx) {
  auto* cmd = crypt.add_subcommand("cat", "Decrypt one file of an rclone crypt folder to stdout");
  struct Args { std::string dir, path; CryptOptions o; };
  auto a = std::make_shared<Args>();
  cmd->add_option("ENCDIR", a->dir, "Encrypted folder")->required();
  cmd->add_option("PATH", a->path, "Plaintext path of the file inside the folder (as `coffer crypt ls` shows)")->required();
  AddCryptOptions(*cmd, a->o);
  cmd->footer(std::string(kPasswordHelp) +
              "\nEach 64 KiB chunk is authenticated before it is written; on a failure the output stops and\n"
              "the exit status is 3.\n\nExamples:\n  coffer crypt cat enc/ docs/readme.txt --password-file pw.txt\n\n" +
              kExitCodesHelp);
  cmd->callback([&ctx, a] {
    auto setup = ResolveCrypt(a->o, ctx.console, false);
    if (!setup.ok()) { ctx.exit_code = ReportError(ctx.console, setup.status()); return; }
    std::string p = a->path;
    while (!p.empty() && p.front() == '/') p.erase(0, 1);
    std::string enc = a->dir + "/" + setup->names->EncryptFileName(p);
    int fd = ::open(enc.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      ctx.exit_code = ReportError(ctx.console, ErrnoStatus(a->path + " (" + enc + ")", errno),
                                  "list the folder with `coffer crypt ls` to see the names it holds");
      return;
    }
    ctx.console.out.flush();
    Status s;
    if (&ctx.console.out == &std::cout) {
      s = setup->files->DecryptFd(fd, 1, a->path, {}, setup->threads);
    } else {
      auto bytes = ReadFileBytes(enc);
      if (!bytes.ok()) s = bytes.status();
      else {
        auto plain = setup->files->DecryptBuffer(*bytes, a->path);
        if (plain.ok()) ctx.console.out.write(reinterpret_cast<const char*>(plain->data()), std::streamsize(plain->size()));
        else s = plain.status();
      }
    }
    ::close(fd);
    if (!s.ok()) ctx.exit_code = ReportError(ctx.console, s);
  });
}

void RegisterVerify(CLI::App& crypt, Context& ctx) {
  auto* cmd = crypt.add_subcommand("verify", "Authenticate every name and every chunk of an rclone crypt folder");
  struct Args { std::string dir; CryptOptions o; bool json = false; ManifestArgs m; };
  auto a = std::make_shared<Args>();
  cmd->add_option("ENCDIR", a->dir, "Encrypted folder")->required();
  cmd->add_flag("--json", a->json, "Print {files, bytes, errors:[{path, error}]} as JSON");
  AddCryptOptions(*cmd, a->o);
  AddManifestOptions(*cmd, a->m, "Require the manifest (it is always checked when present)");
  cmd->footer(std::string(kPasswordHelp) +
              "\nReads everything, writes nothing (except the manifest anchor). Exit 3 names each file that fails.\n" +
              kManifestHelp +
              "\nExamples:\n  coffer crypt verify enc/ --password-file pw.txt\n  coffer crypt verify enc/ --password-file pw --manifest --json\n\n" +
              kExitCodesHelp);
  cmd->callback([&ctx, a] {
    auto setup = ResolveCrypt(a->o, ctx.console, false);
    if (!setup.ok()) { ctx.exit_code = ReportError(ctx.console, setup.status()); return; }
    rclone::TreeReport report = rclone::VerifyTree(*setup->names, *setup->files, a->dir, MakeTreeOptions(ctx, *setup, "verifying"));
    if (report.errors.empty()) CheckManifest(ctx, a->dir, *setup, a->m, &report);
    if (a->json) {
      nlohmann::json errs = nlohmann::json::array();
      for (auto& e : report.errors) errs.push_back({{"path", e.path}, {"error", e.status.message()}});
      ctx.console.out << nlohmann::json{{"files", report.files}, {"bytes", report.bytes}, {"errors", errs}}.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else if (report.errors.empty()) {
      ctx.console.out << "ok: " << report.files << " files, " << report.bytes << " bytes authenticated\n";
    }
    if (!report.errors.empty()) ctx.exit_code = ReportTreeErrors(ctx, report, true);
  });
}

void RegisterManifest(CLI::App& crypt, Context& ctx) {
  auto* cmd = crypt.add_subcommand("manifest", "Write or refresh the authenticated manifest of an encrypted folder");
  struct Args { std::string dir; CryptOptions o; ManifestArgs m; };
  auto a = std::make_shared<Args>();
  cmd->add_option("ENCDIR", a->dir, "Encrypted folder")->required();
  AddCryptOptions(*cmd, a->o);
  cmd->add_option("--state-file", a->m.state_file, "Anchor state file (default ~/.local/state/coffer/crypt-anchors.json)");
  cmd->footer(std::string(kPasswordHelp) + kManifestHelp +
              "\nEvery file is authenticated first (chunk by chunk); an existing manifest must still verify.\n"
              "Run it after adding files with rclone to cover them.\n"
              "\nExamples:\n  coffer crypt manifest enc/ --password-file pw.txt\n\n" + kExitCodesHelp);
  cmd->callback([&ctx, a] {
    auto setup = ResolveCrypt(a->o, ctx.console, false);
    if (!setup.ok()) { ctx.exit_code = ReportError(ctx.console, setup.status()); return; }
    auto report = rclone::VerifyTree(*setup->names, *setup->files, a->dir, MakeTreeOptions(ctx, *setup, "authenticating"));
    if (!report.errors.empty()) { ctx.exit_code = ReportTreeErrors(ctx, report, true); return; }
    rclone::AnchorStore anchors(a->m.state_file.empty() ? rclone::AnchorStore::DefaultPath() : a->m.state_file);
    Status s = rclone::WriteFolderManifest(a->dir, *setup->names, setup->keys, anchors);
    if (!s.ok()) { ctx.exit_code = ReportError(ctx.console, s); return; }
    ctx.console.out << "manifest written: " << report.files << " files\n";
  });
}

}  // namespace

void RegisterCryptCommands(CLI::App& app, Context& ctx) {
  auto* crypt = app.add_subcommand("crypt", "rclone-crypt compatible encrypted folders (and their FUSE mount)");
  crypt->require_subcommand(1);
  crypt->footer(std::string("\nSubcommands: encrypt-dir, decrypt-dir, ls, cat, verify, manifest, mount.\n\n") + kExitCodesHelp);
  RegisterEncryptDir(*crypt, ctx);
  RegisterDecryptDir(*crypt, ctx);
  RegisterLs(*crypt, ctx);
  RegisterCat(*crypt, ctx);
  RegisterVerify(*crypt, ctx);
  RegisterManifest(*crypt, ctx);
}

}  // namespace coffer::cli
