// Small RAII and PEM helpers around OpenSSL 3 shared by pki and keyserver. Not a public interface.
// Thread-safe (no shared state).
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "coffer/base/status.h"

namespace coffer::pki {

template <auto F>
struct Deleter {
  template <typename T>
  void operator()(T* p) const { F(p); }
};
using X509_ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509_CRL_ptr = std::unique_ptr<X509_CRL, Deleter<X509_CRL_free>>;
using EVP_PKEY_ptr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BIO_ptr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using BN_ptr = std::unique_ptr<BIGNUM, Deleter<BN_clear_free>>;
using ASN1_TIME_ptr = std::unique_ptr<ASN1_TIME, Deleter<ASN1_TIME_free>>;
using ASN1_INTEGER_ptr = std::unique_ptr<ASN1_INTEGER, Deleter<ASN1_INTEGER_free>>;

// The last OpenSSL error queue entries as text (and clears the queue).
std::string OpenSslError();
std::string BioString(BIO* bio);
Result<X509_ptr> LoadCertPem(const std::string& path);
Result<EVP_PKEY_ptr> LoadKeyPem(const std::string& path);
Result<std::string> KeyToPem(EVP_PKEY* key);  // PKCS#8
Result<std::string> CertToPem(X509* cert);
// Upper-case hex of the certificate serial (as BN_bn2hex prints it).
std::string SerialHex(const X509* cert);
// The subject CN, or empty.
std::string CommonName(const X509* cert);

}  // namespace coffer::pki
