#include "cli/crypt_options.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <thread>

#include "coffer/base/file_util.h"
#include "coffer/rclone/config.h"

namespace coffer::cli {

void AddCryptOptions(CLI::App& cmd, CryptOptions& o) {
  cmd.add_option("--password-file", o.password_file, "File holding the password (one trailing newline is ignored)");
  cmd.add_option("--password2-file", o.password2_file, "File holding password2, rclone's salt (optional)");
  cmd.add_option("--rclone-config", o.rclone_config, "rclone config file to take the crypt remote's settings from");
  cmd.add_option("--remote", o.remote, "Name of the crypt remote in --rclone-config");
  cmd.add_option("--config-password-file", o.config_password_file,
                 "File holding the password of an encrypted rclone config (else a prompt)");
  cmd.add_option("--filename-encryption", o.filename_encryption, "standard (default), obfuscate or off")
      ->check(CLI::IsMember({"standard", "obfuscate", "off"}));
  cmd.add_option("--filename-encoding", o.filename_encoding, "base32 (default), base64 or base32768")
      ->check(CLI::IsMember({"base32", "base64", "base32768"}));
  cmd.add_flag("--no-directory-name-encryption", o.no_directory_name_encryption,
               "Keep folder names in clear (rclone directory_name_encryption = false)");
  cmd.add_option("--suffix", o.suffix, "Suffix of encrypted files with --filename-encryption off (default .bin; 'none')");
  cmd.add_option("--threads", o.threads, "Worker threads (default: number of CPUs)")->check(CLI::Range(1, 256));
}

Result<SecretBytes> PromptSecret(const std::string& prompt) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return FailedPrecondition("no terminal to ask for a password");
  struct termios old {};
  bool have_tty = ::tcgetattr(fd, &old) == 0;
  if (have_tty) {
    struct termios quiet = old;
    quiet.c_lflag &= ~tcflag_t(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  (void)!::write(fd, prompt.data(), prompt.size());
  SecretBytes buf(4096);
  size_t n = 0;
  while (n < buf.size()) {
    char c;
    ssize_t r = ::read(fd, &c, 1);
    if (r <= 0 || c == '\n') break;
    buf.reveal()[n++] = uint8_t(c);
  }
  if (have_tty) ::tcsetattr(fd, TCSAFLUSH, &old);
  ::close(fd);
  if (n > 0 && buf.reveal()[n - 1] == '\r') --n;
  return SecretBytes::CopyOf(buf.reveal().subspan(0, n));
}

Result<SecretBytes> ReadCryptPasswordFile(const std::string& path) {
  auto s = ReadSecretFile(path, 64 * 1024);
  if (!s.ok()) return s.status().WithContext("password file " + path);
  size_t n = s->size();
  auto b = s->reveal();
  if (n > 0 && b[n - 1] == '\n') --n;
  if (n > 0 && b[n - 1] == '\r') --n;
  return SecretBytes::CopyOf(b.subspan(0, n));
}

Result<CryptSetup> ResolveCrypt(const CryptOptions& o, Console& console, bool confirm) {
  rclone::NameOptions names;
  SecretBytes password, password2;
  bool have_password = false;
  if (!o.rclone_config.empty() || !o.remote.empty()) {
    if (o.rclone_config.empty() || o.remote.empty())
      return InvalidArgument("--rclone-config and --remote go together");
    if (!o.password_file.empty()) return InvalidArgument("give either --password-file or --rclone-config, not both");
    auto text = ReadSecretFile(o.rclone_config, 16 << 20);
    if (!text.ok()) return text.status().WithContext("rclone config " + o.rclone_config);
    SecretBytes plain;
    if (rclone::IsEncryptedConfig(text->reveal_string())) {
      SecretBytes cpw;
      if (!o.config_password_file.empty()) {
        COFFER_ASSIGN_OR_RETURN(cpw, ReadCryptPasswordFile(o.config_password_file));
      } else {
        auto p = PromptSecret("rclone config password: ");
        if (!p.ok()) return InvalidArgument("the rclone config is encrypted: give --config-password-file or run on a terminal");
        cpw = std::move(*p);
      }
      COFFER_ASSIGN_OR_RETURN(plain, rclone::DecryptConfig(text->reveal_string(), cpw.reveal_string()));
    } else {
      plain = std::move(*text);
    }
    COFFER_ASSIGN_OR_RETURN(auto sections, rclone::ParseConfig(plain.reveal_string()));
    auto it = sections.find(o.remote);
    if (it == sections.end()) return NotFound("remote [" + o.remote + "] is not in " + o.rclone_config);
    COFFER_ASSIGN_OR_RETURN(auto remote, rclone::CryptRemoteFromSection(it->second, o.remote));
    names = remote.names;
    password = std::move(remote.password);
    password2 = std::move(remote.password2);
    have_password = true;
  }
  if (!o.password_file.empty()) {
    COFFER_ASSIGN_OR_RETURN(password, ReadCryptPasswordFile(o.password_file));
    have_password = true;
  }
  if (!o.password2_file.empty()) {
    COFFER_ASSIGN_OR_RETURN(password2, ReadCryptPasswordFile(o.password2_file));
  }
  if (!have_password) {
    auto p = PromptSecret("Password: ");
    if (!p.ok())
      return InvalidArgument("no password: give --password-file FILE or --rclone-config FILE --remote NAME, or run on a terminal");
    password = std::move(*p);
    if (confirm) {
      COFFER_ASSIGN_OR_RETURN(auto again, PromptSecret("Password again: "));
      if (!again.Equals(password)) return InvalidArgument("the two passwords differ");
    }
  }
  if (!o.filename_encryption.empty()) { COFFER_ASSIGN_OR_RETURN(names.mode, rclone::ParseNameMode(o.filename_encryption)); }
  if (!o.filename_encoding.empty()) { COFFER_ASSIGN_OR_RETURN(names.encoding, rclone::ParseNameEncoding(o.filename_encoding)); }
  if (o.no_directory_name_encryption) names.directory_name_encryption = false;
  if (!o.suffix.empty()) names.suffix = o.suffix == "none" ? "" : (o.suffix[0] == '.' ? o.suffix : "." + o.suffix);
  (void)console;
  CryptSetup setup;
  COFFER_ASSIGN_OR_RETURN(setup.keys, rclone::DeriveKeys(password.reveal_string(), password2.reveal_string()));
  setup.names = std::make_unique<rclone::NameCipher>(setup.keys, names);
  setup.files = std::make_unique<rclone::FileCipher>(setup.keys);
  setup.threads = o.threads > 0 ? o.threads : std::max(1, int(std::thread::hardware_concurrency()));
  return setup;
}

}  // namespace coffer::cli
