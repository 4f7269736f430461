// libFuzzer target for JOSE parsing: JWKs (EC, all curves), JWS (flattened/general), advertisements
// and Tang bindings. Whatever parses is exercised further (thumbprint, ECMR with a fixed key,
// signature check) and must never crash or accept an off-curve point.
#include <cstdint>
#include <string>

#include "coffer/keyserver/jose.h"
#include "coffer/keyserver/tang.h"

using namespace coffer;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static jose::EcJwk server = jose::GenerateEcJwk("P-521", "ECMR", {"deriveKey"}).value();
  std::string text(reinterpret_cast<const char*>(data), size);
  auto k = jose::ParseEcJwkText(text);
  if (k.ok()) {
    (void)jose::Thumbprint(*k);
    if (k->crv == server.crv) (void)jose::EcmrMultiply(server, *k);
    (void)jose::EcmrAdd(*k, *k);
  }
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_discarded()) {
    auto jws = jose::ParseJws(j);
    if (jws.ok()) (void)jose::JwsVerifiedBy(*jws, server.Public());
    (void)tang::TangBinding::FromJson(j);
  }
  (void)tang::VerifyAdvertisement(text);
  (void)jose::B64UrlDecode(text);
  return 0;
}
