#include <gtest/gtest.h>

#include "coffer/net/net.h"

namespace coffer::net {
namespace {

TEST(Url, ParsesSchemesPortsAndPaths) {
  auto u = ParseUrl("https://127.0.0.1:8443/v1/volumes/dev1");
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->path, "/v1/volumes/dev1");
  auto v6 = ParseUrl("diskhost://[::1]:5000");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->HostPort(), "[::1]:5000");
  EXPECT_EQ(ParseUrl("http://h/x")->port, 80);
  EXPECT_FALSE(ParseUrl("diskhost://h").ok());
  EXPECT_FALSE(ParseUrl("nonsense").ok());
  EXPECT_FALSE(ParseUrl("http://h:99999/").ok());
  EXPECT_FALSE(ParseHostPort("h:").ok());
  EXPECT_TRUE(IsLoopbackHost("127.0.0.2"));
  EXPECT_TRUE(IsLoopbackHost("::1"));
  EXPECT_FALSE(IsLoopbackHost("0.0.0.0"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1"));
}

TEST(Cidr, MatchesPrefixesAndRejectsGarbage) {
  auto l = CidrAllowlist::Parse({"10.1.0.0/16", "127.0.0.1", "fd00::/8"});
  ASSERT_TRUE(l.ok());
  EXPECT_TRUE(l->Allows("10.1.200.3"));
  EXPECT_FALSE(l->Allows("10.2.0.1"));
  EXPECT_TRUE(l->Allows("127.0.0.1"));
  EXPECT_TRUE(l->Allows("::ffff:127.0.0.1"));
  EXPECT_FALSE(l->Allows("127.0.0.2"));
  EXPECT_TRUE(l->Allows("fd12::1"));
  EXPECT_FALSE(l->Allows("fe80::1"));
  EXPECT_FALSE(l->Allows("not-an-ip"));
  EXPECT_TRUE(CidrAllowlist::Parse({})->Allows("1.2.3.4"));
  EXPECT_FALSE(CidrAllowlist::Parse({"10.0.0.0/33"}).ok());
  EXPECT_FALSE(CidrAllowlist::Parse({"example.com"}).ok());
  for (const char* bad : {"", "x/8", "10.0.0.0/", "10.0.0.0/-1", "::/129", "10.0.0.0/8 "}) {
    EXPECT_FALSE(CidrAllowlist::Parse({bad}).ok()) << bad;
  }
  auto odd = CidrAllowlist::Parse({"192.168.0.0/23"});
  EXPECT_TRUE(odd->Allows("192.168.1.9"));
  EXPECT_FALSE(odd->Allows("192.168.2.9"));
}

TEST(Tokens, IdentifiesDevicesAndRefusesUnknownTokens) {
  auto t = TokenTable::Parse("# fleet\ndevA aaaaaaaaaaaaaaaaaaaa\n\ndevB bbbbbbbbbbbbbbbbbbbb\n");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t->Identify("aaaaaaaaaaaaaaaaaaaa"), "devA");
  EXPECT_EQ(*t->Identify("bbbbbbbbbbbbbbbbbbbb"), "devB");
  EXPECT_EQ(t->Identify("aaaaaaaaaaaaaaaaaaab").status().code(), StatusCode::kUnauthenticated);
  EXPECT_FALSE(TokenTable::Parse("devA short\n").ok());
  EXPECT_FALSE(TokenTable::Parse("devA\n").ok());
  EXPECT_FALSE(TokenTable::Parse("").ok());
  EXPECT_EQ(BearerToken("Bearer abc"), "abc");
  EXPECT_EQ(BearerToken("bearer abc"), "abc");
  EXPECT_EQ(BearerToken("Basic abc"), "");
}

TEST(Backoff, GrowsWithJitterAndCaps) {
  BackoffPolicy p;
  p.initial = std::chrono::milliseconds(100);
  p.max_delay = std::chrono::milliseconds(1000);
  for (int i = 0; i < 50; ++i) {
    auto d1 = BackoffDelay(p, 1).count();
    EXPECT_GE(d1, 50);
    EXPECT_LE(d1, 100);
    auto d9 = BackoffDelay(p, 9).count();
    EXPECT_GE(d9, 500);
    EXPECT_LE(d9, 1000);
  }
}

TEST(Metrics, RendersPrometheusText) {
  Metrics m("coffer_blockhost");
  m.CountRequest("read", 200, 0.0003, 0, 272);
  m.CountRequest("read", 400, 0.01, 0, 40);
  m.CountError("client");
  std::string t = m.Render();
  EXPECT_NE(t.find("coffer_blockhost_requests_total{route=\"read\",code=\"200\"} 1"), std::string::npos);
  EXPECT_NE(t.find("coffer_blockhost_errors_total{class=\"client\"} 1"), std::string::npos);
  EXPECT_NE(t.find("coffer_blockhost_sent_bytes_total 312"), std::string::npos);
  EXPECT_NE(t.find("coffer_blockhost_request_seconds_bucket{le=\"0.0005\"} 1"), std::string::npos);
  EXPECT_NE(t.find("coffer_blockhost_request_seconds_count 2"), std::string::npos);
}

}  // namespace
}  // namespace coffer::net
