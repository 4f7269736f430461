#include "coffer/keyserver/tang.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>

#include "coffer/base/file_util.h"

namespace coffer::tang {
namespace {

constexpr const char* kHashes[] = {"S256", "S1", "S224", "S384", "S512"};

bool MatchesThp(const jose::EcJwk& k, const std::string& thp) {
  for (const char* h : kHashes) {
    auto t = jose::Thumbprint(k, h);
    if (t.ok() && *t == thp) return true;
  }
  return false;
}

// jose_jwk_prm(..., "deriveKey") for a key: allowed when key_ops lists it, or is absent and alg fits.
bool AllowsDerive(const jose::EcJwk& k) {
  if (!k.key_ops.empty()) return k.HasOp("deriveKey");
  return k.alg.empty() || k.alg == "ECMR";
}
bool IsSigning(const jose::EcJwk& k) { return k.HasOp("sign") || (k.key_ops.empty() && k.alg.rfind("ES", 0) == 0); }
bool IsExchange(const jose::EcJwk& k) { return k.alg == "ECMR" || (k.alg.empty() && k.HasOp("deriveKey")); }

long long DirMtime(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) return -2;
  return (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

// Key derived from the ECMR shared point: SHA-256("coffer tang v1" || x).
SecretBytes KeyFromPoint(const jose::EcJwk& z) {
  SecretBytes key(32);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  static constexpr char kLabel[] = "coffer tang v1";
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  EVP_DigestUpdate(md, kLabel, sizeof(kLabel) - 1);
  EVP_DigestUpdate(md, z.x.data(), z.x.size());
  unsigned int n = 32;
  EVP_DigestFinal_ex(md, key.reveal().data(), &n);
  EVP_MD_CTX_free(md);
  return key;
}

}  // namespace

Result<std::unique_ptr<TangKeyStore>> TangKeyStore::Open(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + dir, errno);
  std::unique_ptr<TangKeyStore> s(new TangKeyStore(dir));
  std::lock_guard<std::mutex> l(s->mu_);
  COFFER_RETURN_IF_ERROR(s->LoadLocked());
  return s;
}

Status TangKeyStore::GenerateLocked() {
  COFFER_ASSIGN_OR_RETURN(jose::EcJwk sig, jose::GenerateEcJwk("P-521", "ES512", {"sign", "verify"}));
  COFFER_ASSIGN_OR_RETURN(jose::EcJwk exc, jose::GenerateEcJwk("P-521", "ECMR", {"deriveKey"}));
  for (const auto* k : {&sig, &exc}) {
    COFFER_ASSIGN_OR_RETURN(std::string thp, jose::Thumbprint(*k));
    std::string text = jose::ToJson(*k, true).dump();
    COFFER_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/" + thp + ".jwk", AsBytes(text), {0600, false}));
  }
  return Status::Ok();
}

Status TangKeyStore::LoadLocked() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    keys_.clear();
    long long mtime = DirMtime(dir_);
    DIR* d = ::opendir(dir_.c_str());
    if (!d) return ErrnoStatus("open " + dir_, errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.size() > 4 && n.substr(n.size() - 4) == ".jwk") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    int active = 0;
    for (const auto& n : names) {
      auto text = ReadSecretFile(dir_ + "/" + n, 64 * 1024);
      if (!text.ok()) continue;  // tangd skips unreadable files too
      auto k = jose::ParseEcJwkText(text->reveal_string());
      if (!k.ok() || !k->d) continue;
      Key key{std::move(*k), n, n[0] != '.'};
      active += key.active;
      keys_.push_back(std::move(key));
    }
    bool has_sig = std::any_of(keys_.begin(), keys_.end(), [](const Key& k) { return k.active && IsSigning(k.jwk); });
    bool has_exc = std::any_of(keys_.begin(), keys_.end(), [](const Key& k) { return k.active && IsExchange(k.jwk); });
    if (has_sig && has_exc) {
      loaded_mtime_ns_ = mtime;
      // Default advertisement: active signing keys sign the set of active public keys.
      nlohmann::json pubs = nlohmann::json::array();
      std::vector<jose::EcJwk> signers;
      for (const auto& k : keys_) {
        if (!k.active) continue;
        if (IsSigning(k.jwk)) signers.push_back(k.jwk.Clone());
        if (IsSigning(k.jwk) || IsExchange(k.jwk)) pubs.push_back(jose::ToJson(k.jwk.Public(), false));
      }
      std::string payload = nlohmann::json{{"keys", pubs}}.dump();
      COFFER_ASSIGN_OR_RETURN(nlohmann::json jws, jose::JwsSign(AsBytes(payload), {{"cty", "jwk-set+json"}}, signers));
      default_adv_ = jws.dump();
      return Status::Ok();
    }
    if (attempt == 0) COFFER_RETURN_IF_ERROR(GenerateLocked());
  }
  return Internal("tang key directory " + dir_ + " has no usable signing and exchange keys");
}

Status TangKeyStore::ReloadIfChangedLocked() {
  if (DirMtime(dir_) == loaded_mtime_ns_) return Status::Ok();
  return LoadLocked();
}

Result<std::string> TangKeyStore::Advertisement(const std::string& thp) {
  std::lock_guard<std::mutex> l(mu_);
  COFFER_RETURN_IF_ERROR(ReloadIfChangedLocked());
  if (thp.empty()) return default_adv_;
  for (const auto& k : keys_) {
    if (!IsSigning(k.jwk) || !MatchesThp(k.jwk, thp)) continue;
    nlohmann::json pubs = nlohmann::json::array();
    for (const auto& a : keys_) {
      if (a.active && (IsSigning(a.jwk) || IsExchange(a.jwk))) pubs.push_back(jose::ToJson(a.jwk.Public(), false));
    }
    std::string payload = nlohmann::json{{"keys", pubs}}.dump();
    std::vector<jose::EcJwk> signers;
    signers.push_back(k.jwk.Clone());
    COFFER_ASSIGN_OR_RETURN(nlohmann::json jws, jose::JwsSign(AsBytes(payload), {{"cty", "jwk-set+json"}}, signers));
    return jws.dump();
  }
  return NotFound("no signing key with thumbprint " + thp);
}

Result<std::string> TangKeyStore::Recover(const std::string& kid, std::string_view body) {
  COFFER_ASSIGN_OR_RETURN(jose::EcJwk req, jose::ParseEcJwkText(body));
  if (req.d) return InvalidArgument("recovery request carries a private key");
  if (!AllowsDerive(req)) return PermissionDenied("request JWK does not allow deriveKey");
  if (!req.alg.empty() && req.alg != "ECMR") return InvalidArgument("request JWK alg is not ECMR");
  std::lock_guard<std::mutex> l(mu_);
  COFFER_RETURN_IF_ERROR(ReloadIfChangedLocked());
  for (const auto& k : keys_) {
    if (!IsExchange(k.jwk) || !MatchesThp(k.jwk, kid)) continue;
    if (!AllowsDerive(k.jwk)) return PermissionDenied("server key does not allow deriveKey");
    if (k.jwk.crv != req.crv) return InvalidArgument("request JWK is on " + req.crv + ", the key on " + k.jwk.crv);
    COFFER_ASSIGN_OR_RETURN(jose::EcJwk rep, jose::EcmrMultiply(k.jwk, req));
    rep.alg = "ECMR";
    rep.key_ops = {"deriveKey"};
    return jose::ToJson(rep, false).dump();
  }
  return NotFound("no exchange key with thumbprint " + kid);
}

Status TangKeyStore::Rotate() {
  std::lock_guard<std::mutex> l(mu_);
  COFFER_RETURN_IF_ERROR(ReloadIfChangedLocked());
  std::vector<std::string> old;
  for (const auto& k : keys_) {
    if (k.active) old.push_back(k.file);
  }
  COFFER_RETURN_IF_ERROR(GenerateLocked());
  for (const auto& f : old) {
    if (::rename((dir_ + "/" + f).c_str(), (dir_ + "/." + f).c_str()) != 0) return ErrnoStatus("rotate " + f, errno);
  }
  COFFER_RETURN_IF_ERROR(SyncParentDirectory(dir_ + "/x"));
  return LoadLocked();
}

std::vector<std::string> TangKeyStore::ActiveExchangeThumbprints() {
  std::lock_guard<std::mutex> l(mu_);
  (void)ReloadIfChangedLocked();
  std::vector<std::string> out;
  for (const auto& k : keys_) {
    if (k.active && IsExchange(k.jwk)) out.push_back(*jose::Thumbprint(k.jwk));
  }
  return out;
}

nlohmann::json TangBinding::ToJson() const {
  return {{"format", "coffer-tang-binding"}, {"version", 1}, {"url", url}, {"kid", kid},
          {"srv", jose::ToJson(server_key, false)}, {"epk", jose::ToJson(client_pub, false)}};
}

Result<TangBinding> TangBinding::FromJson(const nlohmann::json& j) {
  if (!j.is_object() || j.value("format", "") != "coffer-tang-binding") return InvalidArgument("not a coffer tang binding");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"] != 1) {
    return Unsupported("tang binding version is not 1");
  }
  TangBinding b;
  if (!j.contains("url") || !j["url"].is_string() || !j.contains("kid") || !j["kid"].is_string()) {
    return InvalidArgument("tang binding lacks url or kid");
  }
  b.url = j["url"];
  b.kid = j["kid"];
  COFFER_ASSIGN_OR_RETURN(b.server_key, jose::ParseEcJwk(j.value("srv", nlohmann::json())));
  COFFER_ASSIGN_OR_RETURN(b.client_pub, jose::ParseEcJwk(j.value("epk", nlohmann::json())));
  if (b.server_key.d || b.client_pub.d) return InvalidArgument("tang binding must not hold private keys");
  return b;
}

Result<std::vector<jose::EcJwk>> VerifyAdvertisement(std::string_view adv_text, const std::string& trusted_thp) {
  nlohmann::json j = nlohmann::json::parse(adv_text, nullptr, false);
  if (j.is_discarded()) return InvalidArgument("advertisement is not JSON");
  COFFER_ASSIGN_OR_RETURN(jose::Jws jws, jose::ParseJws(j));
  nlohmann::json payload = nlohmann::json::parse(jws.payload.begin(), jws.payload.end(), nullptr, false);
  if (payload.is_discarded() || !payload.is_object() || !payload.contains("keys") || !payload["keys"].is_array()) {
    return InvalidArgument("advertisement payload is not a JWK set");
  }
  std::vector<jose::EcJwk> exchange;
  int signers = 0;
  bool trusted_seen = trusted_thp.empty();
  for (const auto& kj : payload["keys"]) {
    auto k = jose::ParseEcJwk(kj);
    if (!k.ok()) continue;  // other key types are not ours to use
    if (k->HasOp("verify")) {
      if (!jose::JwsVerifiedBy(jws, *k)) return DataLoss("advertisement signature does not verify");
      ++signers;
      if (!trusted_seen && MatchesThp(*k, trusted_thp)) trusted_seen = true;
    } else if (IsExchange(*k) && AllowsDerive(*k)) {
      exchange.push_back(std::move(*k));
    }
  }
  if (signers == 0) return DataLoss("advertisement has no signing key");
  if (!trusted_seen) return PermissionDenied("advertisement is not signed by the trusted key " + trusted_thp);
  if (exchange.empty()) return InvalidArgument("advertisement has no exchange (ECMR) key");
  return exchange;
}

Result<BindResult> Bind(const std::string& url, std::string_view adv_text, const std::string& trusted_thp) {
  COFFER_ASSIGN_OR_RETURN(std::vector<jose::EcJwk> exchange, VerifyAdvertisement(adv_text, trusted_thp));
  const jose::EcJwk& s = exchange.front();
  COFFER_ASSIGN_OR_RETURN(jose::EcJwk c, jose::GenerateEcJwk(s.crv, "ECMR", {"deriveKey"}));
  COFFER_ASSIGN_OR_RETURN(jose::EcJwk z, jose::EcmrMultiply(c, s));
  BindResult r;
  r.binding.url = url;
  COFFER_ASSIGN_OR_RETURN(r.binding.kid, jose::Thumbprint(s));
  r.binding.server_key = s.Public();
  r.binding.client_pub = c.Public();
  r.key = KeyFromPoint(z);
  return r;
}

Result<SecretBytes> Recover(const TangBinding& b, const RecoverTransport& post) {
  // Blind the stored point with a fresh e: the server sees c*G + e*G, never c*G.
  COFFER_ASSIGN_OR_RETURN(jose::EcJwk e, jose::GenerateEcJwk(b.client_pub.crv, "ECMR", {"deriveKey"}));
  COFFER_ASSIGN_OR_RETURN(jose::EcJwk xfr, jose::EcmrAdd(b.client_pub, e.Public()));
  xfr.alg = "ECMR";
  xfr.key_ops = {"deriveKey"};
  COFFER_ASSIGN_OR_RETURN(std::string reply, post(b.kid, jose::ToJson(xfr, false).dump()));
  auto rep = jose::ParseEcJwkText(reply);
  if (!rep.ok()) return DataLoss("tang server reply is not a valid JWK: " + rep.status().message());
  if (rep->crv != b.client_pub.crv) return DataLoss("tang server replied on another curve");
  COFFER_ASSIGN_OR_RETURN(jose::EcJwk tmp, jose::EcmrMultiply(e, b.server_key));
  auto z = jose::EcmrSubtract(*rep, tmp);
  if (!z.ok()) return DataLoss("tang server reply does not unblind: " + z.status().message());
  return KeyFromPoint(*z);
}

}  // namespace coffer::tang
