// The shared-memory ring against a hostile client: the daemon half (ServeRing) runs on a thread
// over one end of a socketpair, the test holds the other end and the client's mapping, and
// scribbles on it, lies about lengths, dies mid-request. The daemon must answer clearly or drop
// only that connection, never crash or read outside the ring.
#include "coffer/objects/ring.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>

#include "coffer/objects/local_store.h"
#include "coffer/objects/protocol.h"

namespace coffer::objects {
namespace {

constexpr uint32_t kRW = kAccessRead | kAccessWrite | kAccessWriteMeta | kOverwrite;

Bytes PutRequest(const std::string& id, ByteSpan data) {
  Bytes req = {kProtocolVersion, uint8_t(Op::kPut)};
  AppendLe32(req, kRW);
  AppendLe32(req, 0);
  AppendLe32(req, 0);
  AppendLe64(req, 0);
  req.push_back(0);  // share: private
  req.push_back(uint8_t(id.size()));
  Append(req, AsBytes(id));
  Append(req, data);
  return req;
}

Bytes GetRequest(const std::string& id, uint32_t max_len) {
  Bytes req = {kProtocolVersion, uint8_t(Op::kGet)};
  AppendLe32(req, kAccessRead | kShareRead);
  req.push_back(0);
  req.push_back(uint8_t(id.size()));
  Append(req, AsBytes(id));
  AppendLe64(req, 0);
  AppendLe32(req, max_len);
  return req;
}

uint8_t Code(ByteSpan answer) { return answer.size() >= 2 ? answer[1] : 0xff; }
std::string Message(ByteSpan answer) {
  if (answer.size() < 4) return "";
  size_t n = std::min<size_t>(GetLe16(&answer[2]), answer.size() - 4);
  return std::string(reinterpret_cast<const char*>(&answer[4]), n);
}

class RingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local_ = std::move(OpenMemoryStore()).value();
    session_ = local_->store().NewSession(1000);
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    client_fd_ = sv[0];
    daemon_fd_ = sv[1];
  }
  void TearDown() override {
    if (client_fd_ >= 0) ::close(client_fd_);
    if (daemon_.joinable()) daemon_.join();
    if (daemon_fd_ >= 0) ::close(daemon_fd_);
  }
  // Starts the daemon half: reads the ATTACH_RING frame, then ServeRing.
  void StartDaemon() {
    daemon_ = std::thread([this] {
      Bytes attach;
      if (!ReadFrame(daemon_fd_, attach).ok()) return;
      bool attached = false;
      result_ = ServeRing(daemon_fd_, *session_, attach, 0, stopping_, attached, spin_);
      attached_ = attached;
    });
  }
  RingClient Attach() {
    StartDaemon();
    auto c = RingClient::Negotiate(client_fd_, spin_);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
  // Writes a raw request the way a hostile client would: length word, sequence word, doorbell.
  static void RawPost(RingClient& c, uint32_t len, uint32_t seq, int sock) {
    c.ring().Word(kRingOffRequestLen).store(len);
    c.ring().Word(kRingOffRequestSeq).store(seq);
    uint8_t bell = 1;
    (void)::send(sock, &bell, 1, MSG_NOSIGNAL);
  }
  static bool WaitAnswer(RingClient& c, uint32_t seq) {
    for (int i = 0; i < 5000; ++i) {
      if (c.ring().Word(kRingOffAnswerSeq).load() == seq) return true;
      usleep(1000);
    }
    return false;
  }
  void StopDaemon() {
    ::shutdown(client_fd_, SHUT_RDWR);
    daemon_.join();
  }

  std::unique_ptr<LocalStore> local_;
  std::unique_ptr<Session> session_;
  int client_fd_ = -1, daemon_fd_ = -1;
  std::thread daemon_;
  std::atomic<bool> stopping_{false};
  RingSpin spin_{20, 20};
  Status result_;
  bool attached_ = false;
};

TEST_F(RingTest, RoundTripsLargeAndSmallRequests) {
  RingClient c = Attach();
  Bytes big(kMaxChunk - 512);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7 + (i >> 9));
  ByteSpan answer;
  ASSERT_TRUE(c.Call(PutRequest("big", big), answer).ok());
  EXPECT_EQ(Code(answer), 0) << Message(answer);
  ASSERT_TRUE(c.Call(GetRequest("big", kMaxChunk), answer).ok());
  ASSERT_EQ(Code(answer), 0) << Message(answer);
  ASSERT_EQ(answer.size(), 4u + 28u + big.size());
  EXPECT_TRUE(std::equal(big.begin(), big.end(), answer.begin() + 32));
  for (int i = 0; i < 200; ++i) {  // many small ones: sequence numbers and spin/sleep switches
    std::string id = "o" + std::to_string(i % 7);
    Bytes data(1 + i, uint8_t(i));
    ASSERT_TRUE(c.Call(PutRequest(id, data), answer).ok());
    ASSERT_EQ(Code(answer), 0);
    ASSERT_TRUE(c.Call(GetRequest(id, 4096), answer).ok());
    ASSERT_EQ(answer.size(), 32u + data.size());
    if (i % 50 == 0) usleep(2000);  // let the daemon fall asleep: the doorbell must wake it
  }
  StopDaemon();
  EXPECT_TRUE(attached_);
  EXPECT_TRUE(result_.ok()) << result_.ToString();
}

TEST_F(RingTest, TheClientCannotShrinkOrGrowTheRing) {
  RingClient c = Attach();
  EXPECT_NE(::ftruncate(c.ring().fd(), 0), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(::ftruncate(c.ring().fd(), off_t(c.ring().size()) * 2), 0);
  ByteSpan answer;
  ASSERT_TRUE(c.Call(GetRequest("none", 16), answer).ok());
  EXPECT_EQ(Code(answer), uint8_t(StatusCode::kNotFound));
  StopDaemon();
}

TEST_F(RingTest, ImpossibleLengthIsRefusedByNameAndEndsOnlyThisRing) {
  RingClient c = Attach();
  RawPost(c, 0xffffffffu, 1, client_fd_);
  ASSERT_TRUE(WaitAnswer(c, 1));
  uint32_t len = c.ring().Word(kRingOffAnswerLen).load();
  ASSERT_LE(len, c.ring().slot_size());
  ByteSpan answer(c.ring().answer_area(), len);
  EXPECT_EQ(Code(answer), uint8_t(StatusCode::kInvalidArgument));
  EXPECT_NE(Message(answer).find("ring request of 4294967295 bytes is larger than the slot"), std::string::npos)
      << Message(answer);
  daemon_.join();  // the daemon dropped this ring
  EXPECT_EQ(result_.code(), StatusCode::kInvalidArgument);
  // The session (the daemon's state) is intact.
  EXPECT_EQ(session_->open_handles(), 0u);
  EXPECT_TRUE(session_->Usage("").ok());
}

TEST_F(RingTest, TruncatedAndGarbageRequestsGetErrorsAndTheRingGoesOn) {
  RingClient c = Attach();
  Bytes get = GetRequest("x", 16);
  ByteSpan answer;
  // Truncated: the length says less than the fields need.
  std::memcpy(c.ring().request_area(), get.data(), get.size());
  RawPost(c, uint32_t(get.size() - 3), 1, client_fd_);
  ASSERT_TRUE(WaitAnswer(c, 1));
  answer = ByteSpan(c.ring().answer_area(), c.ring().Word(kRingOffAnswerLen).load());
  EXPECT_EQ(Code(answer), uint8_t(StatusCode::kInvalidArgument));
  EXPECT_NE(Message(answer).find("GET has a bad length"), std::string::npos) << Message(answer);
  // Zero length.
  RawPost(c, 0, 2, client_fd_);
  ASSERT_TRUE(WaitAnswer(c, 2));
  answer = ByteSpan(c.ring().answer_area(), c.ring().Word(kRingOffAnswerLen).load());
  EXPECT_NE(Message(answer).find("empty frame"), std::string::npos) << Message(answer);
  // A nested ATTACH_RING on the ring is refused.
  Bytes attach = {kProtocolVersion, uint8_t(Op::kAttachRing), 1, 0, 0, 0};
  std::memcpy(c.ring().request_area(), attach.data(), attach.size());
  RawPost(c, uint32_t(attach.size()), 3, client_fd_);
  ASSERT_TRUE(WaitAnswer(c, 3));
  answer = ByteSpan(c.ring().answer_area(), c.ring().Word(kRingOffAnswerLen).load());
  EXPECT_EQ(Code(answer), uint8_t(StatusCode::kUnsupported));
  // Still in step afterwards (the client's own counter continues from what it last used).
  RawPost(c, 0, 0, client_fd_);  // seq back to 0: a new request as far as the daemon knows
  ASSERT_TRUE(WaitAnswer(c, 0));
  StopDaemon();
  EXPECT_TRUE(result_.ok()) << result_.ToString();
}

TEST_F(RingTest, ScribblingOnTheWholeRingNeverHurtsTheDaemon) {
  RingClient c = Attach();
  ByteSpan answer;
  ASSERT_TRUE(c.Call(PutRequest("keep", AsBytes("precious")), answer).ok());
  ASSERT_EQ(Code(answer), 0);
  // Another thread rewrites every word of the mapping (header, lengths, sequence numbers, both
  // slots) with random values while doorbells keep the daemon working on whatever it finds.
  std::atomic<bool> done{false};
  std::thread scribbler([&] {
    std::mt19937_64 rng(42);
    uint8_t* base = c.ring().base();
    size_t size = c.ring().size();
    while (!done) {
      for (int i = 0; i < 4096; ++i) {
        size_t off = (rng() % (size / 4)) * 4;
        uint32_t v = uint32_t(rng());
        if (rng() % 4 == 0) off = (rng() % 40) * 4;  // favour the header words
        std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(base + off)).store(v, std::memory_order_relaxed);
      }
      // Sometimes a plausible request, so the parser sees near-valid input too.
      Bytes req = rng() % 2 ? GetRequest("keep", uint32_t(rng() % 64)) : PutRequest("other", AsBytes("x"));
      for (size_t i = 0; i < req.size(); ++i) {
        if (rng() % 8 == 0) req[i] = uint8_t(rng());
      }
      std::memcpy(c.ring().request_area(), req.data(), req.size());
      c.ring().Word(kRingOffRequestLen).store(uint32_t(rng() % 2 ? req.size() : rng() % (req.size() + 8)));
      c.ring().Word(kRingOffRequestSeq).store(uint32_t(rng()));
      uint8_t bell = 1;
      (void)::send(client_fd_, &bell, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    }
  });
  usleep(300 * 1000);
  done = true;
  scribbler.join();
  StopDaemon();  // the daemon either dropped the ring (an impossible length) or sees the hang-up
  EXPECT_TRUE(attached_);
  // Whatever happened, only this connection was affected: the store is intact and consistent.
  auto other = local_->store().NewSession(1000);
  auto h = other->Open("", "keep", kAccessRead);
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  char buf[16];
  auto n = other->Read(*h, MutableByteSpan(reinterpret_cast<uint8_t*>(buf), sizeof(buf)));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n).substr(0, 8), "precious");
  EXPECT_TRUE(other->Close(*h).ok());
}

TEST_F(RingTest, ClientDeathMidRequestEndsTheConnection) {
  RingClient c = Attach();
  Bytes get = GetRequest("x", 16);
  std::memcpy(c.ring().request_area(), get.data(), get.size());
  c.ring().Word(kRingOffRequestLen).store(uint32_t(get.size()));
  c.ring().Word(kRingOffRequestSeq).store(7);  // posted, then the client "dies" before waiting
  ::close(client_fd_);
  client_fd_ = -1;
  daemon_.join();
  EXPECT_TRUE(attached_);
  EXPECT_TRUE(result_.ok()) << result_.ToString();
}

TEST_F(RingTest, DaemonDeathIsReportedToTheWaitingClient) {
  // The daemon half answers ATTACH_RING, then goes away without serving.
  daemon_ = std::thread([this] {
    Bytes attach;
    ASSERT_TRUE(ReadFrame(daemon_fd_, attach).ok());
    auto ring = SharedRing::Create();
    ASSERT_TRUE(ring.ok());
    Bytes ok = {kProtocolVersion, 0, 0, 0};
    AppendLe32(ok, kRingVersion);
    AppendLe32(ok, uint32_t(ring->size()));
    ASSERT_TRUE(WriteFrameWithFd(daemon_fd_, ok, ring->fd()).ok());
    usleep(50 * 1000);
    ::close(daemon_fd_);
    daemon_fd_ = -1;
  });
  auto c = RingClient::Negotiate(client_fd_, spin_);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ByteSpan answer;
  Status st = c->Call(GetRequest("x", 16), answer);
  EXPECT_EQ(st.code(), StatusCode::kIoError) << st.ToString();
}

TEST_F(RingTest, BadAttachRequestsAreAnsweredOnTheSocket) {
  daemon_ = std::thread([this] {
    for (int i = 0; i < 2; ++i) {
      Bytes attach;
      if (!ReadFrame(daemon_fd_, attach).ok()) return;
      bool attached = true;
      (void)ServeRing(daemon_fd_, *session_, attach, 0, stopping_, attached, spin_);
      EXPECT_FALSE(attached);
    }
  });
  Bytes v2 = {kProtocolVersion, uint8_t(Op::kAttachRing), 2, 0, 0, 0};
  ASSERT_TRUE(WriteFrame(client_fd_, v2).ok());
  Bytes resp;
  ASSERT_TRUE(ReadFrame(client_fd_, resp).ok());
  EXPECT_EQ(Code(resp), uint8_t(StatusCode::kUnsupported));
  EXPECT_NE(Message(resp).find("object ring version 2 is not supported"), std::string::npos);
  Bytes short_req = {kProtocolVersion, uint8_t(Op::kAttachRing), 1};
  ASSERT_TRUE(WriteFrame(client_fd_, short_req).ok());
  ASSERT_TRUE(ReadFrame(client_fd_, resp).ok());
  EXPECT_EQ(Code(resp), uint8_t(StatusCode::kInvalidArgument));
  daemon_.join();
}

TEST(RingAttach, RefusesMappingsThatDoNotMatchTheirHeader) {
  auto ring = SharedRing::Create();
  ASSERT_TRUE(ring.ok());
  // A memfd with the right header but the wrong size, and one with a bad magic.
  int fd = ::memfd_create("t", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, off_t(ring->size() / 2)), 0);
  ASSERT_EQ(::pwrite(fd, ring->base(), kRingHeaderSize, 0), ssize_t(kRingHeaderSize));
  EXPECT_EQ(SharedRing::Attach(fd).status().code(), StatusCode::kCorrupt);
  int fd2 = ::memfd_create("t", MFD_CLOEXEC);
  ASSERT_EQ(::ftruncate(fd2, off_t(ring->size())), 0);
  EXPECT_EQ(SharedRing::Attach(fd2).status().code(), StatusCode::kCorrupt);
  int fd3 = ::dup(ring->fd());
  auto good = SharedRing::Attach(fd3);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->slot_size(), ring->slot_size());
}

TEST(AdaptiveSpin, LoneMissesKeepSpinningThreeInARowStopItProbesBringItBack) {
  AdaptiveSpin spin(40);
  EXPECT_EQ(spin.Budget(), 40u);
  spin.Record(false);  // a timer tick: keep spinning
  spin.Record(false);
  EXPECT_EQ(spin.Budget(), 40u);
  spin.Record(true);
  spin.Record(false);
  spin.Record(false);
  EXPECT_EQ(spin.Budget(), 40u);  // the hit reset the count
  spin.Record(false);             // three in a row: stop
  int probes = 0;
  for (int wait = 0; wait < 64; ++wait) {
    uint32_t b = spin.Budget();
    EXPECT_TRUE(b == 0 || b == 10u) << b;
    probes += b != 0;
    spin.Record(false);
  }
  EXPECT_EQ(probes, 2);  // every 32nd wait, with a quarter of the budget
  spin.Record(true);     // a probe that hit
  EXPECT_EQ(spin.Budget(), 40u);
}

}  // namespace
}  // namespace coffer::objects
