// libFuzzer target for what the key server and `coffer exec` parse from the outside: the first byte
// picks a parser — Tang recovery request bodies (answered by a real key store in a temp directory),
// witness reports, allowlist CIDRs, and ENCRYPTED_ values in both env formats.
#include <unistd.h>

#include <cstdint>
#include <string>

#include "coffer/envsecret/env_secret.h"
#include "coffer/envsecret/exec_env.h"
#include "coffer/keyserver/server.h"
#include "coffer/keyserver/tang.h"
#include "coffer/keyserver/witness.h"
#include "coffer/net/net.h"

using namespace coffer;

namespace {
struct State {
  std::unique_ptr<tang::TangKeyStore> tang;
  std::unique_ptr<keyserver::WitnessStore> witness;
  std::string kid;
};
State& Get() {
  static State* s = [] {
    char tmpl[] = "/tmp/coffer-fuzz-ks-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    auto* st = new State;
    st->tang = tang::TangKeyStore::Open(dir + "/tang").value();
    st->witness = std::make_unique<keyserver::WitnessStore>(dir + "/witness");
    st->kid = st->tang->ActiveExchangeThumbprints().at(0);
    return st;
  }();
  return *s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  State& s = Get();
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (data[0] % 5) {
    case 0: (void)s.tang->Recover(s.kid, text); break;
    case 1: {
      auto j = nlohmann::json::parse(text, nullptr, false);
      if (!j.is_discarded() && j.is_object() && j.contains("volume") && j["volume"].is_string() &&
          j.contains("counter") && j["counter"].is_number_unsigned() && j.contains("root") && j["root"].is_string()) {
        (void)s.witness->Report("fuzz", j["volume"], j["counter"], j["root"]);
      }
      break;
    }
    case 2: {
      auto c = net::CidrAllowlist::Parse({text});  // the key server's --allow
      if (c.ok()) (void)c->Allows("10.1.2.3"), (void)c->Allows("::ffff:10.1.2.3");
      break;
    }
    case 3: {
      static SecretBytes key = envsecret::SecureStoreKey(AsBytes("pw"));
      (void)envsecret::DecryptSecureStore(text, key);
      (void)envsecret::ParseCofferHeader(text);
      break;
    }
    case 4: {
      envsecret::EnvKeys keys;
      keys.raw_key = SecretBytes::Random(32);
      (void)envsecret::PrepareChildEnvironment({text}, envsecret::EnvFormat::kAuto, keys);
      break;
    }
  }
  return 0;
}
