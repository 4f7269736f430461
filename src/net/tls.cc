// TLS contexts for servers (optionally mTLS with a CRL) and client-certificate identities.
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "coffer/net/net.h"

namespace coffer::net {
namespace {

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return buf;
}

}  // namespace

Status ConfigureServerContext(SSL_CTX* ctx, const TlsServerConfig& c) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  if (SSL_CTX_use_certificate_chain_file(ctx, c.cert_file.c_str()) != 1) {
    return InvalidArgument("TLS certificate " + c.cert_file + ": " + OpenSslError());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, c.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgument("TLS key " + c.key_file + ": " + OpenSslError());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return InvalidArgument("TLS key " + c.key_file + " does not match certificate " + c.cert_file);
  }
  if (!c.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, c.client_ca_file.c_str(), nullptr) != 1) {
      return InvalidArgument("client CA " + c.client_ca_file + ": " + OpenSslError());
    }
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(c.client_ca_file.c_str());
    if (names) SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    if (!c.crl_file.empty()) {
      X509_STORE* store = SSL_CTX_get_cert_store(ctx);
      BIO* bio = BIO_new_file(c.crl_file.c_str(), "r");
      if (!bio) return InvalidArgument("CRL " + c.crl_file + ": " + OpenSslError());
      int n = 0;
      while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr)) {
        X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        ++n;
      }
      BIO_free(bio);
      ERR_clear_error();
      if (n == 0) return InvalidArgument("CRL " + c.crl_file + " holds no PEM X509 CRL");
      X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    }
  } else if (!c.crl_file.empty()) {
    return InvalidArgument("--crl needs --client-ca (revocation applies to client certificates)");
  }
  return Status::Ok();
}

std::string PeerCertificateIdentity(const SSL* ssl) {
  if (!ssl) return {};
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (!cert) return {};
  std::string id;
  if (SSL_get_verify_result(ssl) == X509_V_OK) {
    X509_NAME* subject = X509_get_subject_name(cert);
    char cn[256] = {0};
    int n = X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof(cn));
    if (n > 0) id = "cn:" + std::string(cn, size_t(n));
  }
  X509_free(cert);
  return id;
}

}  // namespace coffer::net
