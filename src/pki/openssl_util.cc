#include "pki/openssl_util.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "coffer/base/file_util.h"

namespace coffer::pki {

std::string OpenSslError() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, size_t(n));
}

Result<X509_ptr> LoadCertPem(const std::string& path) {
  COFFER_ASSIGN_OR_RETURN(Bytes pem, ReadFileBytes(path));
  BIO_ptr bio(BIO_new_mem_buf(pem.data(), int(pem.size())));
  X509_ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Corrupt(path + " is not a PEM certificate");
  return cert;
}

Result<EVP_PKEY_ptr> LoadKeyPem(const std::string& path) {
  COFFER_ASSIGN_OR_RETURN(SecretBytes pem, ReadSecretFile(path));
  BIO_ptr bio(BIO_new_mem_buf(pem.reveal().data(), int(pem.size())));
  EVP_PKEY_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Corrupt(path + " is not a PEM private key");
  return key;
}

Result<std::string> KeyToPem(EVP_PKEY* key) {
  BIO_ptr bio(BIO_new(BIO_s_secmem()));
  if (!bio) bio.reset(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return Internal("cannot encode key: " + OpenSslError());
  }
  return BioString(bio.get());
}

Result<std::string> CertToPem(X509* cert) {
  BIO_ptr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return Internal("cannot encode certificate: " + OpenSslError());
  return BioString(bio.get());
}

std::string SerialHex(const X509* cert) {
  BN_ptr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
  char* h = BN_bn2hex(bn.get());
  std::string out(h);
  OPENSSL_free(h);
  return out;
}

std::string CommonName(const X509* cert) {
  X509_NAME* name = X509_get_subject_name(cert);
  int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (idx < 0) return {};
  ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), size_t(n));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace coffer::pki
