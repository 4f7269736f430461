// The block host over real loopback HTTP(S): the original protocol byte for byte (with its input
// fixes), protocol v1, and the security boundary (tokens, allowlist, TLS, mTLS with CRL).
#include <httplib.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "blockhost/test_host.h"
#include "coffer/base/random.h"
#include "coffer/blockhost/protocol.h"

namespace coffer::blockhost {
namespace {

using testing::TestHost;
using nlohmann::json;

std::string Rec(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char(seed + i * 7);
  return s;
}

class CompatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.compat_volume = "legacy";
    o.access_log = &log_;
    host_ = std::make_unique<TestHost>(o);
    ASSERT_TRUE(host_->status().ok()) << host_->status().ToString();
    cli_ = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
  }
  std::ostringstream log_;
  std::unique_ptr<TestHost> host_;
  std::unique_ptr<httplib::Client> cli_;
};

TEST_F(CompatTest, NeverWrittenBlockReadsAs272Zeros) {
  auto r = cli_->Get("/ReadBlock?block=0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/octet-stream");
  EXPECT_EQ(r->body, std::string(272, '\0'));
}

TEST_F(CompatTest, WriteAnswersOKAndReadsBack) {
  std::string rec = Rec(272, 'a');
  auto w = cli_->Post("/WriteBlock?block=16383", rec, "application/octet-stream");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status, 200);
  EXPECT_EQ(w->body, "OK");
  EXPECT_EQ(w->get_header_value("Content-Type"), "text/html; charset=utf-8");
  auto r = cli_->Get("/ReadBlock?block=16383");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, rec);
  EXPECT_EQ(cli_->Get("/ReadBlock?block=16382")->body, std::string(272, '\0'));
}

TEST_F(CompatTest, OriginalErrorBodiesForMissingBlockAndWrongSize) {
  auto r = cli_->Get("/ReadBlock");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->body, "{\"error\": \"Missing block arg in block read\"}");
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  auto w = cli_->Post("/WriteBlock", Rec(272, 'x'), "application/octet-stream");
  EXPECT_EQ(w->status, 400);
  EXPECT_EQ(w->body, "{\"error\": \"Missing block arg in block write\"}");
  auto e = cli_->Get("/ReadBlock?block=");
  EXPECT_EQ(e->body, "{\"error\": \"Missing block arg in block read\"}");
  for (size_t n : {0, 1, 271, 273, 4096}) {
    auto s = cli_->Post("/WriteBlock?block=1", std::string(n, 'q'), "application/octet-stream");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->status, 400);
    EXPECT_EQ(s->body, "{\"error\": \"Incorrect data size " + std::to_string(n) + " bytes for block write\"}");
  }
  EXPECT_EQ(cli_->Get("/ReadBlock?block=1")->body, std::string(272, '\0')) << "a refused write changed data";
}

TEST_F(CompatTest, BadBlockNumbersAre400AndNeverReachAnotherBlock) {
  std::string rec = Rec(272, 'b');
  ASSERT_EQ(cli_->Post("/WriteBlock?block=5", rec, "application/octet-stream")->status, 200);
  for (const char* bad : {"16384", "-16379", "-1", "abc", "5abc", "+5", " 5", "0x5", "99999999999999999999999",
                          "5.0", "1e3"}) {
    std::string q;
    for (char ch : std::string(bad)) {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", unsigned(uint8_t(ch)));
      q += std::isalnum(uint8_t(ch)) ? std::string(1, ch) : std::string(hex);
    }
    auto r = cli_->Get(("/ReadBlock?block=" + q).c_str());
    ASSERT_TRUE(r) << bad;
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_NE(json::parse(r->body, nullptr, false).value("error", ""), "") << bad;
    auto w = cli_->Post(("/WriteBlock?block=" + q).c_str(), Rec(272, 'z'), "application/octet-stream");
    EXPECT_EQ(w->status, 400) << bad;
  }
  EXPECT_EQ(cli_->Get("/ReadBlock?block=5")->body, rec);
}

TEST_F(CompatTest, WrongMethodIs405AndUnknownPathIs404Json) {
  auto r = cli_->Get("/WriteBlock?block=1");
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  EXPECT_EQ(cli_->Post("/ReadBlock?block=1", "", "text/plain")->status, 405);
  auto n = cli_->Get("/nope");
  EXPECT_EQ(n->status, 404);
  EXPECT_TRUE(json::parse(n->body, nullptr, false).is_object());
}

TEST_F(CompatTest, DataSurvivesRestartAndKeepAliveWorks) {
  std::string rec = Rec(272, 'k');
  for (int i = 0; i < 50; ++i) {  // one keep-alive connection for all of these
    ASSERT_EQ(cli_->Post(("/WriteBlock?block=" + std::to_string(i)).c_str(), rec, "application/octet-stream")->status, 200);
  }
  ASSERT_TRUE(host_->Restart().ok());
  httplib::Client fresh("127.0.0.1", host_->port());
  EXPECT_EQ(fresh.Get("/ReadBlock?block=49")->body, rec);
}

TEST_F(CompatTest, AccessLogHasNoDataBytesAndMetricsCount) {
  std::string rec(272, 'Q');
  ASSERT_EQ(cli_->Post("/WriteBlock?block=3", rec, "application/octet-stream")->status, 200);
  ASSERT_EQ(cli_->Get("/ReadBlock?block=3")->status, 200);
  auto m = cli_->Get("/metrics");
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("coffer_blockhost_requests_total{route=\"compat_write\",code=\"200\"} 1"), std::string::npos);
  EXPECT_NE(m->body.find("coffer_blockhost_request_seconds_bucket"), std::string::npos);
  host_->Stop();
  std::string log = log_.str();
  EXPECT_NE(log.find("POST /WriteBlock?block=3 200"), std::string::npos) << log;
  EXPECT_EQ(log.find("QQQQ"), std::string::npos) << "record bytes leaked into the access log";
}

// ---- protocol v1 ----

class V1Test : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.max_range_bytes = 272 * 100;
    o.max_body_bytes = 1 << 20;
    host_ = std::make_unique<TestHost>(o);
    ASSERT_TRUE(host_->status().ok());
    cli_ = std::make_unique<httplib::Client>("127.0.0.1", host_->port());
    auto r = cli_->Put("/v1/volumes/v", "{\"record_size\":272,\"record_count\":1000}", "application/json");
    ASSERT_EQ(r->status, 201) << r->body;
    auto o2 = cli_->Post("/v1/volumes/v/open", "", "application/json");
    ASSERT_EQ(o2->status, 200);
    gen_ = json::parse(o2->body)["generation"].get<uint64_t>();
  }
  int Batch(const std::vector<std::pair<uint64_t, std::string>>& recs, BatchId id = {}, uint64_t gen = ~0ull) {
    if (id == BatchId{}) FillRandom(id);
    std::vector<RecordWrite> w;
    for (auto& [i, d] : recs) w.push_back({i, AsBytes(d)});
    Bytes body = EncodeBatch(id, gen == ~0ull ? gen_ : gen, 272, w);
    return cli_->Post("/v1/volumes/v/batch", std::string(AsStringView(body)), "application/octet-stream")->status;
  }
  std::string Read(uint64_t first, uint64_t count) {
    auto r = cli_->Get(("/v1/volumes/v/records?first=" + std::to_string(first) + "&count=" + std::to_string(count)).c_str());
    return r && r->status == 200 ? r->body : "<" + std::to_string(r ? r->status : -1) + ">";
  }
  std::unique_ptr<TestHost> host_;
  std::unique_ptr<httplib::Client> cli_;
  uint64_t gen_ = 0;
};

TEST_F(V1Test, CreateInfoDelete) {
  auto i = cli_->Get("/v1/volumes/v");
  ASSERT_EQ(i->status, 200);
  json j = json::parse(i->body);
  EXPECT_EQ(j["record_size"], 272);
  EXPECT_EQ(j["record_count"], 1000);
  EXPECT_EQ(j["format_version"], 1);
  EXPECT_EQ(cli_->Put("/v1/volumes/v", "{\"record_size\":272,\"record_count\":1000}", "application/json")->status, 409);
  for (const char* bad : {"", "[]", "{\"record_size\":272}", "{\"record_size\":-1,\"record_count\":5}",
                          "{\"record_size\":0,\"record_count\":5}", "{\"record_size\":272,\"record_count\":0}",
                          "{\"record_size\":\"272\",\"record_count\":5}", "{\"record_size\":272,\"record_count\":1e30}",
                          "{\"record_size\":2000000,\"record_count\":5}", "{\"record_size\":272,\"record_count\":18446744073709551615}"}) {
    EXPECT_EQ(cli_->Put("/v1/volumes/w", bad, "application/json")->status, 400) << bad;
  }
  EXPECT_EQ(cli_->Get("/v1/volumes/w")->status, 404);
  EXPECT_EQ(cli_->Put("/v1/volumes/.hidden", "{\"record_size\":1,\"record_count\":1}", "application/json")->status, 400);
  EXPECT_EQ(cli_->Patch("/v1/volumes/v", "", "text/plain")->status, 405);
  EXPECT_EQ(cli_->Delete("/v1/volumes/v")->status, 204);
  EXPECT_EQ(cli_->Get("/v1/volumes/v")->status, 404);
  EXPECT_EQ(cli_->Delete("/v1/volumes/v")->status, 404);
}

TEST_F(V1Test, BatchesAndRangeReads) {
  std::string a = Rec(272, 'a'), b = Rec(272, 'b');
  ASSERT_EQ(Batch({{0, a}, {999, b}}), 200);
  EXPECT_EQ(Read(999, 1), b);
  std::string r = Read(0, 2);
  EXPECT_EQ(r.substr(0, 272), a);
  EXPECT_EQ(r.substr(272), std::string(272, '\0'));
  EXPECT_EQ(Read(999, 2), "<400>");
  EXPECT_EQ(Read(1000, 1), "<400>");
  EXPECT_EQ(Read(0, 0), "<400>");
  EXPECT_EQ(Read(0, 101), "<400>") << "range above the host limit";
  EXPECT_EQ(cli_->Get("/v1/volumes/v/records?first=-1&count=1")->status, 400);
  EXPECT_EQ(cli_->Get("/v1/volumes/v/records?first=0")->status, 400);
  EXPECT_EQ(cli_->Get("/v1/volumes/v/records?first=x&count=1")->status, 400);
}

TEST_F(V1Test, BadBatchesChangeNothing) {
  std::string a = Rec(272, 'a');
  EXPECT_EQ(Batch({{1, a}, {1000, a}}), 400) << "index past the end";
  EXPECT_EQ(Batch({{1, a}, {1, a}}), 400) << "duplicate index";
  EXPECT_EQ(Batch({{1, a}}, {}, gen_ - 1), 409) << "stale fence";
  BatchId id;
  FillRandom(id);
  std::vector<RecordWrite> w = {{1, AsBytes(a)}};
  Bytes body = EncodeBatch(id, gen_, 272, w);
  auto post = [&](const Bytes& b) {
    return cli_->Post("/v1/volumes/v/batch", std::string(AsStringView(b)), "application/octet-stream")->status;
  };
  Bytes bad = body;
  bad[0] = 'X';
  EXPECT_EQ(post(bad), 400);
  bad = body;
  bad[4] = 2;  // version 2
  EXPECT_EQ(post(bad), 400);
  bad = body;
  bad.pop_back();
  EXPECT_EQ(post(bad), 400);
  bad = body;
  PutLe32(bad.data() + 32, 271);
  EXPECT_EQ(post(bad), 400);
  EXPECT_EQ(post(Bytes(10, 0)), 400);
  EXPECT_EQ(cli_->Post("/v1/volumes/v/batch", std::string(2 << 20, 'x'), "application/octet-stream")->status, 413);
  EXPECT_EQ(Read(1, 1), std::string(272, '\0'));
}

TEST_F(V1Test, RetriedBatchIdIsAppliedOnce) {
  BatchId id;
  FillRandom(id);
  std::string a = Rec(272, 'a'), b = Rec(272, 'b');
  ASSERT_EQ(Batch({{4, a}}, id), 200);
  ASSERT_EQ(Batch({{4, b}}), 200);
  auto r = Batch({{4, a}}, id);  // a late retry of the first batch
  EXPECT_EQ(r, 200);
  EXPECT_EQ(Read(4, 1), b) << "a retried batch was applied twice";
}

// ---- authentication and authorisation ----

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-tok-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::string path = dir_ + "/tokens";
    FILE* f = fopen(path.c_str(), "w");
    fputs("devA aaaaaaaaaaaaaaaaaaaaaaaa\ndevB bbbbbbbbbbbbbbbbbbbbbbbb\n", f);
    fclose(f);
    ServerOptions o;
    o.token_file = path;
    o.compat_volume = "legacy";
    host_ = std::make_unique<TestHost>(o);
    ASSERT_TRUE(host_->status().ok()) << host_->status().ToString();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  httplib::Client As(const std::string& token) {
    httplib::Client c("127.0.0.1", host_->port());
    if (!token.empty()) c.set_bearer_token_auth(token);
    return c;
  }
  std::string dir_;
  std::unique_ptr<TestHost> host_;
};

TEST_F(TokenTest, DeviceReachesOnlyItsOwnVolumes) {
  auto a = As("aaaaaaaaaaaaaaaaaaaaaaaa"), b = As("bbbbbbbbbbbbbbbbbbbbbbbb");
  ASSERT_EQ(a.Put("/v1/volumes/va", "{\"record_size\":16,\"record_count\":4}", "application/json")->status, 201);
  EXPECT_EQ(b.Get("/v1/volumes/va")->status, 404);
  EXPECT_EQ(b.Get("/v1/volumes/va/records?first=0&count=1")->status, 404);
  EXPECT_EQ(b.Post("/v1/volumes/va/open", "", "application/json")->status, 404);
  const std::string record(16, 'b');  // outlives the span in w
  std::vector<RecordWrite> w = {{0, AsBytes(record)}};
  Bytes body = EncodeBatch(BatchId{1}, 1, 16, w);
  EXPECT_EQ(b.Post("/v1/volumes/va/batch", std::string(AsStringView(body)), "application/octet-stream")->status, 404);
  EXPECT_EQ(b.Delete("/v1/volumes/va")->status, 404);
  EXPECT_EQ(b.Put("/v1/volumes/va", "{\"record_size\":16,\"record_count\":4}", "application/json")->status, 403);
  EXPECT_EQ(a.Get("/v1/volumes/va")->status, 200) << "B's attempts must not disturb A's volume";
  EXPECT_EQ(a.Get("/v1/volumes/va/records?first=0&count=1")->body, std::string(16, '\0'));
}

TEST_F(TokenTest, MissingOrWrongTokenIs401) {
  EXPECT_EQ(As("").Get("/v1/volumes/va")->status, 401);
  EXPECT_EQ(As("aaaaaaaaaaaaaaaaaaaaaaab").Get("/v1/volumes/va")->status, 401);
  EXPECT_EQ(As("").Get("/ReadBlock?block=0")->status, 401);
  EXPECT_EQ(As("").Get("/metrics")->status, 401);
  EXPECT_EQ(As("").Get("/healthz")->status, 200);
}

TEST(Allowlist, AddressOutsideIsRefused) {
  ServerOptions o;
  o.allow = {"10.0.0.0/8"};
  o.compat_volume = "legacy";
  TestHost host(o);
  ASSERT_TRUE(host.status().ok());
  httplib::Client c("127.0.0.1", host.port());
  EXPECT_EQ(c.Get("/ReadBlock?block=0")->status, 403);
  EXPECT_EQ(c.Get("/healthz")->status, 403);
  EXPECT_EQ(c.Put("/v1/volumes/x", "{\"record_size\":16,\"record_count\":4}", "application/json")->status, 403);
  ServerOptions ok = o;
  ok.allow = {"127.0.0.0/8"};
  TestHost host2(ok);
  httplib::Client c2("127.0.0.1", host2.port());
  EXPECT_EQ(c2.Get("/ReadBlock?block=0")->status, 200);
}

TEST(ServerOptionsCheck, PlaintextNeedsLoopbackAndTheFlag) {
  ServerOptions o;
  o.data_dir = "/tmp";
  o.listen_host = "0.0.0.0";
  o.insecure_plaintext = true;
  EXPECT_EQ(BlockHostServer::Create(o).status().code(), StatusCode::kInvalidArgument);
  o.listen_host = "127.0.0.1";
  o.insecure_plaintext = false;
  EXPECT_EQ(BlockHostServer::Create(o).status().code(), StatusCode::kInvalidArgument);
}

// ---- TLS and mTLS ----

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/coffer-pki-XXXXXX";
    pki_ = mkdtemp(tmpl);
    std::string cmd = "bash " COFFER_SOURCE_DIR "/src/blockhost/make_test_pki.sh " + pki_;
    ok_ = std::system(cmd.c_str()) == 0;
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(pki_); }
  void SetUp() override {
    if (!ok_) GTEST_SKIP() << "openssl could not make the test PKI";
  }
  std::unique_ptr<TestHost> Host(bool mtls, bool crl) {
    ServerOptions o;
    net::TlsServerConfig t;
    t.cert_file = pki_ + "/server.pem";
    t.key_file = pki_ + "/server.key";
    if (mtls) t.client_ca_file = pki_ + "/ca.pem";
    if (crl) t.crl_file = pki_ + "/ca.crl";
    o.tls = t;
    o.compat_volume = "legacy";
    return std::make_unique<TestHost>(o);
  }
  // Status of GET path as `who` (a client cert name, or "" for none); -1 if the handshake failed.
  int Get(int port, const std::string& who, const std::string& path = "/ReadBlock?block=0") {
    std::unique_ptr<httplib::SSLClient> c =
        who.empty() ? std::make_unique<httplib::SSLClient>("127.0.0.1", port)
                    : std::make_unique<httplib::SSLClient>("127.0.0.1", port, pki_ + "/" + who + ".pem", pki_ + "/" + who + ".key");
    c->set_ca_cert_path(pki_ + "/ca.pem");
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(3);
    auto r = c->Get(path.c_str());
    return r ? r->status : -1;
  }
  static std::string pki_;
  static bool ok_;
};
std::string TlsTest::pki_;
bool TlsTest::ok_ = false;

TEST_F(TlsTest, ServerTlsWorksAndPlainHttpDoesNot) {
  auto h = Host(false, false);
  ASSERT_TRUE(h->status().ok()) << h->status().ToString();
  EXPECT_EQ(Get(h->port(), ""), 200);
  httplib::Client plain("127.0.0.1", h->port());
  plain.set_connection_timeout(2);
  plain.set_read_timeout(2);
  auto r = plain.Get("/ReadBlock?block=0");
  EXPECT_TRUE(!r || r->status == 400);
}

TEST_F(TlsTest, MutualTlsRefusesNoCertOtherCaRevokedAndExpired) {
  auto h = Host(true, true);
  ASSERT_TRUE(h->status().ok()) << h->status().ToString();
  EXPECT_EQ(Get(h->port(), "devA"), 200);
  EXPECT_EQ(Get(h->port(), ""), -1) << "no client certificate";
  EXPECT_EQ(Get(h->port(), "other"), -1) << "certificate from another CA";
  EXPECT_EQ(Get(h->port(), "revoked"), -1) << "revoked certificate";
  EXPECT_EQ(Get(h->port(), "expired"), -1) << "expired certificate";
}

TEST_F(TlsTest, CertificateIdentityOwnsVolumes) {
  auto h = Host(true, true);
  ASSERT_TRUE(h->status().ok());
  auto client = [&](const std::string& who) {
    auto c = std::make_unique<httplib::SSLClient>("127.0.0.1", h->port(), pki_ + "/" + who + ".pem", pki_ + "/" + who + ".key");
    c->set_ca_cert_path(pki_ + "/ca.pem");
    c->enable_server_certificate_verification(true);
    return c;
  };
  auto a = client("devA"), b = client("devB");
  ASSERT_EQ(a->Put("/v1/volumes/mine", "{\"record_size\":16,\"record_count\":4}", "application/json")->status, 201);
  EXPECT_EQ(a->Get("/v1/volumes/mine")->status, 200);
  EXPECT_EQ(b->Get("/v1/volumes/mine")->status, 404);
  EXPECT_EQ(b->Delete("/v1/volumes/mine")->status, 404);
  EXPECT_EQ(a->Get("/v1/volumes/mine")->status, 200);
}

TEST_F(TlsTest, BadTlsMaterialIsAClearError) {
  ServerOptions o;
  o.data_dir = pki_;
  net::TlsServerConfig t;
  t.cert_file = pki_ + "/server.pem";
  t.key_file = pki_ + "/devA.key";  // does not match
  o.tls = t;
  auto s = BlockHostServer::Create(o);
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace coffer::blockhost
