// The daemon's server over a real Unix socket: round trips, identity from the kernel, isolation
// between uids (a forked child drops to another uid), malformed frames, many clients. Every test
// runs twice: clients on the socket protocol, and clients that negotiated the shared-memory ring.
#include "coffer/objectd/server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <thread>

#include "coffer/objects/local_store.h"
#include "coffer/objects/protocol.h"

namespace coffer::objectd {
namespace {

using namespace coffer::objects;
constexpr uint32_t kRW = kAccessRead | kAccessWrite | kAccessWriteMeta;

enum class Transport { kSocket, kSharedMemory };

class ServerTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-objectd-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    socket_ = dir_ + "/s";
    StoreOptions options;
    options.shares["team"] = {0, 4242};
    local_ = std::move(OpenMemoryStore(options)).value();
    ServerOptions so;
    so.socket_path = socket_;
    auto s = ObjectServer::Start(local_->store(), so);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
  }
  void TearDown() override {
    server_.reset();
    rmdir(dir_.c_str());
  }
  static ConnectOptions Options() { return ConnectOptions{.shared_memory = GetParam() == Transport::kSharedMemory}; }
  static const char* Expected() { return GetParam() == Transport::kSharedMemory ? "shared-memory" : "socket"; }
  std::unique_ptr<ObjectConnection> Connect() {
    auto c = ConnectObjectDaemon(socket_, Options());
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    if (c.ok()) {
      EXPECT_STREQ((*c)->transport(), Expected());
    }
    return c.ok() ? std::move(c).value() : nullptr;
  }
  static Status Put(ObjectConnection& c, const std::string& id, ByteSpan data, const std::string& share = "") {
    COFFER_ASSIGN_OR_RETURN(uint32_t h, c.Create(share, id, kRW | kOverwrite, {}));
    COFFER_RETURN_IF_ERROR(c.Write(h, data));
    return c.Close(h);
  }
  static Result<Bytes> Get(ObjectConnection& c, const std::string& id, const std::string& share = "") {
    COFFER_ASSIGN_OR_RETURN(uint32_t h, c.Open(share, id, kAccessRead | kShareRead));
    COFFER_ASSIGN_OR_RETURN(auto info, c.Info(h));
    Bytes out(info.meta.size);
    COFFER_ASSIGN_OR_RETURN(size_t n, c.Read(h, out));
    out.resize(n);
    COFFER_RETURN_IF_ERROR(c.Close(h));
    return out;
  }
  // Runs fn in a forked child with the given uid; returns the child's exit status.
  static int AsUid(uid_t uid, const std::function<int()>& fn) {
    pid_t pid = fork();
    if (pid == 0) {
      if (setgid(uid) != 0 || setuid(uid) != 0) _exit(99);
      _exit(fn());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
  }
  std::string dir_, socket_;
  std::unique_ptr<LocalStore> local_;
  std::unique_ptr<ObjectServer> server_;
};

TEST_P(ServerTest, SocketIsWorldConnectable) {
  struct stat st;
  ASSERT_EQ(stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0666u);
}

TEST_P(ServerTest, LargeObjectRoundTripInChunks) {
  auto c = Connect();
  Bytes data(3 * kMaxChunk + 12345);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 131 + (i >> 11));
  ASSERT_TRUE(Put(*c, "big", data).ok());
  auto back = Get(*c, "big");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, data);
}

TEST_P(ServerTest, IdentityComesFromTheKernel) {
  auto c = Connect();
  auto h = c->Create("", "mine", kRW, {}, AsBytes("x"));
  ASSERT_TRUE(h.ok());
  auto info = c->Info(*h);
  EXPECT_EQ(info->meta.owner_uid, geteuid());
  ASSERT_TRUE(c->Close(*h).ok());
}

TEST_P(ServerTest, OtherUidCanNeitherSeeNorGuessObjects) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another uid";
  auto c = Connect();
  ASSERT_TRUE(Put(*c, "root-secret", AsBytes("top secret")).ok());
  ASSERT_TRUE(Put(*c, "note", AsBytes("hello team"), "team").ok());
  std::string sock = socket_;
  int rc = AsUid(4242, [&]() -> int {
    auto other = ConnectObjectDaemon(sock, Options());
    if (!other.ok()) return 1;
    auto& o = **other;
    auto ids = ListAll(o);
    if (!ids.ok() || !ids->empty()) return 2;                        // cannot see
    if (o.Open("", "root-secret", kAccessRead).status().code() != StatusCode::kNotFound) return 3;  // cannot guess
    if (o.Open("", "../u0/root-secret", kAccessRead).status().code() != StatusCode::kNotFound) return 4;
    // Its own object of the same name is separate.
    if (!Put(o, "root-secret", AsBytes("mine")).ok()) return 5;
    // The configured share is reachable from both.
    auto shared = Get(o, "note", "team");
    if (!shared.ok() || std::string(shared->begin(), shared->end()) != "hello team") return 6;
    return 0;
  });
  EXPECT_EQ(rc, 0);
  auto mine = Get(*c, "root-secret");
  ASSERT_TRUE(mine.ok());
  EXPECT_EQ(std::string(mine->begin(), mine->end()), "top secret");
  // A uid outside the share is refused.
  rc = AsUid(4343, [&]() -> int {
    auto other = ConnectObjectDaemon(sock, Options());
    if (!other.ok()) return 1;
    return (*other)->Open("team", "note", kAccessRead).status().code() == StatusCode::kPermissionDenied ? 0 : 2;
  });
  EXPECT_EQ(rc, 0);
}

int RawConnect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST_P(ServerTest, MalformedFramesGetErrorsAndTheDaemonSurvives) {
  int fd = RawConnect(socket_);
  ASSERT_GE(fd, 0);
  // Garbage inside a well-formed frame: an error answer, connection stays usable.
  Bytes garbage = {7, 7, 7};
  ASSERT_TRUE(WriteFrame(fd, garbage).ok());
  Bytes resp;
  ASSERT_TRUE(ReadFrame(fd, resp).ok());
  ASSERT_GE(resp.size(), 4u);
  EXPECT_EQ(resp[1], uint8_t(StatusCode::kUnsupported));
  Bytes unknown = {1, 200};
  ASSERT_TRUE(WriteFrame(fd, unknown).ok());
  ASSERT_TRUE(ReadFrame(fd, resp).ok());
  EXPECT_EQ(resp[1], uint8_t(StatusCode::kInvalidArgument));
  // An impossible length: an error answer, then the daemon hangs up.
  uint8_t huge[4] = {0xff, 0xff, 0xff, 0x7f};
  ASSERT_EQ(write(fd, huge, 4), 4);
  ASSERT_TRUE(ReadFrame(fd, resp).ok());
  EXPECT_EQ(resp[1], uint8_t(StatusCode::kInvalidArgument));
  EXPECT_EQ(ReadFrame(fd, resp).code(), StatusCode::kNotFound);
  close(fd);
  // Half a frame then hang up.
  fd = RawConnect(socket_);
  uint8_t half[6] = {100, 0, 0, 0, 1, 1};
  ASSERT_EQ(write(fd, half, 6), 6);
  close(fd);
  // Still serving.
  auto c = Connect();
  ASSERT_TRUE(Put(*c, "after", AsBytes("ok")).ok());
  EXPECT_TRUE(Get(*c, "after").ok());
}

TEST_P(ServerTest, ClientDisconnectMidWriteKeepsOldObject) {
  auto c = Connect();
  ASSERT_TRUE(Put(*c, "obj", AsBytes("old")).ok());
  {
    auto w = Connect();
    auto h = w->Create("", "obj", kRW | kOverwrite, {});
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE(w->Write(*h, AsBytes("new but never committed")).ok());
  }  // connection dropped
  for (int i = 0; i < 100 && server_->connections() > 1; ++i) usleep(10000);
  auto back = Get(*c, "obj");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(std::string(back->begin(), back->end()), "old");
}

TEST_P(ServerTest, ManyConcurrentClients) {
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      auto c = ConnectObjectDaemon(socket_, Options());
      if (!c.ok()) {
        ++bad;
        return;
      }
      for (int i = 0; i < 25; ++i) {
        std::string id = "c" + std::to_string(t) + "/" + std::to_string(i);
        Bytes data(64 + 97 * i, uint8_t(t));
        if (!Put(**c, id, data).ok()) ++bad;
        auto back = Get(**c, id);
        if (!back.ok() || *back != data) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  auto c = Connect();
  EXPECT_EQ(ListAll(*c)->size(), 16u * 25u);
}

TEST_P(ServerTest, SecondDaemonOnTheSameSocketIsRefused) {
  ServerOptions so;
  so.socket_path = socket_;
  auto again = ObjectServer::Start(local_->store(), so);
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists);
}

TEST_P(ServerTest, ClientDeathMidRequestFreesTheConnection) {
  auto c = Connect();
  ASSERT_TRUE(Put(*c, "obj", AsBytes("old")).ok());
  std::string sock = socket_;
  ConnectOptions options = Options();
  pid_t pid = fork();
  if (pid == 0) {
    // Starts a large overwrite and dies without committing (the ring client posts and is killed
    // while the daemon may still be working on it).
    auto w = ConnectObjectDaemon(sock, options);
    if (!w.ok()) _exit(1);
    auto h = (*w)->Create("", "obj", kRW | kOverwrite, {});
    if (!h.ok()) _exit(2);
    std::thread([&] { (void)(*w)->Write(*h, Bytes(kMaxChunk, 7)); }).detach();
    usleep(1000);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  for (int i = 0; i < 300 && server_->connections() > 1; ++i) usleep(10000);
  EXPECT_EQ(server_->connections(), 1u);
  auto back = Get(*c, "obj");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(std::string(back->begin(), back->end()), "old");
}

INSTANTIATE_TEST_SUITE_P(Transports, ServerTest, ::testing::Values(Transport::kSocket, Transport::kSharedMemory),
                         [](const auto& info) { return info.param == Transport::kSocket ? "Socket" : "SharedMemory"; });

// A daemon that does not offer the ring (or predates it): clients that ask fall back to the socket.
TEST(ServerFallback, ClientsThatAskForTheRingFallBackToTheSocket) {
  char tmpl[] = "/tmp/coffer-objectd-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto local = std::move(OpenMemoryStore()).value();
  ServerOptions so;
  so.socket_path = dir + "/s";
  so.shared_memory = false;
  auto server = ObjectServer::Start(local->store(), so);
  ASSERT_TRUE(server.ok());
  auto c = ConnectObjectDaemon(so.socket_path, ConnectOptions{.shared_memory = true});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_STREQ((*c)->transport(), "socket");
  ASSERT_TRUE((*c)->WriteObject("", "a", kRW | kOverwrite, {}, AsBytes("v")).ok());
  auto got = (*c)->ReadObject("", "a", 0, 16);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->data, ToBytes("v"));
  c->reset();
  (*server)->Stop();
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace coffer::objectd
