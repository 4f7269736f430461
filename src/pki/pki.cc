#include "coffer/pki/pki.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>
#include <sys/stat.h>

#include <memory>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"
#include "pki/openssl_util.h"

namespace coffer::pki {
namespace {

Status MakeDir(const std::string& d) {
  if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoStatus("mkdir " + d, errno);
  return Status::Ok();
}

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) return Internal("cannot build certificate extension " + value + ": " + OpenSslError());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return Status::Ok();
}

bool IsIpAddress(const std::string& h) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(h.c_str());
  if (!ip) return false;
  ASN1_OCTET_STRING_free(ip);
  return true;
}

// A positive random 128-bit serial.
Status SetRandomSerial(X509* cert) {
  uint8_t raw[16];
  FillRandom(raw);
  raw[0] &= 0x7f;
  raw[0] |= 0x01;
  BN_ptr bn(BN_bin2bn(raw, sizeof raw, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) return Internal("serial: " + OpenSslError());
  return Status::Ok();
}

struct NewCert {
  X509_ptr cert;
  EVP_PKEY_ptr key;
};

Result<NewCert> BuildCert(const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, int days,
                          int64_t not_before_offset, bool ca, bool server, bool client,
                          const std::vector<std::string>& sans) {
  NewCert nc;
  nc.key.reset(EVP_EC_gen("P-256"));
  if (!nc.key) return Internal("cannot generate a P-256 key: " + OpenSslError());
  nc.cert.reset(X509_new());
  X509* c = nc.cert.get();
  X509_set_version(c, 2);
  COFFER_RETURN_IF_ERROR(SetRandomSerial(c));
  X509_gmtime_adj(X509_getm_notBefore(c), long(not_before_offset));
  X509_gmtime_adj(X509_getm_notAfter(c), long(not_before_offset) + long(days) * 86400L +
                                             (not_before_offset < 0 ? 0 : 0));
  X509_set_pubkey(c, nc.key.get());
  X509_NAME* name = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* iss = issuer ? issuer : c;
  X509_set_issuer_name(c, X509_get_subject_name(iss));
  if (ca) {
    COFFER_RETURN_IF_ERROR(AddExt(c, iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
    COFFER_RETURN_IF_ERROR(AddExt(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign"));
  } else {
    COFFER_RETURN_IF_ERROR(AddExt(c, iss, NID_basic_constraints, "critical,CA:FALSE"));
    COFFER_RETURN_IF_ERROR(AddExt(c, iss, NID_key_usage, "critical,digitalSignature,keyAgreement"));
    std::string eku = server && client ? "serverAuth,clientAuth" : server ? "serverAuth" : "clientAuth";
    COFFER_RETURN_IF_ERROR(AddExt(c, iss, NID_ext_key_usage, eku));
  }
  COFFER_RETURN_IF_ERROR(AddExt(c, iss, NID_subject_key_identifier, "hash"));
  if (issuer) COFFER_RETURN_IF_ERROR(AddExt(c, iss, NID_authority_key_identifier, "keyid:always"));
  if (!sans.empty()) {
    std::string san;
    for (const auto& h : sans) {
      if (!san.empty()) san += ",";
      san += (IsIpAddress(h) ? "IP:" : "DNS:") + h;
    }
    COFFER_RETURN_IF_ERROR(AddExt(c, iss, NID_subject_alt_name, san));
  }
  if (!X509_sign(c, issuer_key ? issuer_key : nc.key.get(), EVP_sha256())) {
    return Internal("cannot sign certificate: " + OpenSslError());
  }
  return nc;
}

Status WriteCertAndKey(const NewCert& nc, const std::string& cert_path, const std::string& key_path) {
  COFFER_ASSIGN_OR_RETURN(std::string key_pem, KeyToPem(nc.key.get()));
  COFFER_RETURN_IF_ERROR(WriteFileAtomic(key_path, AsBytes(key_pem), {0600, true}));
  sodium_memzero(key_pem.data(), key_pem.size());
  COFFER_ASSIGN_OR_RETURN(std::string cert_pem, CertToPem(nc.cert.get()));
  return WriteFileAtomic(cert_path, AsBytes(cert_pem), {0644, true});
}

Status WriteCrl(const std::string& dir, X509* ca, EVP_PKEY* ca_key, const std::vector<std::pair<ASN1_INTEGER*, time_t>>& revoked) {
  X509_CRL_ptr crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca));
  ASN1_TIME_ptr now(ASN1_TIME_set(nullptr, time(nullptr)));
  ASN1_TIME_ptr next(ASN1_TIME_adj(nullptr, time(nullptr), 365, 0));
  X509_CRL_set1_lastUpdate(crl.get(), now.get());
  X509_CRL_set1_nextUpdate(crl.get(), next.get());
  for (const auto& [serial, when] : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    X509_REVOKED_set_serialNumber(r, serial);
    ASN1_TIME_ptr t(ASN1_TIME_set(nullptr, when));
    X509_REVOKED_set_revocationDate(r, t.get());
    X509_CRL_add0_revoked(crl.get(), r);
  }
  X509_CRL_sort(crl.get());
  if (!X509_CRL_sign(crl.get(), ca_key, EVP_sha256())) return Internal("cannot sign CRL: " + OpenSslError());
  BIO_ptr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl.get());
  return WriteFileAtomic(dir + "/crl.pem", AsBytes(BioString(bio.get())), {0644, true});
}

struct Ca {
  X509_ptr cert;
  EVP_PKEY_ptr key;
};

Result<Ca> LoadCa(const std::string& dir) {
  Ca ca;
  COFFER_ASSIGN_OR_RETURN(ca.cert, LoadCertPem(dir + "/ca.crt"));
  COFFER_ASSIGN_OR_RETURN(ca.key, LoadKeyPem(dir + "/ca.key"));
  return ca;
}

}  // namespace

Status ValidateDeviceId(std::string_view id) {
  if (id.empty() || id.size() > 64) return InvalidArgument("device id must be 1-64 characters");
  if (id[0] == '.' || id[0] == '-') return InvalidArgument("device id must not start with '.' or '-'");
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return InvalidArgument("device id '" + std::string(id) + "' may only use A-Z a-z 0-9 . _ -");
  }
  return Status::Ok();
}

Status InitCa(const std::string& dir, const CaOptions& options) {
  COFFER_RETURN_IF_ERROR(MakeDir(dir));
  if (Exists(dir + "/ca.key")) return AlreadyExists(dir + " already holds a CA (ca.key)");
  COFFER_RETURN_IF_ERROR(MakeDir(dir + "/devices"));
  COFFER_RETURN_IF_ERROR(MakeDir(dir + "/servers"));
  COFFER_ASSIGN_OR_RETURN(NewCert nc, BuildCert(options.name, nullptr, nullptr, options.days, -300, true, false,
                                                false, {}));
  COFFER_RETURN_IF_ERROR(WriteCertAndKey(nc, dir + "/ca.crt", dir + "/ca.key"));
  return WriteCrl(dir, nc.cert.get(), nc.key.get(), {});
}

Result<Issued> Issue(const std::string& dir, const std::string& id, const IssueOptions& options) {
  COFFER_RETURN_IF_ERROR(ValidateDeviceId(id));
  if (options.days < 1 || options.days > 3650) return InvalidArgument("--days must be 1..3650");
  COFFER_ASSIGN_OR_RETURN(Ca ca, LoadCa(dir));
  std::string sub = dir + (options.server ? "/servers/" : "/devices/");
  COFFER_RETURN_IF_ERROR(MakeDir(sub));
  Issued out{sub + id + ".crt", sub + id + ".key", ""};
  if (Exists(out.cert_path) && !options.server) {
    auto old = LoadCertPem(out.cert_path);
    auto crl = LoadCrl(dir + "/crl.pem", dir + "/ca.crt");
    if (old.ok() && crl.ok() && !crl->Contains(SerialHex(old->get()))) {
      return AlreadyExists("device " + id + " already has an unrevoked certificate; revoke it first");
    }
  }
  std::vector<std::string> sans = options.hosts;
  if (options.server && sans.empty()) sans.push_back(id);
  COFFER_ASSIGN_OR_RETURN(NewCert nc, BuildCert(id, ca.cert.get(), ca.key.get(), options.days,
                                                options.not_before_offset_seconds, false, options.server,
                                                !options.server, sans));
  COFFER_RETURN_IF_ERROR(WriteCertAndKey(nc, out.cert_path, out.key_path));
  out.serial_hex = SerialHex(nc.cert.get());
  return out;
}

Status Revoke(const std::string& dir, const std::string& id) {
  COFFER_RETURN_IF_ERROR(ValidateDeviceId(id));
  COFFER_ASSIGN_OR_RETURN(Ca ca, LoadCa(dir));
  auto cert = LoadCertPem(dir + "/devices/" + id + ".crt");
  if (!cert.ok()) return NotFound("no certificate for device " + id + " in " + dir + "/devices");
  // Keep every entry of the current CRL, then add this one.
  COFFER_ASSIGN_OR_RETURN(Bytes crl_pem, ReadFileBytes(dir + "/crl.pem"));
  BIO_ptr bio(BIO_new_mem_buf(crl_pem.data(), int(crl_pem.size())));
  X509_CRL_ptr old(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!old) return Corrupt(dir + "/crl.pem is not a PEM CRL");
  std::vector<std::pair<ASN1_INTEGER*, time_t>> revoked;
  std::vector<ASN1_INTEGER_ptr> keep;
  std::string serial = SerialHex(cert->get());
  STACK_OF(X509_REVOKED)* list = X509_CRL_get_REVOKED(old.get());
  for (int i = 0; i < sk_X509_REVOKED_num(list); ++i) {
    X509_REVOKED* r = sk_X509_REVOKED_value(list, i);
    keep.emplace_back(ASN1_INTEGER_dup(X509_REVOKED_get0_serialNumber(r)));
    time_t when = time(nullptr);
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_REVOKED_get0_revocationDate(r), &tm)) when = timegm(&tm);
    revoked.emplace_back(keep.back().get(), when);
    BN_ptr bn(ASN1_INTEGER_to_BN(keep.back().get(), nullptr));
    char* h = BN_bn2hex(bn.get());
    bool same = serial == h;
    OPENSSL_free(h);
    if (same) return Status::Ok();  // already revoked
  }
  revoked.emplace_back(X509_get_serialNumber(cert->get()), time(nullptr));
  return WriteCrl(dir, ca.cert.get(), ca.key.get(), revoked);
}

Status GenerateSingleCert(const std::string& out_dir, const std::string& hostname, int days, bool base64) {
  if (hostname.empty()) return InvalidArgument("--hostname must not be empty");
  COFFER_RETURN_IF_ERROR(MakeDir(out_dir));
  COFFER_ASSIGN_OR_RETURN(NewCert nc, BuildCert(hostname, nullptr, nullptr, days, -300, false, true, true, {hostname}));
  COFFER_RETURN_IF_ERROR(WriteCertAndKey(nc, out_dir + "/cert.pem", out_dir + "/key.pem"));
  if (base64) {
    for (const char* f : {"cert.pem", "key.pem"}) {
      COFFER_ASSIGN_OR_RETURN(SecretBytes pem, ReadSecretFile(out_dir + "/" + f));
      std::string b64(sodium_base64_ENCODED_LEN(pem.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
      sodium_bin2base64(b64.data(), b64.size(), pem.reveal().data(), pem.size(), sodium_base64_VARIANT_ORIGINAL);
      b64.resize(std::strlen(b64.c_str()));
      b64 += "\n";
      COFFER_RETURN_IF_ERROR(WriteFileAtomic(out_dir + "/" + f + ".b64", AsBytes(b64), {0600, true}));
      sodium_memzero(b64.data(), b64.size());
    }
  }
  return Status::Ok();
}

Result<RevocationList> LoadCrl(const std::string& crl_path, const std::string& ca_cert_path) {
  COFFER_ASSIGN_OR_RETURN(X509_ptr ca, LoadCertPem(ca_cert_path));
  COFFER_ASSIGN_OR_RETURN(Bytes pem, ReadFileBytes(crl_path));
  BIO_ptr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  X509_CRL_ptr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) return Corrupt(crl_path + " is not a PEM CRL");
  EVP_PKEY* pub = X509_get0_pubkey(ca.get());
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())) != 0 ||
      X509_CRL_verify(crl.get(), pub) != 1) {
    return DataLoss(crl_path + " is not signed by the CA in " + ca_cert_path);
  }
  RevocationList out;
  STACK_OF(X509_REVOKED)* list = X509_CRL_get_REVOKED(crl.get());
  for (int i = 0; i < sk_X509_REVOKED_num(list); ++i) {
    BN_ptr bn(ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(list, i)), nullptr));
    char* h = BN_bn2hex(bn.get());
    out.serials.insert(h);
    OPENSSL_free(h);
  }
  return out;
}

}  // namespace coffer::pki
