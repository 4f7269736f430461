// Internals shared by the fleet command files (fleet_*_commands.cc): key material loading and the
// per-file Register functions that RegisterFleetCommands calls. Not a public interface.
#pragma once

#include <optional>
#include <string>

#include "cli/cli.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer::cli {

// Reads a password file into locked memory, dropping one trailing "\n" or "\r\n". Empty is an error.
Result<SecretBytes> ReadFleetPasswordFile(const std::string& path);
// KEYSPEC `file:PATH` or `PATH`: 32 raw bytes, or 64 hex digits (one trailing newline allowed).
Result<SecretBytes> ReadRawKeySpec(const std::string& spec);

void RegisterExecEnvCommands(CLI::App& app, Context& ctx);  // fleet_env_commands.cc: exec, env
void RegisterPkiCommands(CLI::App& app, Context& ctx);      // fleet_pki_commands.cc: pki, certs
void RegisterUnlockCommands(CLI::App& app, Context& ctx);   // fleet_unlock_commands.cc: unlock, keyserver

}  // namespace coffer::cli
