// WitnessAnchor and the keyserver: unlock method against a real key server on loopback.
#include "coffer/keyserver/fleet_unlock.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "coffer/keyserver/server.h"
#include "keyserver/key_server_fixture.h"

namespace coffer::keyserver {
namespace {

// The server started, and Client() speaking as device dev-a.
class FleetUnlockTest : public KeyServerTest {
 protected:
  void SetUp() override {
    KeyServerTest::SetUp();
    StartServer();
  }
  ClientOptions Client() { return KeyServerTest::Client(ca_, "dev-a"); }
};

TEST_F(FleetUnlockTest, WitnessAnchorRefusesARolledBackVolume) {
  WitnessAnchor anchor(Client());
  VolumeId id{};
  id[0] = 7;
  auto none = anchor.Load(id);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->has_value());
  AnchorEntry e1{3, {}};
  e1.root[0] = 1;
  ASSERT_TRUE(anchor.Commit(id, e1).ok());
  AnchorEntry e2{4, {}};
  e2.root[0] = 2;
  ASSERT_TRUE(anchor.Commit(id, e2).ok());
  auto got = anchor.Load(id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ(**got, e2);
  // A device restored from an old snapshot tries to commit state 3 again: refused.
  Status back = anchor.Commit(id, e1);
  EXPECT_EQ(back.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(back.message().find("rolled back"), std::string::npos);
  // state is the server's, not the client object's: a fresh anchor sees it
  WitnessAnchor again(Client());
  EXPECT_EQ(**again.Load(id), e2);
  ASSERT_TRUE(again.Forget(id).ok());
  EXPECT_FALSE(again.Load(id)->has_value());
}

TEST_F(FleetUnlockTest, WitnessAnchorSpecOpensTheServersWitness) {
  std::string cfg = base_ + "/witness.json";
  std::ofstream(cfg) << nlohmann::json{{"urls", Client().urls}, {"cert", Client().cert}, {"key", Client().key},
                                       {"ca", Client().ca}, {"deadline_seconds", 2}}
                            .dump();
  RegisterKeyServerKeySpec();
  auto anchor = OpenAnchorSpec("witness:" + cfg);
  ASSERT_TRUE(anchor.ok()) << anchor.status().ToString();
  VolumeId id{};
  id[0] = 9;
  AnchorEntry e{5, {}};
  e.root[0] = 3;
  ASSERT_TRUE((*anchor)->Commit(id, e).ok());
  WitnessAnchor direct(Client());
  EXPECT_EQ(**direct.Load(id), e);
  e.counter = 4;
  EXPECT_EQ((*anchor)->Commit(id, e).code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(OpenAnchorSpec("witness:" + base_ + "/missing.json").ok());
}

TEST_F(FleetUnlockTest, EscrowAndTangUnlockMethods) {
  std::string cfg = base_ + "/ks.json";
  for (const char* mode : {"escrow", "tang"}) {
    std::ofstream(cfg) << nlohmann::json{{"urls", Client().urls}, {"cert", Client().cert}, {"key", Client().key},
                                         {"ca", Client().ca}, {"mode", mode}, {"deadline_seconds", 2}}
                              .dump();
    RegisterKeyServerKeySpec();
    auto m = ParseKeySpec("keyserver:" + cfg);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)->slot_type(), KeySlotType::kKeyServer);
    auto params = (*m)->NewSlotParams();
    ASSERT_TRUE(params.ok()) << params.status().ToString();
    EXPECT_LE(params->size(), kMaxSlotParams);
    auto a = (*m)->UnlockSecret(*params);
    auto b = (*m)->UnlockSecret(*params);
    ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString();
    EXPECT_TRUE(a->Equals(*b));
    if (std::string(mode) == "escrow") {
      EXPECT_EQ(a->reveal_string(), "secret-of-a-0123456789");
    }
    Bytes bad = *params;
    bad.pop_back();
    EXPECT_FALSE((*m)->UnlockSecret(bad).ok()) << mode;
  }
}

}  // namespace
}  // namespace coffer::keyserver
