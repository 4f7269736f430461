// BindFromEnvironment: which object store the psa_* calls use, from COFFER_PSA_* variables.
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "coffer/objects/local_store.h"
#include "coffer/psa/psa_store.h"

namespace coffer::psa {
namespace {

const char* Env(const char* name) {
  const char* v = std::getenv(name);
  return (v && *v) ? v : nullptr;
}

// "4096", "64k", "16M", "1G" (binary multiples).
Result<uint64_t> ParseBytes(const std::string& text) {
  if (text.empty()) return InvalidArgument("empty size");
  size_t digits = 0;
  while (digits < text.size() && isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 15) return InvalidArgument("COFFER_PSA_CAPACITY '" + text + "' is not a size");
  uint64_t v = std::stoull(text.substr(0, digits));
  std::string suffix = text.substr(digits);
  if (suffix.empty()) return v;
  if (suffix.size() == 1) {
    switch (tolower(suffix[0])) {
      case 'k': return v << 10;
      case 'm': return v << 20;
      case 'g': return v << 30;
    }
  }
  return InvalidArgument("COFFER_PSA_CAPACITY '" + text + "' has an unknown suffix (use k, M or G)");
}

}  // namespace

Result<std::unique_ptr<PsaBinding>> BindFromEnvironment() {
  uint64_t capacity = 0;
  if (const char* c = Env("COFFER_PSA_CAPACITY")) {
    COFFER_ASSIGN_OR_RETURN(capacity, ParseBytes(c));
  }
  if (const char* sock = Env("COFFER_PSA_SOCKET")) {
    objects::ConnectOptions connect;
    if (const char* t = Env("COFFER_PSA_TRANSPORT")) {
      std::string transport = t;
      if (transport != "socket" && transport != "shm") {
        return InvalidArgument("COFFER_PSA_TRANSPORT is '" + transport + "' (use socket or shm)");
      }
      connect.shared_memory = transport == "shm";  // falls back to the socket if the daemon has no ring
    }
    COFFER_ASSIGN_OR_RETURN(auto conn, objects::ConnectObjectDaemon(sock, connect));
    return std::make_unique<PsaBinding>(std::move(conn), nullptr, capacity);
  }
  std::unique_ptr<objects::LocalStore> local;
  objects::StoreOptions options;
  options.quota_bytes = capacity;
  const char* volume = Env("COFFER_PSA_VOLUME");
  const char* store = Env("COFFER_PSA_STORE");
  if (volume) {
    const char* key = Env("COFFER_PSA_KEY");
    if (!key) return InvalidArgument("COFFER_PSA_VOLUME is set but COFFER_PSA_KEY (the key spec) is not");
    COFFER_ASSIGN_OR_RETURN(local, objects::OpenSealedStore(volume, key, options));
  } else if (store && std::string(store) == "memory") {
    COFFER_ASSIGN_OR_RETURN(local, objects::OpenMemoryStore(options));
  } else {
    return FailedPrecondition(
        "no object store configured: set COFFER_PSA_SOCKET (a coffer objectd socket), or COFFER_PSA_VOLUME "
        "and COFFER_PSA_KEY (a sealed volume used in-process), or COFFER_PSA_STORE=memory (volatile)");
  }
  auto conn = objects::NewLocalConnection(local->store(), uint32_t(::getuid()), capacity);
  std::shared_ptr<objects::LocalStore> keep(std::move(local));
  // The store enforces the capacity itself (quota), so the binding needs no client-side limit.
  return std::make_unique<PsaBinding>(std::move(conn), std::static_pointer_cast<void>(keep), 0);
}

}  // namespace coffer::psa
