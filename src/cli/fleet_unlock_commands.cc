// `coffer unlock` and `coffer keyserver`: the device side of the key server.
#include "cli/fleet_cli.h"
#include "cli/fleet_keyserver_source.h"

namespace coffer::cli {

void AddKeyserverSourceOptions(CLI::App* cmd, KeyserverSourceOptions& o) {
  cmd->add_option("--keyserver", o.urls, "Key server URL https://HOST:PORT (repeatable: tried in order)");
  cmd->add_option("--tls-cert", o.tls_cert, "This device's client certificate (PEM)");
  cmd->add_option("--tls-key", o.tls_key, "This device's client key (PEM, 0600)");
  cmd->add_option("--ca", o.ca, "CA certificate that signed the key server's certificate");
  cmd->add_option("--deadline", o.deadline_seconds, "Give up after this many seconds (default 30)");
  cmd->add_option("--secret-name", o.name, "Which of this device's escrowed secrets (default 'default')");
}

Result<SecretBytes> FetchEscrowSecret(const KeyserverSourceOptions& o, Console& console) {
  return Unsupported("the key server client is not built yet");
}

void RegisterUnlockCommands(CLI::App& app, Context& ctx) {}

}  // namespace coffer::cli
