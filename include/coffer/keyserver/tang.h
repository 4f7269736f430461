// Tang (server-blind unlock) on both sides, compatible with latchset tang/clevis.
// TangKeyStore: a directory of *.jwk files in tangd's own layout (active keys `<thp>.jwk`, rotated keys
// `.<thp>.jwk` still answer recovery but are not advertised); it builds the signed advertisement and
// answers recovery (ECMR: the server multiplies the client's blinded point by its exchange key and never
// sees the client's key). Thread-safe (one internal mutex; keys reloaded when the directory changes).
// TangBinding: the client side; Bind makes a key from an advertisement, Recover gets it back through
// any transport that can POST /rec/{kid}.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "coffer/base/secret.h"
#include "coffer/keyserver/jose.h"

namespace coffer::tang {

class TangKeyStore {
 public:
  // Loads dir (creating it 0700 and a first key pair if it has no active keys, as tangd does).
  static Result<std::unique_ptr<TangKeyStore>> Open(const std::string& dir);

  // GET /adv (empty thp) or /adv/{thp}: the JWS text. kNotFound for an unknown thumbprint.
  Result<std::string> Advertisement(const std::string& thp = {});
  // POST /rec/{kid}: body is the client's JWK. kNotFound unknown kid; kInvalidArgument bad JWK;
  // kPermissionDenied when the JWK or server key does not allow deriveKey.
  Result<std::string> Recover(const std::string& kid, std::string_view body);
  // New active signing+exchange pair; the old active keys become rotated (hidden) keys.
  Status Rotate();
  // Thumbprints (S256) of the active exchange keys.
  std::vector<std::string> ActiveExchangeThumbprints();

 private:
  explicit TangKeyStore(std::string dir) : dir_(std::move(dir)) {}
  Status ReloadIfChangedLocked();
  Status LoadLocked();
  Status GenerateLocked();

  struct Key {
    jose::EcJwk jwk;
    std::string file;
    bool active = false;
  };
  std::string dir_;
  std::mutex mu_;
  std::vector<Key> keys_;
  long long loaded_mtime_ns_ = -1;
  std::string default_adv_;
};

// What a device keeps to recover its key later (JSON, docs/format/keyserver_protocol.md).
struct TangBinding {
  std::string url;
  std::string kid;           // S256 thumbprint of the server exchange key
  jose::EcJwk server_key;    // its public half
  jose::EcJwk client_pub;    // c*G; c is discarded after binding
  nlohmann::json ToJson() const;
  static Result<TangBinding> FromJson(const nlohmann::json& j);
};

// Verifies an advertisement (every advertised signing key must sign it; if trusted_thp is set, one of the
// signing keys must have that thumbprint) and returns its exchange keys.
Result<std::vector<jose::EcJwk>> VerifyAdvertisement(std::string_view adv_text, const std::string& trusted_thp = {});

// Makes a new binding and its 32-byte key from a verified advertisement.
struct BindResult {
  TangBinding binding;
  SecretBytes key;
};
Result<BindResult> Bind(const std::string& url, std::string_view adv_text, const std::string& trusted_thp = {});

// POSTs body to {url}/rec/{kid} and returns the response body (transport: plain, TLS, mTLS...).
using RecoverTransport = std::function<Result<std::string>(const std::string& kid, const std::string& body)>;
Result<SecretBytes> Recover(const TangBinding& binding, const RecoverTransport& post);

}  // namespace coffer::tang
