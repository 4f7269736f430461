// `coffer exec|env|pki|certs|unlock|keyserver`: fleet unlock. Each group lives in a fleet_*_commands.cc
// file; this one registers them and holds the shared key-material helpers.
#include <cctype>

#include "cli/commands.h"
#include "cli/fleet_cli.h"
#include "coffer/base/bytes.h"
#include "coffer/base/file_util.h"
#include "coffer/keys/key_file.h"
#include "coffer/keyserver/fleet_unlock.h"
#include "coffer/tpm/tpm2_keyspec.h"

namespace coffer::cli {

Result<SecretBytes> ReadRawKeySpec(const std::string& spec) {
  std::string path = spec;
  if (path.rfind("file:", 0) == 0) {
    path = path.substr(5);
  } else if (auto colon = path.find(':'); colon != std::string::npos && path.find('/') > colon) {
    return Unsupported("key spec scheme '" + path.substr(0, colon) + ":' is not usable here (use file:PATH)");
  }
  COFFER_ASSIGN_OR_RETURN(SecretBytes raw, ReadSecretFile(path, 4096));
  if (raw.size() == 32) return raw;
  if (raw.size() == kKeyFileSize) {  // `coffer key new` files (else maybe 64 hex digits)
    auto k = DecodeKeyFile(raw, path);
    if (k.ok()) return k;
  }
  size_t n = raw.size();
  while (n > 0 && (raw.reveal()[n - 1] == '\n' || raw.reveal()[n - 1] == '\r')) --n;
  if (n == 64) {
    SecretBytes key(32);
    auto hex = raw.reveal_string();
    for (size_t i = 0; i < 32; ++i) {
      int v = 0;
      for (int j = 0; j < 2; ++j) {
        char c = char(std::tolower(static_cast<unsigned char>(hex[2 * i + j])));
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return InvalidArgument("key file " + path + " is neither 32 raw bytes nor 64 hex digits");
        v = v * 16 + d;
      }
      key.reveal()[i] = uint8_t(v);
    }
    return key;
  }
  return InvalidArgument("key file " + path + " is " + std::to_string(raw.size()) +
                         " bytes: expected a coffer key file, 32 raw bytes or 64 hex digits");
}

void RegisterFleetCommands(CLI::App& app, Context& ctx) {
  keyserver::RegisterKeyServerKeySpec();  // KEYSPEC keyserver:CONFIG for sealed volumes
  tpm::RegisterTpm2Schemes();             // KEYSPEC tpm2:... and --anchor tpm2:nv=...
  RegisterExecEnvCommands(app, ctx);
  RegisterPkiCommands(app, ctx);
  RegisterUnlockCommands(app, ctx);
}

}  // namespace coffer::cli
