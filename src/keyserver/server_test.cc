// The key server over real mTLS on loopback: who is refused, who gets what, and what is written down.
#include "coffer/keyserver/server.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "coffer/keyserver/client.h"
#include "coffer/pki/pki.h"
#include "keyserver/key_server_fixture.h"

namespace coffer::keyserver {
namespace {

std::string Slurp(const std::string& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

TEST_F(KeyServerTest, DeviceGetsOnlyItsOwnSecret) {
  StartServer();
  KeyServerClient a(Client(ca_, "dev-a"));
  auto s = a.GetSecret("default");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->reveal_string(), "secret-of-a-0123456789");
  auto cross = a.Request("GET", "/v1/devices/dev-b/secret/default");
  EXPECT_EQ(cross.status().code(), StatusCode::kPermissionDenied) << cross.status().ToString();
  auto own = a.Request("GET", "/v1/devices/dev-a/secret/default");
  EXPECT_TRUE(own.ok());
  EXPECT_EQ(a.GetSecret("missing").status().code(), StatusCode::kNotFound);
  // the secure-store endpoint is off unless asked for
  EXPECT_EQ(a.Request("GET", "/key").status().code(), StatusCode::kNotFound);
  KeyServerClient b(Client(ca_, "dev-b"));
  EXPECT_EQ(b.GetSecret("default")->reveal_string(), "secret-of-b-9876543210");
}

TEST_F(KeyServerTest, CompatKeyEndpointAnswers201Password) {
  ServerOptions o;
  o.compat_key_endpoint = true;
  StartServer(o);
  KeyServerClient a(Client(ca_, "dev-a"));
  auto r = a.Request("GET", "/key");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(nlohmann::json::parse(r->body)["password"], "secret-of-a-0123456789");
}

TEST_F(KeyServerTest, CertificatesAreRefusedNoneForeignRevokedExpired) {
  StartServer();
  // none
  KeyServerClient none(Client(ca_, ""));
  EXPECT_EQ(none.GetSecret("default").status().code(), StatusCode::kPermissionDenied);
  // foreign CA
  std::string other = base_ + "/other";
  ASSERT_TRUE(pki::InitCa(other).ok());
  ASSERT_TRUE(pki::Issue(other, "dev-a").ok());
  KeyServerClient foreign(Client(other, "dev-a"));
  EXPECT_EQ(foreign.GetSecret("default").status().code(), StatusCode::kPermissionDenied);
  // expired
  pki::IssueOptions old;
  old.days = 1;
  old.not_before_offset_seconds = -3 * 86400;
  ASSERT_TRUE(pki::Issue(ca_, "dev-old", old).ok());
  ASSERT_TRUE(EnrollDevice(data_, "dev-old", "default", "old-secret", false).ok());
  KeyServerClient expired(Client(ca_, "dev-old"));
  EXPECT_EQ(expired.GetSecret("default").status().code(), StatusCode::kPermissionDenied);
  // revoked while the server runs: the CRL is reloaded
  KeyServerClient a(Client(ca_, "dev-a"));
  ASSERT_TRUE(a.GetSecret("default").ok());
  ASSERT_TRUE(pki::Revoke(ca_, "dev-a").ok());
  KeyServerClient a2(Client(ca_, "dev-a"));
  auto r = a2.GetSecret("default");
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("revoked"), std::string::npos) << r.status().message();
  std::string audit = Slurp(data_ + "/audit.log");
  EXPECT_NE(audit.find("certificate revoked"), std::string::npos);
}

TEST_F(KeyServerTest, AllowlistRefusesOtherAddresses) {
  ServerOptions o;
  o.allow = {"10.0.0.0/8"};
  StartServer(o);
  KeyServerClient a(Client(ca_, "dev-a"));
  auto r = a.GetSecret("default");
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(r.status().message().find("address not allowed"), std::string::npos);
}

TEST_F(KeyServerTest, RateLimitAnswers429AndClientRetries) {
  ServerOptions o;
  o.rate_per_second = 1;
  o.burst = 2;
  StartServer(o);
  KeyServerClient a(Client(ca_, "dev-a"));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(a.GetSecret("default").ok()) << i;  // later ones wait for tokens
  EXPECT_NE(Slurp(data_ + "/audit.log").find("rate limited"), std::string::npos);
}

TEST_F(KeyServerTest, UnreachableServerIsUnavailableAfterTheDeadline) {
  StartServer();
  ClientOptions c = Client(ca_, "dev-a");
  int port = server_->port();
  server_->Stop();
  server_.reset();
  c.urls = {"https://127.0.0.1:" + std::to_string(port)};
  c.deadline = std::chrono::milliseconds(600);
  int retries = 0;
  c.on_retry = [&](const std::string&) { ++retries; };
  KeyServerClient a(c);
  auto t0 = std::chrono::steady_clock::now();
  auto r = a.GetSecret("default");
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_GE(retries, 1);
  EXPECT_LT(ms, 3000);
}

TEST_F(KeyServerTest, SecondServerIsUsedWhenTheFirstIsDown) {
  StartServer();
  ClientOptions c = Client(ca_, "dev-a");
  c.urls.insert(c.urls.begin(), "https://127.0.0.1:1");
  KeyServerClient a(c);
  auto s = a.GetSecret("default");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
}

TEST_F(KeyServerTest, WitnessRefusesRolledBackVolume) {
  StartServer();
  KeyServerClient a(Client(ca_, "dev-a"));
  ASSERT_TRUE(a.ReportWitness("0a0b", 10, "ff00").ok());
  ASSERT_TRUE(a.ReportWitness("0a0b", 11, "ff01").ok());
  auto back = a.ReportWitness("0a0b", 10, "ff00");
  EXPECT_EQ(back.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(back.status().message().find("rolled back"), std::string::npos);
  auto latest = a.LatestWitness("0a0b");
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->counter, 11u);
  // device B's view of the same volume id is its own
  KeyServerClient b(Client(ca_, "dev-b"));
  EXPECT_EQ(b.LatestWitness("0a0b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(a.Request("POST", "/v1/witness", "{bad").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KeyServerTest, BlindModeStateAndLogsNeverHoldTheDeviceKey) {
  StartServer();
  KeyServerClient a(Client(ca_, "dev-a"));
  auto adv = a.TangAdvertisement();
  ASSERT_TRUE(adv.ok()) << adv.status().ToString();
  auto bound = tang::Bind("https://127.0.0.1:" + std::to_string(server_->port()), *adv);
  ASSERT_TRUE(bound.ok());
  auto key = a.TangRecover(bound->binding);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->Equals(bound->key));
  std::string hex, b64 = jose::B64UrlEncode(key->reveal());
  for (auto b : key->reveal()) {
    char t[3];
    snprintf(t, 3, "%02x", b);
    hex += t;
  }
  for (auto& f : std::filesystem::recursive_directory_iterator(data_)) {
    if (!f.is_regular_file()) continue;
    std::string d = Slurp(f.path());
    EXPECT_EQ(d.find(hex), std::string::npos) << f.path();
    EXPECT_EQ(d.find(b64), std::string::npos) << f.path();
  }
  // recovery is audited by identity; revoked devices cannot recover
  EXPECT_NE(Slurp(data_ + "/audit.log").find("tang recovery"), std::string::npos);
  ASSERT_TRUE(pki::Revoke(ca_, "dev-a").ok());
  KeyServerClient a2(Client(ca_, "dev-a"));
  EXPECT_EQ(a2.TangRecover(bound->binding).status().code(), StatusCode::kPermissionDenied);
}

TEST_F(KeyServerTest, AuditLogNeverContainsEscrowSecrets) {
  StartServer();
  KeyServerClient a(Client(ca_, "dev-a"));
  ASSERT_TRUE(a.GetSecret("default").ok());
  std::string audit = Slurp(data_ + "/audit.log");
  EXPECT_NE(audit.find("\"device\":\"dev-a\""), std::string::npos) << audit;
  EXPECT_EQ(audit.find("secret-of-a"), std::string::npos);
}

}  // namespace
}  // namespace coffer::keyserver
