// Fleet unlock throughput: escrow unlocks per second from coffer's key server over a new mTLS
// connection each time and over one reused connection, beside nginx's mTLS handshake rate (same
// certificates, same client code, one request per new connection) measured in the same run: the ceiling.
// Prints "ratio new-connection unlocks / nginx handshakes" (goal >= 0.7). Skips nginx with a reason if
// it is not installed.
#include <benchmark/benchmark.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "coffer/keyserver/client.h"
#include "coffer/keyserver/server.h"
#include "coffer/net/net.h"
#include "coffer/pki/pki.h"

using namespace coffer;

namespace {

struct Env {
  std::string dir, ca;
  std::unique_ptr<keyserver::KeyServer> server;
  pid_t nginx = -1;
  int nginx_port = 0;
  std::string nginx_skip;
};

Env& Get() {
  static Env* env = [] {
    auto* e = new Env;
    char tmpl[] = "/tmp/coffer-unlock-bench-XXXXXX";
    e->dir = mkdtemp(tmpl);
    e->ca = e->dir + "/ca";
    (void)pki::InitCa(e->ca);
    pki::IssueOptions so;
    so.server = true;
    so.hosts = {"127.0.0.1"};
    (void)pki::Issue(e->ca, "keys", so);
    (void)pki::Issue(e->ca, "dev");
    (void)keyserver::EnrollDevice(e->dir + "/data", "dev", "default", "bench-secret", false);
    keyserver::ServerOptions o;
    o.data_dir = e->dir + "/data";
    o.port = 0;
    o.tls_cert = e->ca + "/servers/keys.crt";
    o.tls_key = e->ca + "/servers/keys.key";
    o.client_ca = e->ca + "/ca.crt";
    o.crl = e->ca + "/crl.pem";
    o.rate_per_second = 1e9;
    o.burst = 1e9;
    e->server = std::move(keyserver::KeyServer::Create(o).value());
    (void)e->server->Start();
    // nginx with the same certificates, client verification on, one 200 per request.
    const char* nginx_bin = "/usr/sbin/nginx";
    if (::access(nginx_bin, X_OK) != 0) {
      e->nginx_skip = "nginx not installed (apt-get install nginx-light)";
    } else {
      e->nginx_port = net::FreeLoopbackPort();
      std::filesystem::create_directories(e->dir + "/nginx/logs");
      std::ofstream(e->dir + "/nginx/nginx.conf")
          << "worker_processes 2; daemon off; pid " << e->dir << "/nginx/nginx.pid; error_log " << e->dir
          << "/nginx/logs/error.log;\nevents { worker_connections 1024; }\nhttp { access_log off;\n"
          << " server { listen 127.0.0.1:" << e->nginx_port << " ssl; ssl_certificate " << o.tls_cert
          << "; ssl_certificate_key " << o.tls_key << "; ssl_client_certificate " << o.client_ca
          << "; ssl_verify_client on; ssl_protocols TLSv1.2 TLSv1.3;\n"
          << "  location / { return 200 '{\"secret\":\"bench-secret\"}'; } } }\n";
      e->nginx = fork();
      if (e->nginx == 0) {
        execl(nginx_bin, nginx_bin, "-p", (e->dir + "/nginx").c_str(), "-c", (e->dir + "/nginx/nginx.conf").c_str(),
              nullptr);
        _exit(127);
      }
      usleep(500000);
    }
    std::atexit([] {
      Env& x = *env;
      if (x.nginx > 0) {
        kill(x.nginx, SIGQUIT);
        waitpid(x.nginx, nullptr, 0);
      }
      x.server->Stop();
      std::filesystem::remove_all(x.dir);
    });
    return e;
  }();
  return *env;
}

keyserver::ClientOptions ClientOpts(int port) {
  Env& e = Get();
  keyserver::ClientOptions c;
  c.urls = {"https://127.0.0.1:" + std::to_string(port)};
  c.cert = e.ca + "/devices/dev.crt";
  c.key = e.ca + "/devices/dev.key";
  c.ca = e.ca + "/ca.crt";
  c.deadline = std::chrono::milliseconds(5000);
  return c;
}

std::map<std::string, double> g_rates;

void Record(benchmark::State& state, const std::string& name, std::chrono::steady_clock::time_point t0) {
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double rate = double(state.iterations()) / s;
  state.counters["per_second"] = rate;
  g_rates[name] = rate;
}

void BM_UnlockNewConnection(benchmark::State& state) {
  int port = Get().server->port();
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    keyserver::KeyServerClient c(ClientOpts(port));  // fresh TLS handshake each time
    auto s = c.GetSecret("default");
    if (!s.ok()) state.SkipWithError(s.status().ToString().c_str());
  }
  Record(state, "coffer_new", t0);
}
BENCHMARK(BM_UnlockNewConnection)->MinTime(3.0)->UseRealTime();

void BM_UnlockReusedConnection(benchmark::State& state) {
  keyserver::KeyServerClient c(ClientOpts(Get().server->port()));
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto s = c.GetSecret("default");
    if (!s.ok()) state.SkipWithError(s.status().ToString().c_str());
  }
  Record(state, "coffer_reused", t0);
}
BENCHMARK(BM_UnlockReusedConnection)->MinTime(3.0)->UseRealTime();

void BM_NginxMtlsHandshake(benchmark::State& state) {
  Env& e = Get();
  if (!e.nginx_skip.empty()) {
    state.SkipWithError(e.nginx_skip.c_str());
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    keyserver::KeyServerClient c(ClientOpts(e.nginx_port));  // same client, new handshake each time
    auto s = c.GetSecret("default");
    if (!s.ok()) state.SkipWithError(s.status().ToString().c_str());
  }
  Record(state, "nginx_new", t0);
}
BENCHMARK(BM_NginxMtlsHandshake)->MinTime(3.0)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  if (g_rates.count("coffer_new") && g_rates.count("nginx_new") && g_rates["nginx_new"] > 0) {
    std::printf("unlocks/s new mTLS connection: %.0f, reused connection: %.0f, nginx mTLS handshakes/s: %.0f\n",
                g_rates["coffer_new"], g_rates["coffer_reused"], g_rates["nginx_new"]);
    std::printf("ratio new-connection unlocks / nginx handshakes = %.2f (goal >= 0.70)\n",
                g_rates["coffer_new"] / g_rates["nginx_new"]);
  }
  benchmark::Shutdown();
  return 0;
}
