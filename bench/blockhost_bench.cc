// Block host load generator on loopback. In one run: coffer's host (original-protocol endpoints and
// protocol v1), nginx serving a static 272-byte file (the HTTP ceiling of this machine), and a
// Python imitation of the original disk host (bench/disk_host_imitation.py; one connection per
// request like the original). Single-record reads/s and writes/s over 1 and 16 keep-alive
// connections, sequential 4 MiB volume read/write through HttpBackingStore; prints the ratios.
// Data directory: $COFFER_BENCH_DIR or /tmp (fsync cost depends on it; say which in the results).
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "blockhost/test_host.h"
#include "coffer/remote/remote_store.h"

namespace {

using Clock = std::chrono::steady_clock;
using coffer::blockhost::testing::TestHost;

std::map<std::string, double> results;  // name -> ops/s or MB/s
constexpr double kSeconds = 2.0;

int FreePort() {
  httplib::Server s;
  int p = s.bind_to_any_port("127.0.0.1");
  return p;
}

bool WaitUp(int port, const std::string& path) {
  for (int i = 0; i < 100; ++i) {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(0, 100000);
    if (auto r = c.Get(path.c_str()); r && r->status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

// Runs `op(client, i)` on `connections` threads, each with its own keep-alive client, for kSeconds.
double Rate(int port, int connections, const std::function<bool(httplib::Client&, uint64_t)>& op) {
  std::atomic<uint64_t> total{0};
  std::atomic<bool> failed{false};
  auto end = Clock::now() + std::chrono::duration<double>(kSeconds);
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < connections; ++t) {
    threads.emplace_back([&, t] {
      httplib::Client c("127.0.0.1", port);
      c.set_keep_alive(true);
      c.set_tcp_nodelay(true);
      uint64_t n = 0;
      while (Clock::now() < end) {
        if (!op(c, (uint64_t(t) * 977 + n * 131) % 16384)) {
          failed = true;
          break;
        }
        ++n;
      }
      total += n;
    });
  }
  for (auto& th : threads) th.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  return failed ? -1 : double(total) / secs;
}

struct Hosts {
  std::unique_ptr<TestHost> coffer;
  pid_t nginx = -1, python = -1;
  int nginx_port = 0, python_port = 0;
  std::string dir;
  Hosts() {
    const char* base = std::getenv("COFFER_BENCH_DIR");
    dir = std::string(base ? base : "/tmp") + "/coffer-hostbench-" + std::to_string(getpid());
    std::filesystem::create_directories(dir + "/data");
    coffer::blockhost::ServerOptions o;
    o.data_dir = dir + "/data";
    o.compat_volume = "legacy";
    o.max_connections = 64;
    coffer = std::make_unique<TestHost>(o);
    // nginx with a temp config: one static 272-byte file, keep-alive, no logs.
    std::ofstream(dir + "/rec.bin", std::ios::binary) << std::string(272, 'x');
    nginx_port = FreePort();
    std::ofstream(dir + "/nginx.conf")
        << "daemon off; worker_processes 2; pid " << dir << "/nginx.pid; error_log " << dir << "/nginx.err;\n"
        << "events { worker_connections 1024; }\n"
        << "http { access_log off; keepalive_requests 1000000; client_body_temp_path " << dir << ";\n"
        << "  proxy_temp_path " << dir << "; fastcgi_temp_path " << dir << "; uwsgi_temp_path " << dir << "; scgi_temp_path " << dir << ";\n"
        << "  server { listen 127.0.0.1:" << nginx_port << "; root " << dir << "; } }\n";
    for (const char* bin : {"/usr/sbin/nginx", "/usr/bin/nginx"}) {
      if (access(bin, X_OK) != 0) continue;
      nginx = fork();
      if (nginx == 0) {
        execl(bin, bin, "-c", (dir + "/nginx.conf").c_str(), "-p", dir.c_str(), nullptr);
        _exit(127);
      }
      if (!WaitUp(nginx_port, "/rec.bin")) nginx = -1;
      break;
    }
    python_port = FreePort();
    python = fork();
    if (python == 0) {
      execlp("python3", "python3", COFFER_BENCH_SOURCE_DIR "/disk_host_imitation.py", std::to_string(python_port).c_str(), nullptr);
      _exit(127);
    }
    if (!WaitUp(python_port, "/ReadBlock?block=0")) python = -1;
  }
  ~Hosts() {
    for (pid_t p : {nginx, python}) {
      if (p > 0) {
        kill(p, SIGTERM);
        waitpid(p, nullptr, 0);
      }
    }
    coffer.reset();
    std::filesystem::remove_all(dir);
  }
};
Hosts* hosts = nullptr;

const std::string kRecord(272, 'r');
bool CompatRead(httplib::Client& c, uint64_t i) {
  auto r = c.Get(("/ReadBlock?block=" + std::to_string(i)).c_str());
  return r && r->status == 200 && r->body.size() == 272;
}
bool CompatWrite(httplib::Client& c, uint64_t i) {
  auto r = c.Post(("/WriteBlock?block=" + std::to_string(i)).c_str(), kRecord, "application/octet-stream");
  return r && r->status == 200;
}
bool StaticRead(httplib::Client& c, uint64_t) {
  auto r = c.Get("/rec.bin");
  return r && r->status == 200 && r->body.size() == 272;
}

void Report(benchmark::State& state, const std::string& name, double rate, const char* unit) {
  if (rate < 0) {
    state.SkipWithError("requests failed");
    return;
  }
  results[name] = rate;
  state.counters[unit] = rate;
}

void BM_CofferRead(benchmark::State& state) {
  for (auto _ : state) Report(state, "coffer_read_" + std::to_string(state.range(0)), Rate(hosts->coffer->port(), int(state.range(0)), CompatRead), "ops_per_s");
}
void BM_CofferWrite(benchmark::State& state) {
  for (auto _ : state) Report(state, "coffer_write_" + std::to_string(state.range(0)), Rate(hosts->coffer->port(), int(state.range(0)), CompatWrite), "ops_per_s");
}
void BM_NginxStatic(benchmark::State& state) {
  if (hosts->nginx < 0) return state.SkipWithError("nginx not installed (apt-get install nginx-light)");
  for (auto _ : state) Report(state, "nginx_" + std::to_string(state.range(0)), Rate(hosts->nginx_port, int(state.range(0)), StaticRead), "ops_per_s");
}
void BM_PythonRead(benchmark::State& state) {
  if (hosts->python < 0) return state.SkipWithError("python3 imitation host did not start");
  for (auto _ : state) Report(state, "python_read_" + std::to_string(state.range(0)), Rate(hosts->python_port, int(state.range(0)), CompatRead), "ops_per_s");
}
void BM_PythonWrite(benchmark::State& state) {
  if (hosts->python < 0) return state.SkipWithError("python3 imitation host did not start");
  for (auto _ : state) Report(state, "python_write_" + std::to_string(state.range(0)), Rate(hosts->python_port, int(state.range(0)), CompatWrite), "ops_per_s");
}

void BM_Sequential4MiB(benchmark::State& state) {
  std::string url = hosts->coffer->origin() + "/v1/volumes/seq" + std::to_string(state.iterations());
  auto store = coffer::remote::CreateHttpStore(url, 256, 16384, {});
  if (!store.ok()) return state.SkipWithError(store.status().ToString().c_str());
  std::vector<uint8_t> data(256 * 16384, 0x5a);
  for (auto _ : state) {
    auto t0 = Clock::now();
    for (uint64_t first = 0; first < 16384; first += 1024) {  // 16 atomic batches of 256 KiB
      std::vector<coffer::RecordWrite> w;
      for (uint64_t i = first; i < first + 1024; ++i) w.push_back({i, std::span<const uint8_t>(data).subspan(i * 256, 256)});
      if (!(*store)->WriteBatch(w).ok()) return state.SkipWithError("write failed");
    }
    double wsecs = std::chrono::duration<double>(Clock::now() - t0).count();
    auto fresh = coffer::remote::OpenHttpStore(url, {});  // cold: no read-ahead cache
    if (!fresh.ok()) return state.SkipWithError("reopen failed");
    t0 = Clock::now();
    if (!(*fresh)->Read(0, 16384, data).ok()) return state.SkipWithError("read failed");
    double rsecs = std::chrono::duration<double>(Clock::now() - t0).count();
    Report(state, "seq_write_MBps", 4.0 / 1.048576 / wsecs, "write_MB_per_s");
    Report(state, "seq_read_MBps", 4.0 / 1.048576 / rsecs, "read_MB_per_s");
    state.counters["read_4MiB_ms"] = rsecs * 1000;
    results["seq_read_ms"] = rsecs * 1000;
  }
}

BENCHMARK(BM_CofferRead)->Arg(1)->Arg(16)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_CofferWrite)->Arg(1)->Arg(16)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_NginxStatic)->Arg(1)->Arg(16)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_PythonRead)->Arg(1)->Arg(16)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_PythonWrite)->Arg(1)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);
BENCHMARK(BM_Sequential4MiB)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

void Ratio(const char* what, const std::string& a, const std::string& b, double goal) {
  if (!results.count(a) || !results.count(b) || results[b] <= 0) {
    std::printf("  %-44s n/a (missing %s)\n", what, results.count(a) ? b.c_str() : a.c_str());
    return;
  }
  double r = results[a] / results[b];
  std::printf("  %-44s %8.2f  (goal >= %g: %s)\n", what, r, goal, r >= goal ? "met" : "NOT met");
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  benchmark::Initialize(&argc, argv);
  Hosts h;
  if (!h.coffer->status().ok()) {
    std::fprintf(stderr, "coffer host did not start: %s\n", h.coffer->status().ToString().c_str());
    return 1;
  }
  hosts = &h;
  benchmark::RunSpecifiedBenchmarks();
  std::printf("\nRatios (same run, loopback, data dir %s):\n", h.dir.c_str());
  Ratio("coffer read 1 conn / python original-style", "coffer_read_1", "python_read_1", 30);
  Ratio("coffer read 16 conn / python original-style", "coffer_read_16", "python_read_16", 30);
  Ratio("coffer write 1 conn / python original-style", "coffer_write_1", "python_write_1", 30);
  Ratio("coffer read 1 conn / nginx static 272 B", "coffer_read_1", "nginx_1", 0.5);
  Ratio("coffer read 16 conn / nginx static 272 B", "coffer_read_16", "nginx_16", 0.5);
  if (results.count("seq_read_ms")) std::printf("  4 MiB sequential read: %.1f ms (goal: well under 1000 ms)\n", results["seq_read_ms"]);
  hosts = nullptr;
  benchmark::Shutdown();
  return 0;
}
