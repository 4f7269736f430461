#include "coffer/keyserver/jose.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <sodium.h>

#include <algorithm>
#include <memory>

#include "pki/openssl_util.h"

namespace coffer::jose {
namespace {

template <auto F>
using Del = pki::Deleter<F>;
using GroupPtr = std::unique_ptr<EC_GROUP, Del<EC_GROUP_free>>;
using PointPtr = std::unique_ptr<EC_POINT, Del<EC_POINT_free>>;
using BnPtr = pki::BN_ptr;
using CtxPtr = std::unique_ptr<BN_CTX, Del<BN_CTX_free>>;
using PkeyPtr = pki::EVP_PKEY_ptr;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Del<EVP_MD_CTX_free>>;
using SigPtr = std::unique_ptr<ECDSA_SIG, Del<ECDSA_SIG_free>>;

struct Curve {
  const char* name;
  int nid;
  size_t bytes;
  const char* alg;
  const EVP_MD* (*md)();
};
constexpr Curve kCurves[] = {
    {"P-256", NID_X9_62_prime256v1, 32, "ES256", EVP_sha256},
    {"P-384", NID_secp384r1, 48, "ES384", EVP_sha384},
    {"P-521", NID_secp521r1, 66, "ES512", EVP_sha512},
};

const Curve* FindCurve(std::string_view crv) {
  for (const auto& c : kCurves) {
    if (crv == c.name) return &c;
  }
  return nullptr;
}

Bytes BnToFixed(const BIGNUM* bn, size_t len) {
  Bytes out(len);
  BN_bn2binpad(bn, out.data(), int(len));
  return out;
}

struct Pt {
  GroupPtr group;
  PointPtr point;
  const Curve* curve;
};

Result<Pt> ToPoint(const EcJwk& k) {
  const Curve* c = FindCurve(k.crv);
  if (!c) return InvalidArgument("unsupported curve '" + k.crv + "'");
  Pt p{GroupPtr(EC_GROUP_new_by_curve_name(c->nid)), nullptr, c};
  p.point.reset(EC_POINT_new(p.group.get()));
  BnPtr x(BN_bin2bn(k.x.data(), int(k.x.size()), nullptr)), y(BN_bin2bn(k.y.data(), int(k.y.size()), nullptr));
  CtxPtr ctx(BN_CTX_new());
  if (k.x.size() != c->bytes || k.y.size() != c->bytes ||
      EC_POINT_set_affine_coordinates(p.group.get(), p.point.get(), x.get(), y.get(), ctx.get()) != 1 ||
      EC_POINT_is_on_curve(p.group.get(), p.point.get(), ctx.get()) != 1 ||
      EC_POINT_is_at_infinity(p.group.get(), p.point.get())) {
    return InvalidArgument("JWK coordinates are not a point on " + k.crv);
  }
  return p;
}

Result<EcJwk> FromPoint(const Pt& p) {
  CtxPtr ctx(BN_CTX_new());
  if (EC_POINT_is_at_infinity(p.group.get(), p.point.get())) return InvalidArgument("result is the point at infinity");
  BnPtr x(BN_new()), y(BN_new());
  if (EC_POINT_get_affine_coordinates(p.group.get(), p.point.get(), x.get(), y.get(), ctx.get()) != 1) {
    return Internal("cannot read point coordinates");
  }
  EcJwk out;
  out.crv = p.curve->name;
  out.x = BnToFixed(x.get(), p.curve->bytes);
  out.y = BnToFixed(y.get(), p.curve->bytes);
  return out;
}

Bytes Uncompressed(const EcJwk& k) {
  Bytes out{0x04};
  Append(out, k.x);
  Append(out, k.y);
  return out;
}

Result<PkeyPtr> ToPkey(const EcJwk& k, bool with_private) {
  const Curve* c = FindCurve(k.crv);
  if (!c) return InvalidArgument("unsupported curve '" + k.crv + "'");
  std::unique_ptr<OSSL_PARAM_BLD, Del<OSSL_PARAM_BLD_free>> bld(OSSL_PARAM_BLD_new());
  Bytes pub = Uncompressed(k);
  BnPtr d;
  OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, OBJ_nid2sn(c->nid), 0);
  OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size());
  if (with_private) {
    if (!k.d) return InvalidArgument("JWK has no private key");
    d.reset(BN_bin2bn(k.d->reveal().data(), int(k.d->size()), nullptr));
    OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get());
  }
  std::unique_ptr<OSSL_PARAM, Del<OSSL_PARAM_free>> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, Del<EVP_PKEY_CTX_free>> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, with_private ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY, params.get()) != 1) {
    return InvalidArgument("JWK is not a usable EC key");
  }
  return PkeyPtr(pkey);
}

Result<Bytes> Member(const nlohmann::json& j, const char* name, bool required = true) {
  auto it = j.find(name);
  if (it == j.end()) {
    if (required) return InvalidArgument(std::string("JWK has no '") + name + "'");
    return Bytes{};
  }
  if (!it->is_string()) return InvalidArgument(std::string("JWK '") + name + "' is not a string");
  auto b = B64UrlDecode(it->get<std::string>());
  if (!b.ok()) return InvalidArgument(std::string("JWK '") + name + "' is not base64url");
  return b;
}

}  // namespace

std::string B64UrlEncode(ByteSpan data) {
  std::string out(sodium_base64_ENCODED_LEN(data.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), data.data(), data.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(std::strlen(out.c_str()));
  return out;
}

Result<Bytes> B64UrlDecode(std::string_view text) {
  Bytes out(text.size() * 3 / 4 + 3);
  size_t n = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &n, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    return InvalidArgument("not base64url");
  }
  out.resize(n);
  return out;
}

bool EcJwk::HasOp(std::string_view op) const {
  return std::find(key_ops.begin(), key_ops.end(), op) != key_ops.end();
}

EcJwk EcJwk::Public() const {
  EcJwk p;
  p.crv = crv;
  p.x = x;
  p.y = y;
  p.alg = alg;
  for (const auto& op : key_ops) {
    if (op != "sign" && op != "decrypt" && op != "unwrapKey") p.key_ops.push_back(op);
  }
  return p;
}

EcJwk EcJwk::Clone() const {
  EcJwk c = Public();
  c.key_ops = key_ops;
  if (d) c.d = d->Clone();
  return c;
}

Result<EcJwk> ParseEcJwk(const nlohmann::json& j) {
  if (!j.is_object()) return InvalidArgument("JWK is not a JSON object");
  auto kty = j.find("kty");
  if (kty == j.end() || !kty->is_string() || *kty != "EC") return InvalidArgument("JWK kty is not \"EC\"");
  auto crv = j.find("crv");
  if (crv == j.end() || !crv->is_string()) return InvalidArgument("JWK has no crv");
  EcJwk k;
  k.crv = crv->get<std::string>();
  const Curve* c = FindCurve(k.crv);
  if (!c) return InvalidArgument("JWK curve '" + k.crv + "' is not P-256, P-384 or P-521");
  COFFER_ASSIGN_OR_RETURN(k.x, Member(j, "x"));
  COFFER_ASSIGN_OR_RETURN(k.y, Member(j, "y"));
  if (k.x.size() != c->bytes || k.y.size() != c->bytes) return InvalidArgument("JWK coordinates have the wrong size");
  if (auto alg = j.find("alg"); alg != j.end()) {
    if (!alg->is_string()) return InvalidArgument("JWK alg is not a string");
    k.alg = alg->get<std::string>();
  }
  if (auto ops = j.find("key_ops"); ops != j.end()) {
    if (!ops->is_array()) return InvalidArgument("JWK key_ops is not an array");
    for (const auto& op : *ops) {
      if (!op.is_string()) return InvalidArgument("JWK key_ops holds a non-string");
      k.key_ops.push_back(op.get<std::string>());
    }
  }
  if (j.contains("d")) {
    COFFER_ASSIGN_OR_RETURN(Bytes d, Member(j, "d"));
    if (d.size() != c->bytes) return InvalidArgument("JWK d has the wrong size");
    GroupPtr g(EC_GROUP_new_by_curve_name(c->nid));
    BnPtr bn(BN_bin2bn(d.data(), int(d.size()), nullptr));
    bool ok = !BN_is_zero(bn.get()) && BN_cmp(bn.get(), EC_GROUP_get0_order(g.get())) < 0;
    k.d = SecretBytes::CopyOf(d);
    sodium_memzero(d.data(), d.size());
    if (!ok) return InvalidArgument("JWK d is out of range");
  }
  COFFER_RETURN_IF_ERROR(ToPoint(k).status());
  return k;
}

Result<EcJwk> ParseEcJwkText(std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return InvalidArgument("not JSON");
  return ParseEcJwk(j);
}

nlohmann::json ToJson(const EcJwk& k, bool include_private) {
  nlohmann::json j;
  j["kty"] = "EC";
  j["crv"] = k.crv;
  j["x"] = B64UrlEncode(k.x);
  j["y"] = B64UrlEncode(k.y);
  if (!k.alg.empty()) j["alg"] = k.alg;
  if (!k.key_ops.empty()) j["key_ops"] = k.key_ops;
  if (include_private && k.d) j["d"] = B64UrlEncode(k.d->reveal());
  return j;
}

Result<std::string> Thumbprint(const EcJwk& k, std::string_view hash) {
  std::string canon = "{\"crv\":\"" + k.crv + "\",\"kty\":\"EC\",\"x\":\"" + B64UrlEncode(k.x) + "\",\"y\":\"" +
                      B64UrlEncode(k.y) + "\"}";
  const EVP_MD* md = hash == "S256" ? EVP_sha256()
                     : hash == "S1" ? EVP_sha1()
                     : hash == "S224" ? EVP_sha224()
                     : hash == "S384" ? EVP_sha384()
                     : hash == "S512" ? EVP_sha512()
                                      : nullptr;
  if (!md) return InvalidArgument("unknown thumbprint hash " + std::string(hash));
  uint8_t out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(canon.data(), canon.size(), out, &n, md, nullptr);
  return B64UrlEncode(ByteSpan(out, n));
}

Result<EcJwk> GenerateEcJwk(std::string_view crv, std::string alg, std::vector<std::string> key_ops) {
  const Curve* c = FindCurve(crv);
  if (!c) return InvalidArgument("unsupported curve");
  PkeyPtr pkey(EVP_EC_gen(OBJ_nid2sn(c->nid)));
  if (!pkey) return Internal("EC key generation failed");
  BIGNUM *x = nullptr, *y = nullptr, *d = nullptr;
  EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_X, &x);
  EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_EC_PUB_Y, &y);
  EVP_PKEY_get_bn_param(pkey.get(), OSSL_PKEY_PARAM_PRIV_KEY, &d);
  BnPtr bx(x), by(y), bd(d);
  if (!x || !y || !d) return Internal("cannot read generated EC key");
  EcJwk k;
  k.crv = c->name;
  k.x = BnToFixed(x, c->bytes);
  k.y = BnToFixed(y, c->bytes);
  SecretBytes sd(c->bytes);
  BN_bn2binpad(d, sd.reveal().data(), int(c->bytes));
  k.d = std::move(sd);
  k.alg = std::move(alg);
  k.key_ops = std::move(key_ops);
  return k;
}

Result<EcJwk> EcmrMultiply(const EcJwk& priv, const EcJwk& point) {
  if (!priv.d) return InvalidArgument("ECMR multiply needs a private key");
  if (priv.crv != point.crv) return InvalidArgument("ECMR keys are on different curves");
  COFFER_ASSIGN_OR_RETURN(Pt p, ToPoint(point));
  BnPtr d(BN_bin2bn(priv.d->reveal().data(), int(priv.d->size()), nullptr));
  CtxPtr ctx(BN_CTX_new());
  Pt r{GroupPtr(EC_GROUP_dup(p.group.get())), nullptr, p.curve};
  r.point.reset(EC_POINT_new(r.group.get()));
  if (EC_POINT_mul(r.group.get(), r.point.get(), nullptr, p.point.get(), d.get(), ctx.get()) != 1) {
    return Internal("EC point multiplication failed");
  }
  return FromPoint(r);
}

namespace {
Result<EcJwk> AddOrSub(const EcJwk& a, const EcJwk& b, bool subtract) {
  if (a.crv != b.crv) return InvalidArgument("ECMR keys are on different curves");
  COFFER_ASSIGN_OR_RETURN(Pt pa, ToPoint(a));
  COFFER_ASSIGN_OR_RETURN(Pt pb, ToPoint(b));
  CtxPtr ctx(BN_CTX_new());
  if (subtract) EC_POINT_invert(pb.group.get(), pb.point.get(), ctx.get());
  Pt r{GroupPtr(EC_GROUP_dup(pa.group.get())), nullptr, pa.curve};
  r.point.reset(EC_POINT_new(r.group.get()));
  if (EC_POINT_add(r.group.get(), r.point.get(), pa.point.get(), pb.point.get(), ctx.get()) != 1) {
    return Internal("EC point addition failed");
  }
  return FromPoint(r);
}
}  // namespace

Result<EcJwk> EcmrAdd(const EcJwk& a, const EcJwk& b) { return AddOrSub(a, b, false); }
Result<EcJwk> EcmrSubtract(const EcJwk& a, const EcJwk& b) { return AddOrSub(a, b, true); }

Result<nlohmann::json> JwsSign(ByteSpan payload, const nlohmann::json& protected_extra, const std::vector<EcJwk>& keys) {
  if (keys.empty()) return InvalidArgument("no signing key");
  std::string payload_b64 = B64UrlEncode(payload);
  nlohmann::json sigs = nlohmann::json::array();
  for (const auto& k : keys) {
    const Curve* c = FindCurve(k.crv);
    if (!c) return InvalidArgument("unsupported curve");
    nlohmann::json prot = protected_extra.is_object() ? protected_extra : nlohmann::json::object();
    prot["alg"] = c->alg;
    std::string prot_b64 = B64UrlEncode(AsBytes(prot.dump()));
    std::string input = prot_b64 + "." + payload_b64;
    COFFER_ASSIGN_OR_RETURN(PkeyPtr pkey, ToPkey(k, true));
    MdCtxPtr md(EVP_MD_CTX_new());
    size_t der_len = 0;
    if (EVP_DigestSignInit(md.get(), nullptr, c->md(), nullptr, pkey.get()) != 1 ||
        EVP_DigestSign(md.get(), nullptr, &der_len, AsBytes(input).data(), input.size()) != 1) {
      return Internal("JWS signing failed");
    }
    Bytes der(der_len);
    if (EVP_DigestSign(md.get(), der.data(), &der_len, AsBytes(input).data(), input.size()) != 1) {
      return Internal("JWS signing failed");
    }
    const uint8_t* p = der.data();
    SigPtr sig(d2i_ECDSA_SIG(nullptr, &p, long(der_len)));
    if (!sig) return Internal("bad ECDSA signature encoding");
    Bytes rs = BnToFixed(ECDSA_SIG_get0_r(sig.get()), c->bytes);
    Append(rs, BnToFixed(ECDSA_SIG_get0_s(sig.get()), c->bytes));
    sigs.push_back({{"protected", prot_b64}, {"signature", B64UrlEncode(rs)}});
  }
  nlohmann::json out;
  out["payload"] = payload_b64;
  if (sigs.size() == 1) {
    out["protected"] = sigs[0]["protected"];
    out["signature"] = sigs[0]["signature"];
  } else {
    out["signatures"] = sigs;
  }
  return out;
}

Result<Jws> ParseJws(const nlohmann::json& j) {
  if (!j.is_object()) return InvalidArgument("JWS is not a JSON object");
  auto pl = j.find("payload");
  if (pl == j.end() || !pl->is_string()) return InvalidArgument("JWS has no payload");
  Jws out;
  out.payload_b64 = pl->get<std::string>();
  COFFER_ASSIGN_OR_RETURN(out.payload, B64UrlDecode(out.payload_b64));
  std::vector<nlohmann::json> raw;
  if (auto s = j.find("signatures"); s != j.end()) {
    if (!s->is_array()) return InvalidArgument("JWS signatures is not an array");
    for (const auto& e : *s) raw.push_back(e);
  } else {
    raw.push_back(j);
  }
  for (const auto& e : raw) {
    if (!e.is_object()) return InvalidArgument("JWS signature entry is not an object");
    auto pr = e.find("protected");
    auto sg = e.find("signature");
    if (pr == e.end() || !pr->is_string() || sg == e.end() || !sg->is_string()) {
      return InvalidArgument("JWS signature entry lacks protected or signature");
    }
    JwsSignature s;
    s.protected_b64 = pr->get<std::string>();
    COFFER_ASSIGN_OR_RETURN(Bytes ph, B64UrlDecode(s.protected_b64));
    s.protected_header = nlohmann::json::parse(ph.begin(), ph.end(), nullptr, false);
    if (s.protected_header.is_discarded() || !s.protected_header.is_object()) {
      return InvalidArgument("JWS protected header is not a JSON object");
    }
    COFFER_ASSIGN_OR_RETURN(s.signature, B64UrlDecode(sg->get<std::string>()));
    out.signatures.push_back(std::move(s));
  }
  if (out.signatures.empty()) return InvalidArgument("JWS has no signatures");
  return out;
}

bool JwsVerifiedBy(const Jws& jws, const EcJwk& key) {
  const Curve* c = FindCurve(key.crv);
  if (!c) return false;
  auto pkey = ToPkey(key, false);
  if (!pkey.ok()) return false;
  for (const auto& s : jws.signatures) {
    auto alg = s.protected_header.find("alg");
    if (alg == s.protected_header.end() || !alg->is_string() || *alg != c->alg) continue;
    if (s.signature.size() != 2 * c->bytes) continue;
    SigPtr sig(ECDSA_SIG_new());
    ECDSA_SIG_set0(sig.get(), BN_bin2bn(s.signature.data(), int(c->bytes), nullptr),
                   BN_bin2bn(s.signature.data() + c->bytes, int(c->bytes), nullptr));
    uint8_t* der = nullptr;
    int der_len = i2d_ECDSA_SIG(sig.get(), &der);
    if (der_len <= 0) continue;
    std::string input = s.protected_b64 + "." + jws.payload_b64;
    MdCtxPtr md(EVP_MD_CTX_new());
    bool ok = EVP_DigestVerifyInit(md.get(), nullptr, c->md(), nullptr, pkey->get()) == 1 &&
              EVP_DigestVerify(md.get(), der, size_t(der_len), AsBytes(input).data(), input.size()) == 1;
    OPENSSL_free(der);
    if (ok) return true;
  }
  return false;
}

}  // namespace coffer::jose
