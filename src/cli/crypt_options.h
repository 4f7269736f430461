// Options shared by every `coffer crypt` subcommand: where the password comes from (a file, a
// terminal prompt, or an rclone config with obscured passwords, possibly encrypted) and the name
// settings. Secrets are never taken from argv. Used from one thread (the command callback).
#pragma once

#include <memory>
#include <string>

#include "cli/cli.h"
#include "coffer/rclone/file_cipher.h"
#include "coffer/rclone/name_cipher.h"

namespace coffer::cli {

struct CryptOptions {
  std::string password_file, password2_file;
  std::string rclone_config, remote, config_password_file;
  std::string filename_encryption, filename_encoding;  // empty: default or from the config
  bool no_directory_name_encryption = false;
  std::string suffix;  // empty: ".bin" (off mode) or from the config
  int threads = 0;     // 0: hardware concurrency
};

// Adds the password and name options to a subcommand.
void AddCryptOptions(CLI::App& cmd, CryptOptions& o);

struct CryptSetup {
  std::unique_ptr<rclone::NameCipher> names;
  std::unique_ptr<rclone::FileCipher> files;
  rclone::RcloneKeys keys;
  int threads = 2;
};

// Resolves the password (file, config, or prompt; `confirm` asks twice on a prompt) and derives
// the keys. kInvalidArgument for bad options, kUnauthenticated for a wrong config password.
Result<CryptSetup> ResolveCrypt(const CryptOptions& o, Console& console, bool confirm);

// Reads a secret line from /dev/tty without echo. kFailedPrecondition when there is no terminal.
Result<SecretBytes> PromptSecret(const std::string& prompt);

// `coffer crypt mount` (crypt_mount.cc).
void RegisterCryptMount(CLI::App& crypt, Context& ctx);

// Reads a password file: the whole file, minus one trailing "\n" or "\r\n".
Result<SecretBytes> ReadCryptPasswordFile(const std::string& path);

}  // namespace coffer::cli
