// The slice of JOSE that Tang needs, written on OpenSSL 3: base64url, EC JWKs (P-256/P-384/P-521),
// RFC 7638 thumbprints, ES256/384/512 JWS (flattened and general JSON serialization), and the
// McCallum-Relyea (ECMR) point operations. Parsers take hostile input and never crash; every
// function is pure and thread-safe. Private scalars live in SecretBytes.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer::jose {

std::string B64UrlEncode(ByteSpan data);
Result<Bytes> B64UrlDecode(std::string_view text);  // no padding; rejects other alphabets

struct EcJwk {
  std::string crv;  // "P-256", "P-384" or "P-521"
  Bytes x, y;       // big-endian, field-size bytes
  std::optional<SecretBytes> d;
  std::string alg;  // "ES512", "ECMR", ... (may be empty)
  std::vector<std::string> key_ops;

  bool HasOp(std::string_view op) const;
  EcJwk Public() const;  // no d; private-only ops (sign, decrypt, unwrapKey) dropped as jose does
  EcJwk Clone() const;   // explicit deep copy (d is a SecretBytes)
};

// Parses and validates a JWK object: kty EC, known crv, coordinates of the right size forming a point
// on the curve, optional d in range. kInvalidArgument otherwise (message says what).
Result<EcJwk> ParseEcJwk(const nlohmann::json& j);
Result<EcJwk> ParseEcJwkText(std::string_view text);
// Serialises with sorted keys (jansson's JSON_SORT_KEYS | JSON_COMPACT shape).
nlohmann::json ToJson(const EcJwk& k, bool include_private);
// RFC 7638 thumbprint, base64url: hash "S256" (default), "S1", "S384", "S512".
Result<std::string> Thumbprint(const EcJwk& k, std::string_view hash = "S256");

// A fresh key on crv with the given alg and key_ops.
Result<EcJwk> GenerateEcJwk(std::string_view crv, std::string alg, std::vector<std::string> key_ops);

// ECMR: d*P (local private, remote point), P+Q, P-Q. Results are public JWKs with crv of the inputs.
Result<EcJwk> EcmrMultiply(const EcJwk& priv, const EcJwk& point);
Result<EcJwk> EcmrAdd(const EcJwk& a, const EcJwk& b);
Result<EcJwk> EcmrSubtract(const EcJwk& a, const EcJwk& b);

// JWS (RFC 7515) with ES256/ES384/ES512 by the curve of the key.
// Signs payload once per key; one key gives the flattened form, several the general form.
Result<nlohmann::json> JwsSign(ByteSpan payload, const nlohmann::json& protected_extra, const std::vector<EcJwk>& keys);
struct JwsSignature {
  nlohmann::json protected_header;
  std::string protected_b64;
  Bytes signature;
};
struct Jws {
  Bytes payload;
  std::string payload_b64;
  std::vector<JwsSignature> signatures;
};
Result<Jws> ParseJws(const nlohmann::json& j);
// True iff one signature verifies with key (alg must match the key's curve).
bool JwsVerifiedBy(const Jws& jws, const EcJwk& key);

}  // namespace coffer::jose
