// End-to-end tests of `coffer serve blocks` as a process: startup checks, SIGTERM drain, and the
// crash test — kill -9 during a write storm from many clients, restart, and check that every
// acknowledged batch is there and no batch is partly there.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "coffer/base/random.h"
#include "coffer/blockhost/protocol.h"
#include "e2e_util.h"

namespace coffer::e2e {
namespace {

// Starts `coffer serve blocks ...` in the background; stderr goes to a file.
pid_t StartHost(const std::vector<std::string>& args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 2);
    dup2(fd, 1);
    std::vector<char*> argv = {const_cast<char*>(COFFER_BIN), const_cast<char*>("serve"), const_cast<char*>("blocks")};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(COFFER_BIN, argv.data());
    _exit(127);
  }
  return pid;
}

int WaitExit(pid_t pid) {
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST(HostProcess, RefusesPlaintextOffLoopbackAndMissingTls) {
  TempDir t;
  auto r = RunCoffer({"serve", "blocks", "--data", t / "d", "--listen", "0.0.0.0:1", "--insecure-plaintext"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("loopback"), std::string::npos) << r.err;
  r = RunCoffer({"serve", "blocks", "--data", t / "d", "--listen", "127.0.0.1:1"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--insecure-plaintext"), std::string::npos) << r.err;
  r = RunCoffer({"serve", "blocks", "--data", t / "d", "--listen", "127.0.0.1:1", "--insecure-plaintext", "--allow",
                 "10.0.0.0/99"});
  EXPECT_EQ(r.exit_code, 2);
  r = RunCoffer({"serve", "blocks", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--compat-disk-host"), std::string::npos);
  EXPECT_NE(r.out.find("Exit status"), std::string::npos);
}

TEST(HostProcess, SigtermDrainsAndExitsZero) {
  TempDir t;
  int port = FreePort();
  pid_t pid = StartHost({"--data", t / "d", "--listen", "127.0.0.1:" + std::to_string(port), "--insecure-plaintext"},
                        t / "log");
  ASSERT_TRUE(WaitForHttp(port));
  kill(pid, SIGTERM);
  EXPECT_EQ(WaitExit(pid), 0) << ReadFile(t / "log");
  EXPECT_NE(ReadFile(t / "log").find("stopped"), std::string::npos);
}

// Record content for (client, sequence): all bytes of a batch's records carry the sequence.
std::string Record(int client, uint64_t seq, int slot) {
  std::string r(272, '\0');
  for (int i = 0; i < 8; ++i) r[i] = char(seq >> (8 * i));
  r[8] = char(client);
  r[9] = char(slot);
  for (size_t i = 10; i < r.size(); ++i) r[i] = char(seq * 131 + i);
  return r;
}
uint64_t SeqOf(const std::string& r) {
  uint64_t s = 0;
  for (int i = 7; i >= 0; --i) s = (s << 8) | uint8_t(r[i]);
  return s;
}

TEST(HostProcess, KillDashNineDuringWriteStormLosesNoAcknowledgedBatch) {
  TempDir t;
  int port = FreePort();
  std::vector<std::string> args = {"--data", t / "d", "--listen", "127.0.0.1:" + std::to_string(port),
                                   "--insecure-plaintext", "--access-log", "off"};
  pid_t pid = StartHost(args, t / "log");
  ASSERT_TRUE(WaitForHttp(port));
  constexpr int kClients = 8, kGroups = 16, kPerBatch = 4;
  std::vector<uint64_t> generation(kClients);
  for (int c = 0; c < kClients; ++c) {
    httplib::Client h("127.0.0.1", port);
    std::string v = "/v1/volumes/storm" + std::to_string(c);
    ASSERT_EQ(h.Put(v.c_str(), "{\"record_size\":272,\"record_count\":64}", "application/json")->status, 201);
    auto o = h.Post((v + "/open").c_str(), "", "application/json");
    generation[c] = nlohmann::json::parse(o->body)["generation"].get<uint64_t>();
  }
  // Per client and group: the highest acknowledged sequence, and the one in flight at the kill.
  std::mutex mu;
  std::vector<std::map<int, uint64_t>> acked(kClients), inflight(kClients);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> total{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client h("127.0.0.1", port);
      h.set_read_timeout(2);
      std::string path = "/v1/volumes/storm" + std::to_string(c) + "/batch";
      for (uint64_t seq = 1; !stop; ++seq) {
        int group = int(seq % kGroups);
        std::vector<std::string> recs;
        std::vector<RecordWrite> w;
        for (int k = 0; k < kPerBatch; ++k) recs.push_back(Record(c, seq, k));
        for (int k = 0; k < kPerBatch; ++k) w.push_back({uint64_t(group * kPerBatch + k), AsBytes(recs[k])});
        blockhost::BatchId id;
        FillRandom(id);
        Bytes body = blockhost::EncodeBatch(id, generation[c], 272, w);
        {
          std::lock_guard lock(mu);
          inflight[c][group] = seq;
        }
        auto r = h.Post(path.c_str(), std::string(AsStringView(body)), "application/octet-stream");
        if (!r) break;  // the host died
        if (r->status != 200) {
          ADD_FAILURE() << "batch refused: " << r->status << " " << r->body;
          break;
        }
        std::lock_guard lock(mu);
        acked[c][group] = seq;
        ++total;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  kill(pid, SIGKILL);
  WaitExit(pid);
  stop = true;
  for (auto& th : clients) th.join();
  ASSERT_GT(total.load(), uint64_t(kClients)) << "the storm acknowledged too few batches to mean anything";

  pid = StartHost(args, t / "log");
  ASSERT_TRUE(WaitForHttp(port));
  httplib::Client h("127.0.0.1", port);
  for (int c = 0; c < kClients; ++c) {
    auto r = h.Get(("/v1/volumes/storm" + std::to_string(c) + "/records?first=0&count=64").c_str());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200);
    for (int g = 0; g < kGroups; ++g) {
      uint64_t seq = SeqOf(r->body.substr(g * kPerBatch * 272, 272));
      for (int k = 0; k < kPerBatch; ++k) {
        std::string rec = r->body.substr((g * kPerBatch + k) * 272, 272);
        std::string want = seq == 0 ? std::string(272, '\0') : Record(c, seq, k);
        ASSERT_EQ(rec, want) << "client " << c << " group " << g << ": batch " << seq << " is partly there";
      }
      uint64_t a = acked[c].count(g) ? acked[c][g] : 0;
      uint64_t f = inflight[c].count(g) ? inflight[c][g] : 0;
      EXPECT_TRUE(seq == a || seq == f) << "client " << c << " group " << g << ": found batch " << seq
                                        << ", acknowledged " << a << ", in flight " << f;
    }
  }
  kill(pid, SIGTERM);
  EXPECT_EQ(WaitExit(pid), 0);
  std::cout << "storm: " << total.load() << " acknowledged batches before kill -9\n";
}

}  // namespace
}  // namespace coffer::e2e
