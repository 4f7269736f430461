#include "coffer/keyserver/tang.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace coffer::tang {
namespace {

class TangTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-tang-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TangTest, BindThenRecoverGivesTheSameKeyAndServerNeverSeesIt) {
  auto store = TangKeyStore::Open(dir_ + "/db");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto adv = (*store)->Advertisement();
  ASSERT_TRUE(adv.ok());
  auto bound = Bind("http://x", *adv);
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  std::vector<std::string> seen;
  auto key = Recover(bound->binding, [&](const std::string& kid, const std::string& body) {
    seen.push_back(body);
    return (*store)->Recover(kid, body);
  });
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->Equals(bound->key));
  // The request is blinded: it is not the stored client point.
  auto req = jose::ParseEcJwkText(seen.at(0));
  ASSERT_TRUE(req.ok());
  EXPECT_NE(req->x, bound->binding.client_pub.x);
  // Nothing under the key directory contains the derived key's bytes.
  std::string hex;
  for (auto b : key->reveal()) {
    char t[3];
    snprintf(t, 3, "%02x", b);
    hex += t;
  }
  for (auto& f : std::filesystem::recursive_directory_iterator(dir_)) {
    if (!f.is_regular_file()) continue;
    std::ifstream in(f.path());
    std::string data((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(data.find(hex), std::string::npos);
    EXPECT_EQ(data.find(jose::B64UrlEncode(key->reveal())), std::string::npos);
  }
}

TEST_F(TangTest, RotationKeepsOldBindingsRecoverableAndAdvertisesNewKeys) {
  auto store = TangKeyStore::Open(dir_ + "/db");
  ASSERT_TRUE(store.ok());
  auto bound = Bind("http://x", *(*store)->Advertisement());
  ASSERT_TRUE(bound.ok());
  auto old_kids = (*store)->ActiveExchangeThumbprints();
  ASSERT_TRUE((*store)->Rotate().ok());
  auto new_kids = (*store)->ActiveExchangeThumbprints();
  ASSERT_EQ(new_kids.size(), 1u);
  EXPECT_NE(new_kids, old_kids);
  auto vs = VerifyAdvertisement(*(*store)->Advertisement());
  ASSERT_TRUE(vs.ok());
  EXPECT_EQ(*jose::Thumbprint(vs->front()), new_kids[0]);
  auto key = Recover(bound->binding, [&](const std::string& kid, const std::string& body) {
    return (*store)->Recover(kid, body);
  });
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->Equals(bound->key));
}

TEST_F(TangTest, BadRequestsAreRefused) {
  auto store = TangKeyStore::Open(dir_ + "/db");
  ASSERT_TRUE(store.ok());
  auto kid = (*store)->ActiveExchangeThumbprints().at(0);
  EXPECT_EQ((*store)->Recover("nope", "{}").status().code(), StatusCode::kInvalidArgument);
  auto p = jose::GenerateEcJwk("P-521", "ECMR", {"deriveKey"});
  EXPECT_EQ((*store)->Recover("unknown-kid", jose::ToJson(p->Public(), false).dump()).status().code(),
            StatusCode::kNotFound);
  auto wrong_ops = p->Public();
  wrong_ops.key_ops = {"sign"};
  EXPECT_EQ((*store)->Recover(kid, jose::ToJson(wrong_ops, false).dump()).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ((*store)->Recover(kid, jose::ToJson(*p, true).dump()).status().code(), StatusCode::kInvalidArgument);
  auto other_curve = jose::GenerateEcJwk("P-256", "ECMR", {"deriveKey"});
  EXPECT_FALSE((*store)->Recover(kid, jose::ToJson(other_curve->Public(), false).dump()).ok());
  EXPECT_EQ((*store)->Advertisement("nope").status().code(), StatusCode::kNotFound);
}

TEST_F(TangTest, TamperedAdvertisementIsRejected) {
  auto store = TangKeyStore::Open(dir_ + "/db");
  auto adv = nlohmann::json::parse(*(*store)->Advertisement());
  std::string sig = adv["signature"];
  sig[10] = sig[10] == 'A' ? 'B' : 'A';
  adv["signature"] = sig;
  EXPECT_EQ(Bind("http://x", adv.dump()).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(Bind("http://x", *(*store)->Advertisement(), "not-the-key").status().code(),
            StatusCode::kPermissionDenied);
}

TEST_F(TangTest, BindingJsonRoundTrip) {
  auto store = TangKeyStore::Open(dir_ + "/db");
  auto bound = Bind("http://h:1", *(*store)->Advertisement());
  ASSERT_TRUE(bound.ok());
  auto back = TangBinding::FromJson(bound->binding.ToJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->kid, bound->binding.kid);
  EXPECT_EQ(back->url, "http://h:1");
  EXPECT_FALSE(TangBinding::FromJson(nlohmann::json::object()).ok());
}

}  // namespace
}  // namespace coffer::tang
