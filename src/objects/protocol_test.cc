// The wire codec: malformed requests get clear errors; frames are bounded.
#include "coffer/objects/protocol.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coffer/objects/local_store.h"

namespace coffer::objects {
namespace {

struct Reply {
  uint8_t version, code;
  std::string message;
  Bytes payload;
};

Reply Decode(const Bytes& b) {
  Reply r{};
  EXPECT_GE(b.size(), 4u);
  if (b.size() < 4) return r;
  r.version = b[0];
  r.code = b[1];
  uint16_t n = GetLe16(&b[2]);
  EXPECT_GE(b.size(), 4u + n);
  r.message.assign(b.begin() + 4, b.begin() + 4 + n);
  r.payload.assign(b.begin() + 4 + n, b.end());
  return r;
}

class ProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local_ = std::move(OpenMemoryStore()).value();
    session_ = local_->store().NewSession(1000);
  }
  Reply Send(const Bytes& req) { return Decode(HandleRequest(*session_, req)); }
  std::unique_ptr<LocalStore> local_;
  std::unique_ptr<Session> session_;
};

TEST_F(ProtocolTest, MalformedRequestsGetClearErrors) {
  struct Case {
    Bytes req;
    StatusCode code;
    const char* text;
  } cases[] = {
      {{}, StatusCode::kInvalidArgument, "empty frame"},
      {{2, 1}, StatusCode::kUnsupported, "protocol version 2"},
      {{1}, StatusCode::kInvalidArgument, "no operation"},
      {{1, 99}, StatusCode::kInvalidArgument, "unknown operation code 99"},
      {{1, 0}, StatusCode::kInvalidArgument, "unknown operation"},
      {{1, 1, 3, 0, 0}, StatusCode::kInvalidArgument, "CREATE is truncated"},
      {{1, 2, 1, 0, 0, 0, 0, 5, 'a'}, StatusCode::kInvalidArgument, "OPEN"},
      {{1, 3, 1, 0, 0, 0, 0, 0, 0x20, 0}, StatusCode::kInvalidArgument, "more than 1 MiB"},
      {{1, 3, 1, 0, 0, 0, 1, 0, 0, 0, 9}, StatusCode::kInvalidArgument, "READ has a bad length"},
      {{1, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, StatusCode::kInvalidArgument, "whence"},
      {{1, 8, 42, 0, 0, 0}, StatusCode::kInvalidArgument, "unknown object handle 42"},
  };
  for (const auto& c : cases) {
    Reply r = Send(c.req);
    EXPECT_EQ(r.version, kProtocolVersion);
    EXPECT_EQ(r.code, uint8_t(c.code)) << HexEncode(c.req) << " -> " << r.message;
    EXPECT_NE(r.message.find(c.text), std::string::npos) << r.message;
  }
}

TEST_F(ProtocolTest, OverlongIdIsRefusedByTheServer) {
  Bytes req = {1, 2, 1, 0, 0, 0, 0, 65};
  req.insert(req.end(), 65, 'a');
  Reply r = Send(req);
  EXPECT_EQ(r.code, uint8_t(StatusCode::kInvalidArgument));
  EXPECT_NE(r.message.find("1 to 64"), std::string::npos);
}

TEST_F(ProtocolTest, LocalConnectionRoundTrip) {
  auto c = NewLocalConnection(local_->store(), 5);
  auto h = c->Create("", "id", kAccessRead | kAccessWrite, {}, AsBytes("abc"));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(c->Close(*h).ok());
  auto ids = ListAll(*c);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, std::vector<std::string>{"id"});
  auto usage = c->GetUsage("");
  EXPECT_EQ(usage->used, 3u);
}

TEST(ProtocolFrames, OversizedLengthIsRefusedAndTruncatedFramesFail) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  uint8_t huge[4];
  PutLe32(huge, kMaxFrame + 1);
  ASSERT_EQ(write(sv[0], huge, 4), 4);
  Bytes body;
  Status st = ReadFrame(sv[1], body);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  uint8_t partial[6] = {10, 0, 0, 0, 1, 2};
  ASSERT_EQ(write(sv[0], partial, 6), 6);
  close(sv[0]);
  st = ReadFrame(sv[1], body);
  EXPECT_EQ(st.code(), StatusCode::kIoError) << st.ToString();
  st = ReadFrame(sv[1], body);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);  // clean end of stream
  close(sv[1]);
}

TEST(ProtocolFrames, WriteThenReadRoundTrip) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Bytes body = {1, 2, 3};
  ASSERT_TRUE(WriteFrame(sv[0], body).ok());
  Bytes got;
  ASSERT_TRUE(ReadFrame(sv[1], got).ok());
  EXPECT_EQ(got, body);
  close(sv[0]);
  close(sv[1]);
}

}  // namespace
}  // namespace coffer::objects
