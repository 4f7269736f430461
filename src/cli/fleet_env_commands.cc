// `coffer exec` (run a program with its ENCRYPTED_ variables decrypted) and `coffer env
// encrypt|decrypt` (make and check such values). Secrets come from files or the key server, never argv.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include "cli/fleet_cli.h"
#include "cli/fleet_keyserver_source.h"
#include "coffer/envsecret/env_secret.h"
#include "coffer/envsecret/exec_env.h"

extern char** environ;

namespace coffer::cli {
namespace {

using envsecret::EnvFormat;

const char* const kExecHelp = R"(Decrypts every ENCRYPTED_X variable of the environment, sets X, removes the
ENCRYPTED_ originals and coffer's key/password/TLS variables (COFFER_PASSWORD, COFFER_KEY*,
COFFER_TLS_*, COFFER_*_SECRET/_TOKEN/_PASSWORD, and any --unset NAME), then replaces itself with CMD
(execvp: CMD is looked up in PATH; its signals and exit status are its own).
Values in secure-store's format (hex of nonce || AES-256-GCM ciphertext || tag, key SHA-256(password))
and coffer's format (CENV1., see docs/format/env_secret.md) are both read; --format pins one.
If any value is malformed or does not decrypt, nothing is started and the error names the variable.

Examples:
  ENCRYPTED_API_KEY=9f1c... coffer exec --format secure-store --password-file pw.txt -- ./app --serve
  coffer exec --key file:env.key -- env
  coffer exec --keyserver https://keys:8443 --tls-cert dev.crt --tls-key dev.key --ca fleet-ca.pem -- ./app

Exit status: CMD's own once it runs; before that 1 malformed value or other error, 2 usage error,
3 a value was changed (the same key opens the other values, or coffer format's key check passed),
4 wrong password or key, 126 CMD not executable, 127 CMD not found.)";

const char* const kEncryptHelp = R"(Reads the value from stdin (never argv; one trailing newline is dropped unless
--keep-newline) and prints ENCRYPTED_NAME=<value>.
Default format: coffer's CENV1 (Argon2id from --password-file, or a 32-byte --key file; XChaCha20-Poly1305
or AES-256-GCM; the variable name is authenticated, so a value cannot be moved to another variable).
--format secure-store writes the original format (key SHA-256(password), no salt: compatibility only).

Examples:
  printf %s "$TOKEN" | coffer env encrypt API_TOKEN --password-file pw.txt >> app.env
  coffer env encrypt DB_PASS --key file:env.key < secret.txt
  coffer env encrypt TESTVAR --format secure-store --password-file pw.txt < value.txt)";

const char* const kDecryptHelp = R"(Reads one ENCRYPTED_NAME=<value> line from stdin and prints the plaintext (for checking a value;
`coffer exec` is the way to use them).

Examples:
  echo "ENCRYPTED_TESTVAR=$hex" | coffer env decrypt --password-file pw.txt)";

struct KeyOptions {
  std::string password_file;
  std::string key_spec;
  KeyserverSourceOptions keyserver;
};

void AddKeyOptions(CLI::App* cmd, KeyOptions& o, bool with_keyserver) {
  cmd->add_option("--password-file", o.password_file, "File holding the password (one trailing newline ignored)");
  cmd->add_option("--key", o.key_spec, "KEYSPEC: file:PATH or PATH of a 32-byte key (raw or 64 hex digits)");
  if (with_keyserver) AddKeyserverSourceOptions(cmd, o.keyserver);
}

Result<envsecret::EnvKeys> LoadKeys(const KeyOptions& o, Console& console) {
  envsecret::EnvKeys keys;
  int sources = int(!o.password_file.empty()) + int(!o.key_spec.empty()) + int(!o.keyserver.urls.empty());
  if (sources == 0) return InvalidArgument("no key given: use --password-file F, --key KEYSPEC or --keyserver URL");
  if (sources > 1) return InvalidArgument("give only one of --password-file, --key and --keyserver");
  if (!o.password_file.empty()) {
    COFFER_ASSIGN_OR_RETURN(SecretBytes p, ReadFleetPasswordFile(o.password_file));
    keys.password = std::move(p);
  } else if (!o.key_spec.empty()) {
    COFFER_ASSIGN_OR_RETURN(SecretBytes k, ReadRawKeySpec(o.key_spec));
    keys.raw_key = std::move(k);
  } else {
    COFFER_ASSIGN_OR_RETURN(SecretBytes p, FetchEscrowSecret(o.keyserver, console));
    keys.password = std::move(p);
  }
  return keys;
}

Result<EnvFormat> ParseFormat(const std::string& f) {
  if (f == "auto") return EnvFormat::kAuto;
  if (f == "secure-store") return EnvFormat::kSecureStore;
  if (f == "coffer") return EnvFormat::kCoffer;
  return InvalidArgument("unknown --format '" + f + "' (auto, secure-store or coffer)");
}

int RunExec(Context& ctx, const KeyOptions& ko, const std::string& format_name, const std::vector<std::string>& unset,
            const std::vector<std::string>& command) {
  Console& con = ctx.console;
  auto format = ParseFormat(format_name);
  if (!format.ok()) return ReportError(con, format.status());
  if (command.empty()) {
    return ReportError(con, InvalidArgument("no command given"), "put the command after --: coffer exec ... -- CMD ARGS");
  }
  auto keys = LoadKeys(ko, con);
  if (!keys.ok()) return ReportError(con, keys.status());
  std::vector<std::string_view> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  auto child = envsecret::PrepareChildEnvironment(env, *format, *keys, unset);
  if (!child.ok()) {
    std::string hint;
    if (child.status().code() == StatusCode::kUnauthenticated) {
      hint = "check the password or key; nothing was started";
    } else if (child.status().code() == StatusCode::kDataLoss) {
      hint = "re-create the value with 'coffer env encrypt'; nothing was started";
    } else {
      hint = "nothing was started";
    }
    return ReportError(con, child.status(), hint);
  }
  keys->password.reset();
  keys->raw_key.reset();
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  con.out.flush();
  con.err.flush();
  std::fflush(nullptr);
  ::execvpe(argv[0], argv.data(), child->envp());
  int err = errno;
  Status st = ErrnoStatus("cannot run " + command[0], err);
  ReportError(con, st, err == ENOENT ? "check the command name and PATH" : "");
  return err == ENOENT ? 127 : 126;
}

std::string ReadAllStdin(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

void RegisterExecEnvCommands(CLI::App& app, Context& ctx) {
  // ---- exec ----
  struct ExecArgs {
    KeyOptions keys;
    std::string format = "auto";
    std::vector<std::string> unset;
    std::vector<std::string> command;
  };
  auto ea = std::make_shared<ExecArgs>();
  CLI::App* exec = app.add_subcommand("exec", "Run a command with its ENCRYPTED_ environment variables decrypted");
  exec->footer(kExecHelp);
  exec->add_option("--format", ea->format, "auto (default), secure-store or coffer")->check(CLI::IsMember({"auto", "secure-store", "coffer"}));
  AddKeyOptions(exec, ea->keys, true);
  exec->add_option("--unset", ea->unset, "Also remove this variable from CMD's environment (repeatable)");
  exec->add_option("command", ea->command, "CMD ARGS... (after --)")->required();
  exec->callback([&ctx, ea] { ctx.exit_code = RunExec(ctx, ea->keys, ea->format, ea->unset, ea->command); });

  // ---- env ----
  CLI::App* env = app.add_subcommand("env", "Encrypt or check ENCRYPTED_ environment variable values");
  env->require_subcommand(1);
  env->footer(std::string("\n") + kExitCodesHelp);

  struct EncArgs {
    KeyOptions keys;
    std::string name, format = "coffer", cipher = "xchacha20poly1305";
    bool keep_newline = false;
    uint32_t ops = 2, mem_kib = 64 * 1024;
  };
  auto en = std::make_shared<EncArgs>();
  CLI::App* enc = env->add_subcommand("encrypt", "Encrypt a value read from stdin into ENCRYPTED_NAME=...");
  enc->footer(std::string(kEncryptHelp) + "\n\n" + kExitCodesHelp);
  enc->add_option("name", en->name, "Variable name X (prints ENCRYPTED_X=...)")->required();
  enc->add_option("--format", en->format, "coffer (default) or secure-store")->check(CLI::IsMember({"coffer", "secure-store"}));
  enc->add_option("--cipher", en->cipher, "xchacha20poly1305 (default) or aes256gcm (coffer format)")
      ->check(CLI::IsMember({"xchacha20poly1305", "aes256gcm"}));
  enc->add_option("--argon2-ops", en->ops, "Argon2id passes (default 2)");
  enc->add_option("--argon2-mem-kib", en->mem_kib, "Argon2id memory in KiB (default 65536)");
  enc->add_flag("--keep-newline", en->keep_newline, "Keep a trailing newline of the value");
  AddKeyOptions(enc, en->keys, true);
  enc->callback([&ctx, en] {
    Console& con = ctx.console;
    std::string n = en->name;
    if (n.rfind("ENCRYPTED_", 0) == 0) n = n.substr(10);
    auto keys = LoadKeys(en->keys, con);
    if (!keys.ok()) { ctx.exit_code = ReportError(con, keys.status()); return; }
    std::string value = ReadAllStdin(con.in);
    SecretBytes plain = SecretBytes::CopyOf(AsBytes(value));
    std::fill(value.begin(), value.end(), '\0');
    size_t len = plain.size();
    if (!en->keep_newline && len > 0 && plain.reveal()[len - 1] == '\n') --len;
    auto pt = plain.reveal().first(len);
    if (std::find(pt.begin(), pt.end(), uint8_t{0}) != pt.end()) {
      ctx.exit_code = ReportError(con, InvalidArgument("the value contains a NUL byte; environment variables cannot"));
      return;
    }
    std::string out;
    if (en->format == "secure-store") {
      if (!keys->password) {
        ctx.exit_code = ReportError(con, InvalidArgument("secure-store format needs --password-file (or --keyserver)"));
        return;
      }
      out = envsecret::EncryptSecureStore(pt, envsecret::SecureStoreKey(keys->password->reveal()));
    } else {
      envsecret::KeySource ks = keys->password ? envsecret::KeySource{envsecret::Kdf::kArgon2id, std::move(*keys->password)}
                                               : envsecret::KeySource{envsecret::Kdf::kRawKey, std::move(*keys->raw_key)};
      envsecret::EncryptOptions eo;
      eo.aead = en->cipher == "aes256gcm" ? envsecret::Aead::kAes256Gcm : envsecret::Aead::kXChaCha20Poly1305;
      eo.ops_limit = en->ops;
      eo.mem_limit_kib = en->mem_kib;
      auto r = envsecret::EncryptCoffer(n, pt, ks, eo);
      if (!r.ok()) { ctx.exit_code = ReportError(con, r.status()); return; }
      out = *r;
    }
    con.out << "ENCRYPTED_" << n << "=" << out << "\n";
    ctx.exit_code = kExitOk;
  });

  struct DecArgs {
    KeyOptions keys;
    std::string format = "auto";
  };
  auto de = std::make_shared<DecArgs>();
  CLI::App* dec = env->add_subcommand("decrypt", "Decrypt one ENCRYPTED_NAME=value line from stdin");
  dec->footer(std::string(kDecryptHelp) + "\n\n" + kExitCodesHelp);
  dec->add_option("--format", de->format, "auto (default), secure-store or coffer")->check(CLI::IsMember({"auto", "secure-store", "coffer"}));
  AddKeyOptions(dec, de->keys, true);
  dec->callback([&ctx, de] {
    Console& con = ctx.console;
    std::string line;
    std::getline(con.in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    if (line.rfind("ENCRYPTED_", 0) != 0 || line.find('=') == std::string::npos) {
      ctx.exit_code = ReportError(con, InvalidArgument("stdin is not an ENCRYPTED_NAME=value line"));
      return;
    }
    auto format = ParseFormat(de->format);
    auto keys = LoadKeys(de->keys, con);
    if (!keys.ok()) { ctx.exit_code = ReportError(con, keys.status()); return; }
    auto child = envsecret::PrepareChildEnvironment({line}, *format, *keys);
    if (!child.ok()) { ctx.exit_code = ReportError(con, child.status()); return; }
    std::string_view e = child->entry(child->size() - 1);
    con.out << e.substr(e.find('=') + 1) << "\n";
    ctx.exit_code = kExitOk;
  });
}

}  // namespace coffer::cli
