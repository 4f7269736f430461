#include "coffer/keys/unlock.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "coffer/base/file_util.h"
#include "coffer/keys/key_file.h"

namespace coffer {
namespace {

struct Tmp {
  Tmp() {
    char d[] = "/tmp/coffer-ul-XXXXXX";
    dir = mkdtemp(d);
  }
  ~Tmp() { std::filesystem::remove_all(dir); }
  std::string dir;
};

KeySpecContext FastCtx() {
  KeySpecContext c;
  c.argon2 = {.ops = 1, .mem_bytes = 64 << 10};
  return c;
}

TEST(KeySpec, KeyFileByPathOrFileScheme) {
  Tmp t;
  std::string p = t.dir + "/k";
  ASSERT_TRUE(CreateKeyFile(p, false).ok());
  for (std::string spec : {p, "file:" + p}) {
    auto m = ParseKeySpec(spec);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    EXPECT_EQ((*m)->slot_type(), KeySlotType::kKeyFile);
    EXPECT_EQ((*m)->DefaultAnchorPath(), p + ".anchor");
    auto s = (*m)->UnlockSecret({});
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->Equals(*ReadKeyFile(p)));
  }
}

TEST(KeySpec, BadSpecsAreRefusedClearly) {
  EXPECT_EQ(ParseKeySpec("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKeySpec("tpm9:x").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(ParseKeySpec("pass:hunter2").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseKeySpec("pass:fd:x").status().code(), StatusCode::kInvalidArgument);
  auto m = ParseKeySpec("/nonexistent/key");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->UnlockSecret({}).status().code(), StatusCode::kNotFound);
}

TEST(KeySpec, PassphraseFromFileFdAndPromptAgree) {
  Tmp t;
  std::string pf = t.dir + "/pw";
  ASSERT_TRUE(WriteFileAtomic(pf, AsBytes("correct horse\n")).ok());
  auto a = ParseKeySpec("pass:file:" + pf, FastCtx());
  ASSERT_TRUE(a.ok());
  auto params = (*a)->NewSlotParams();
  ASSERT_TRUE(params.ok());
  EXPECT_EQ(params->size(), 28u);
  auto sa = (*a)->UnlockSecret(*params);
  ASSERT_TRUE(sa.ok()) << sa.status().ToString();

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_EQ(write(fds[1], "correct horse", 13), 13);
  close(fds[1]);
  auto b = ParseKeySpec("pass:fd:" + std::to_string(fds[0]), FastCtx());
  ASSERT_TRUE(b.ok());
  auto sb = (*b)->UnlockSecret(*params);
  close(fds[0]);
  ASSERT_TRUE(sb.ok());
  EXPECT_TRUE(sa->Equals(*sb));

  KeySpecContext ctx = FastCtx();
  ctx.prompt = [](const std::string&) { return Result<SecretBytes>(SecretBytes::CopyOf(AsBytes("wrong"))); };
  auto c = ParseKeySpec("pass:", ctx);
  ASSERT_TRUE(c.ok());
  auto sc = (*c)->UnlockSecret(*params);
  ASSERT_TRUE(sc.ok());
  EXPECT_FALSE(sa->Equals(*sc));
}

TEST(KeySpec, CreatingAsksTwiceAndRefusesMismatch) {
  KeySpecContext ctx = FastCtx();
  ctx.creating = true;
  int calls = 0;
  ctx.prompt = [&](const std::string&) {
    return Result<SecretBytes>(SecretBytes::CopyOf(AsBytes(calls++ == 0 ? "one" : "two")));
  };
  auto m = ParseKeySpec("pass:", ctx);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->UnlockSecret(*(*m)->NewSlotParams()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 2);
}

TEST(KeySpec, RegisteredSchemeIsUsed) {
  class Fixed : public UnlockMethod {
   public:
    KeySlotType slot_type() const override { return KeySlotType::kKeyServer; }
    std::string Describe() const override { return "fixed"; }
    Result<Bytes> NewSlotParams() override { return Bytes{1, 2, 3}; }
    Result<SecretBytes> UnlockSecret(ByteSpan) override { return SecretBytes(32); }
    std::string DefaultAnchorPath() const override { return "/tmp/x"; }
  };
  RegisterKeySpecScheme("testfixed", [](std::string_view, const KeySpecContext&) {
    return Result<std::unique_ptr<UnlockMethod>>(std::unique_ptr<UnlockMethod>(new Fixed));
  });
  auto m = ParseKeySpec("testfixed:anything");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->slot_type(), KeySlotType::kKeyServer);
}

}  // namespace
}  // namespace coffer
