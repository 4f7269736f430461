// rclone configuration files: obscured passwords (AES-256-CTR under rclone's fixed, public key,
// base64url; obfuscation, not encryption), encrypted configs ("RCLONE_ENCRYPT_V0:" + base64 of a
// 24-byte nonce and a NaCl secretbox under SHA-256("[" + password + "][rclone-config]")), and the
// INI sections of crypt remotes. Pure functions; thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "coffer/base/secret.h"
#include "coffer/base/status.h"
#include "coffer/rclone/name_cipher.h"

namespace coffer::rclone {

// Reveals an obscured rclone password; kInvalidArgument if `obscured` is not one.
Result<SecretBytes> RevealObscured(std::string_view obscured);
// Obscures with a random IV (what `rclone obscure` prints).
std::string Obscure(std::string_view plain);

bool IsEncryptedConfig(std::string_view text);
// Decrypts an encrypted config; kUnauthenticated on a wrong password, kCorrupt on bad framing.
Result<SecretBytes> DecryptConfig(std::string_view text, std::string_view password);
// Encrypts a config as rclone 1.60 would (for tests and `coffer crypt` config export).
std::string EncryptConfig(std::string_view plain, std::string_view password);

using ConfigSection = std::map<std::string, std::string>;
// Parses INI text into sections (keys lower-cased? no: rclone keys are used as written).
Result<std::map<std::string, ConfigSection>> ParseConfig(std::string_view text);

struct CryptRemote {
  SecretBytes password;
  SecretBytes password2;
  NameOptions names;
  std::string remote;  // the wrapped remote, informational
};
// Reads a `type = crypt` section: reveals the obscured passwords and maps the options.
Result<CryptRemote> CryptRemoteFromSection(const ConfigSection& section, std::string_view name);

}  // namespace coffer::rclone
