// KeyServerTest: a test CA (server certificate "keys" for 127.0.0.1/localhost, devices dev-a and
// dev-b with escrowed secrets) and a key server on a loopback port started on demand; removed at
// TearDown. For the key server's tests in src/keyserver.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "coffer/keyserver/client.h"
#include "coffer/keyserver/server.h"
#include "coffer/pki/pki.h"

namespace coffer::keyserver {

class KeyServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-ks-XXXXXX";
    base_ = mkdtemp(tmpl);
    ca_ = base_ + "/ca";
    ASSERT_TRUE(pki::InitCa(ca_).ok());
    pki::IssueOptions so;
    so.server = true;
    so.hosts = {"127.0.0.1", "localhost"};
    ASSERT_TRUE(pki::Issue(ca_, "keys", so).ok());
    ASSERT_TRUE(pki::Issue(ca_, "dev-a").ok());
    ASSERT_TRUE(pki::Issue(ca_, "dev-b").ok());
    data_ = base_ + "/data";
    ASSERT_TRUE(EnrollDevice(data_, "dev-a", "default", "secret-of-a-0123456789", false).ok());
    ASSERT_TRUE(EnrollDevice(data_, "dev-b", "default", "secret-of-b-9876543210", false).ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    std::filesystem::remove_all(base_);
  }
  void StartServer(ServerOptions o = {}) {
    o.data_dir = data_;
    o.port = 0;
    o.tls_cert = ca_ + "/servers/keys.crt";
    o.tls_key = ca_ + "/servers/keys.key";
    o.client_ca = ca_ + "/ca.crt";
    o.crl = ca_ + "/crl.pem";
    auto s = KeyServer::Create(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    ASSERT_TRUE(server_->Start().ok());
  }
  ClientOptions Client(const std::string& cert_dir, const std::string& dev) {
    ClientOptions c;
    c.urls = {"https://127.0.0.1:" + std::to_string(server_->port())};
    if (!dev.empty()) {
      c.cert = cert_dir + "/devices/" + dev + ".crt";
      c.key = cert_dir + "/devices/" + dev + ".key";
    }
    c.ca = ca_ + "/ca.crt";
    c.deadline = std::chrono::milliseconds(2000);
    return c;
  }
  std::string base_, ca_, data_;
  std::unique_ptr<KeyServer> server_;
};

}  // namespace coffer::keyserver
