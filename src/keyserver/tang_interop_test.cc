// Tang interop with the real peers, both ways: coffer's client against Debian's tangd (run on loopback
// through socat), and Debian's clevis against coffer's server. Skips with a reason when a peer is missing.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "coffer/keyserver/client.h"
#include "coffer/keyserver/server.h"
#include "coffer/keyserver/tang.h"
#include "coffer/net/net.h"
#include "coffer/pki/pki.h"

namespace coffer::keyserver {
namespace {

bool Executable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }
bool InPath(const std::string& name) { return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0; }

std::string Slurp(const std::string& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

class TangInterop : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-tangi-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override {
    if (socat_pid_ > 0) {
      ::kill(socat_pid_, SIGTERM);
      ::waitpid(socat_pid_, nullptr, 0);
    }
    if (server_) server_->Stop();
    std::filesystem::remove_all(dir_);
  }
  // tangd on loopback via socat, serving db.
  int StartTangd(const std::string& db) {
    int port = net::FreeLoopbackPort();
    socat_pid_ = ::fork();
    if (socat_pid_ == 0) {
      std::string listen = "TCP-LISTEN:" + std::to_string(port) + ",bind=127.0.0.1,reuseaddr,fork";
      std::string exec = "EXEC:/usr/libexec/tangd " + db;
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 2);
      ::execlp("socat", "socat", listen.c_str(), exec.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {  // wait until it accepts
      int s = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(uint16_t(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool ok = ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(s);
      if (ok) break;
      usleep(20000);
    }
    return port;
  }
  void StartCofferServer() {
    std::string ca = dir_ + "/ca";
    ASSERT_TRUE(pki::InitCa(ca).ok());
    pki::IssueOptions so;
    so.server = true;
    so.hosts = {"127.0.0.1"};
    ASSERT_TRUE(pki::Issue(ca, "keys", so).ok());
    ServerOptions o;
    o.data_dir = dir_ + "/data";
    o.port = 0;
    o.tls_cert = ca + "/servers/keys.crt";
    o.tls_key = ca + "/servers/keys.key";
    o.client_ca = ca + "/ca.crt";
    o.tang_host = "127.0.0.1";
    o.tang_port = 0;
    auto s = KeyServer::Create(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    ASSERT_TRUE(server_->Start().ok());
  }
  std::string dir_;
  pid_t socat_pid_ = -1;
  std::unique_ptr<KeyServer> server_;
};

TEST_F(TangInterop, CofferClientUnlocksAgainstRealTangd) {
  if (!Executable("/usr/libexec/tangd") || !Executable("/usr/libexec/tangd-keygen") || !InPath("socat")) {
    GTEST_SKIP() << "tangd, tangd-keygen or socat not installed (apt-get install tang socat)";
  }
  std::string db = dir_ + "/db";
  std::filesystem::create_directory(db);
  ASSERT_EQ(std::system(("/usr/libexec/tangd-keygen " + db).c_str()), 0);
  int port = StartTangd(db);
  ClientOptions c;
  c.urls = {"http://127.0.0.1:" + std::to_string(port)};
  c.deadline = std::chrono::milliseconds(5000);
  KeyServerClient client(c);
  auto adv = client.TangAdvertisement();
  ASSERT_TRUE(adv.ok()) << adv.status().ToString();
  auto bound = tang::Bind(c.urls[0], *adv);
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  auto key = client.TangRecover(bound->binding);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->Equals(bound->key));
  // a binding to a key tangd does not have is refused (404), not answered with garbage
  tang::TangBinding wrong = tang::TangBinding::FromJson(bound->binding.ToJson()).value();
  wrong.kid = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  EXPECT_EQ(client.TangRecover(wrong).status().code(), StatusCode::kNotFound);
}

TEST_F(TangInterop, KeysAreSharedWithTangdBothWays) {
  if (!Executable("/usr/libexec/tangd") || !InPath("socat")) GTEST_SKIP() << "tangd or socat not installed";
  // coffer makes the key directory; tangd serves it; coffer's client binds to coffer's advertisement
  // and recovers from tangd.
  auto store = tang::TangKeyStore::Open(dir_ + "/db");
  ASSERT_TRUE(store.ok());
  auto bound = tang::Bind("x", *(*store)->Advertisement());
  ASSERT_TRUE(bound.ok());
  int port = StartTangd(dir_ + "/db");
  ClientOptions c;
  c.urls = {"http://127.0.0.1:" + std::to_string(port)};
  KeyServerClient client(c);
  auto key = client.TangRecover(bound->binding);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_TRUE(key->Equals(bound->key));
}

TEST_F(TangInterop, ClevisDecryptUnlocksAgainstCofferServer) {
  if (!InPath("clevis") || !InPath("jose") || !InPath("curl")) GTEST_SKIP() << "clevis, jose or curl not installed";
  StartCofferServer();
  std::string url = "http://127.0.0.1:" + std::to_string(server_->tang_port());
  ASSERT_EQ(std::system(("curl -sf " + url + "/adv -o " + dir_ + "/adv.jws").c_str()), 0);
  std::string cfg = "{\"url\":\"" + url + "\",\"adv\":\"" + dir_ + "/adv.jws\"}";
  std::string enc = "printf 'label-interop-secret' | clevis encrypt tang '" + cfg + "' > " + dir_ + "/secret.jwe";
  ASSERT_EQ(std::system(enc.c_str()), 0);
  ASSERT_EQ(std::system(("clevis decrypt < " + dir_ + "/secret.jwe > " + dir_ + "/out 2>/dev/null").c_str()), 0);
  EXPECT_EQ(Slurp(dir_ + "/out"), "label-interop-secret");
  // The server learnt nothing: the secret appears in none of its files.
  for (auto& f : std::filesystem::recursive_directory_iterator(dir_ + "/data")) {
    if (!f.is_regular_file()) continue;
    EXPECT_EQ(Slurp(f.path()).find("label-interop-secret"), std::string::npos);
  }
  EXPECT_NE(Slurp(dir_ + "/data/audit.log").find("\"listener\":\"tang\""), std::string::npos);
  // After rotation the old JWE still decrypts (rotated keys keep answering /rec).
  ASSERT_TRUE(RotateTangKeys(dir_ + "/data").ok());
  ASSERT_EQ(std::system(("clevis decrypt < " + dir_ + "/secret.jwe > " + dir_ + "/out2 2>/dev/null").c_str()), 0);
  EXPECT_EQ(Slurp(dir_ + "/out2"), "label-interop-secret");
  // Without the server, nothing decrypts.
  server_->Stop();
  server_.reset();
  EXPECT_NE(std::system(("clevis decrypt < " + dir_ + "/secret.jwe > /dev/null 2>&1").c_str()), 0);
}

TEST_F(TangInterop, TangdKeygenDirectoryServedByCoffer) {
  if (!Executable("/usr/libexec/tangd-keygen")) GTEST_SKIP() << "tangd-keygen not installed";
  std::filesystem::create_directories(dir_ + "/data/tang");
  ASSERT_EQ(std::system(("/usr/libexec/tangd-keygen " + dir_ + "/data/tang").c_str()), 0);
  auto store = tang::TangKeyStore::Open(dir_ + "/data/tang");
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto vs = tang::VerifyAdvertisement(*(*store)->Advertisement());
  ASSERT_TRUE(vs.ok()) << vs.status().ToString();
  std::string kid = *jose::Thumbprint(vs->front());
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/data/tang/" + kid + ".jwk"));
}

}  // namespace
}  // namespace coffer::keyserver
