// Building the environment for `coffer exec`: every ENCRYPTED_X=<value> is decrypted into X=<plain>,
// the ENCRYPTED_ originals and all key/TLS/password variables are dropped, and the result is a
// NUL-terminated envp array whose strings live in locked, wiped memory until execve.
// Nothing here forks or execs (the CLI does), so it is unit-testable. Not thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/base/secret.h"
#include "coffer/base/status.h"
#include "coffer/envsecret/env_secret.h"

namespace coffer::envsecret {

enum class EnvFormat { kAuto, kSecureStore, kCoffer };

// The key material `coffer exec` was given; at least one must be set.
struct EnvKeys {
  std::optional<SecretBytes> password;  // --password-file, key server escrow secret
  std::optional<SecretBytes> raw_key;   // --key (32 bytes)
};

// Variables always removed from the child's environment besides ENCRYPTED_*: coffer's own key,
// password and TLS variables (COFFER_PASSWORD, COFFER_KEY, COFFER_TLS_*, COFFER_KEYSERVER_*).
bool IsKeyMaterialVariable(std::string_view name);

class ChildEnvironment {
 public:
  ChildEnvironment() = default;
  ChildEnvironment(ChildEnvironment&&) = default;
  ChildEnvironment& operator=(ChildEnvironment&&) = default;
  // envp for execve: pointers into entries_, NULL-terminated. Valid while *this lives.
  char* const* envp();
  const std::vector<std::string>& decrypted_names() const { return decrypted_; }
  size_t size() const { return entries_.size(); }
  // "NAME=value" of entry i (for tests).
  std::string_view entry(size_t i) const;

  void AddEntry(std::string_view name, std::span<const uint8_t> value);
  void NoteDecrypted(std::string name) { decrypted_.push_back(std::move(name)); }

 private:
  std::vector<SecretBytes> entries_;  // each "NAME=value\0"
  std::vector<char*> pointers_;
  std::vector<std::string> decrypted_;
};

// Decrypts from `environ` ("NAME=value" strings). Any failure names the variable and stops:
//  kInvalidArgument: malformed value (odd or non-hex, too short, bad base64...) -> exit 1;
//  kUnauthenticated: wrong password or key (no value opened with it)             -> exit 4;
//  kDataLoss: the key opens other values (or the key check) but this one was changed -> exit 3.
// extra_unset names further variables to drop (exec --unset).
Result<ChildEnvironment> PrepareChildEnvironment(const std::vector<std::string_view>& environ,
                                                 EnvFormat format, const EnvKeys& keys,
                                                 const std::vector<std::string>& extra_unset = {});

}  // namespace coffer::envsecret
