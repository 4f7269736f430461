// The key server as a key source for `coffer exec|env|unlock`: the shared options (--keyserver URL...,
// --tls-cert, --tls-key, --ca, --deadline) and the escrow fetch with retries. Not a public interface.
#pragma once

#include <string>
#include <vector>

#include "cli/cli.h"
#include "coffer/base/secret.h"

namespace coffer::cli {

struct KeyserverSourceOptions {
  std::vector<std::string> urls;  // tried in order
  std::string tls_cert, tls_key, ca;
  double deadline_seconds = 30;
  std::string name = "default";  // which of the device's secrets
};

void AddKeyserverSourceOptions(CLI::App* cmd, KeyserverSourceOptions& o);
// Fetches the device's escrowed secret (GET /v1/secret/NAME over mTLS), retrying unreachable servers.
Result<SecretBytes> FetchEscrowSecret(const KeyserverSourceOptions& o, Console& console);

}  // namespace coffer::cli
