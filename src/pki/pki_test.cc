#include "coffer/pki/pki.h"

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "pki/openssl_util.h"

namespace coffer::pki {
namespace {

class PkiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-pki-XXXXXX";
    base_ = mkdtemp(tmpl);
    dir_ = base_ + "/ca";
  }
  void TearDown() override { std::filesystem::remove_all(base_); }
  unsigned Mode(const std::string& p) {
    struct stat st;
    EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
    return st.st_mode & 0777;
  }
  // X509_verify_cert of cert against ca.crt; returns the verify error (0 = ok).
  int Verify(const std::string& cert_path) {
    auto ca = LoadCertPem(dir_ + "/ca.crt");
    auto cert = LoadCertPem(cert_path);
    EXPECT_TRUE(ca.ok() && cert.ok());
    X509_STORE* store = X509_STORE_new();
    X509_STORE_add_cert(store, ca->get());
    X509_STORE_CTX* ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, cert->get(), nullptr);
    int ok = X509_verify_cert(ctx);
    int err = ok == 1 ? 0 : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return err;
  }
  std::string base_, dir_;
};

TEST_F(PkiTest, InitIssueVerifyAndKeyModes) {
  ASSERT_TRUE(InitCa(dir_).ok());
  EXPECT_EQ(Mode(dir_ + "/ca.key"), 0600u);
  EXPECT_EQ(Mode(dir_), 0700u);
  auto issued = Issue(dir_, "dev-1");
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  EXPECT_EQ(Mode(issued->key_path), 0600u);
  EXPECT_EQ(Verify(issued->cert_path), 0);
  auto cert = LoadCertPem(issued->cert_path);
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(CommonName(cert->get()), "dev-1");
  EXPECT_EQ(SerialHex(cert->get()), issued->serial_hex);
}

TEST_F(PkiTest, SecondInitIsRefused) {
  ASSERT_TRUE(InitCa(dir_).ok());
  EXPECT_EQ(InitCa(dir_).code(), StatusCode::kAlreadyExists);
}

TEST_F(PkiTest, ReissueNeedsRevocationFirst) {
  ASSERT_TRUE(InitCa(dir_).ok());
  ASSERT_TRUE(Issue(dir_, "d").ok());
  EXPECT_EQ(Issue(dir_, "d").status().code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(Revoke(dir_, "d").ok());
  EXPECT_TRUE(Issue(dir_, "d").ok());
}

TEST_F(PkiTest, RevokeAddsSerialToSignedCrl) {
  ASSERT_TRUE(InitCa(dir_).ok());
  auto a = Issue(dir_, "a");
  auto b = Issue(dir_, "b");
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(Revoke(dir_, "a").ok());
  ASSERT_TRUE(Revoke(dir_, "a").ok());  // idempotent
  auto crl = LoadCrl(dir_ + "/crl.pem", dir_ + "/ca.crt");
  ASSERT_TRUE(crl.ok()) << crl.status().ToString();
  EXPECT_TRUE(crl->Contains(a->serial_hex));
  EXPECT_FALSE(crl->Contains(b->serial_hex));
  EXPECT_EQ(crl->serials.size(), 1u);
  ASSERT_TRUE(Revoke(dir_, "b").ok());
  crl = LoadCrl(dir_ + "/crl.pem", dir_ + "/ca.crt");
  EXPECT_EQ(crl->serials.size(), 2u);
  EXPECT_EQ(Revoke(dir_, "nobody").code(), StatusCode::kNotFound);
}

TEST_F(PkiTest, CrlFromAnotherCaIsRejected) {
  ASSERT_TRUE(InitCa(dir_).ok());
  ASSERT_TRUE(InitCa(base_ + "/other").ok());
  EXPECT_EQ(LoadCrl(base_ + "/other/crl.pem", dir_ + "/ca.crt").status().code(), StatusCode::kDataLoss);
}

TEST_F(PkiTest, ExpiredCertificateFailsVerification) {
  ASSERT_TRUE(InitCa(dir_).ok());
  IssueOptions o;
  o.days = 1;
  o.not_before_offset_seconds = -3 * 86400;
  auto c = Issue(dir_, "old", o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(Verify(c->cert_path), X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(PkiTest, ForeignCaCertificateFailsVerification) {
  ASSERT_TRUE(InitCa(dir_).ok());
  ASSERT_TRUE(InitCa(base_ + "/other").ok());
  auto c = Issue(base_ + "/other", "intruder");
  ASSERT_TRUE(c.ok());
  EXPECT_NE(Verify(c->cert_path), 0);
}

TEST_F(PkiTest, BadDeviceIdsAreRefused) {
  ASSERT_TRUE(InitCa(dir_).ok());
  for (const char* id : {"", "../x", ".hidden", "a/b", "-x", "sp ace"}) {
    EXPECT_EQ(Issue(dir_, id).status().code(), StatusCode::kInvalidArgument) << id;
  }
  IssueOptions o;
  o.days = 0;
  EXPECT_EQ(Issue(dir_, "x", o).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(PkiTest, SingleCertSetupWritesKeys0600) {
  ASSERT_TRUE(GenerateSingleCert(base_ + "/single", "store.local", 365, true).ok());
  EXPECT_EQ(Mode(base_ + "/single/key.pem"), 0600u);
  EXPECT_EQ(Mode(base_ + "/single/key.pem.b64"), 0600u);
  auto cert = LoadCertPem(base_ + "/single/cert.pem");
  ASSERT_TRUE(cert.ok());
  EXPECT_EQ(X509_check_host(cert->get(), "store.local", 0, 0, nullptr), 1);
}

}  // namespace
}  // namespace coffer::pki
