// Object store throughput: set/get of 64 B, 4 KiB and 1 MiB objects through the daemon over both
// transports (the socket protocol and the shared-memory ring), beside the same operations
// in-process on the same store, in one run. Prints daemon/in-process ratios at the end (goal:
// >= 0.5 for 4 KiB).
//
// The store: a sealed volume when COFFER_BENCH_VOLUME and COFFER_BENCH_KEY are set (make one with
// `coffer key new K && coffer volume create file:V --key K --size 67108864`), else littlefs on a
// RAM device (printed in the header). The daemon side is the real ObjectServer (the code behind
// `coffer objectd`) serving a Unix socket in this process; clients are real socket connections.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "coffer/blockdev/memory_block_device.h"
#include "coffer/objectd/server.h"
#include "coffer/objects/local_store.h"
#include "coffer/objects/protocol.h"

namespace {

using namespace coffer;
using namespace coffer::objects;

struct World {
  std::unique_ptr<LocalStore> local;
  std::unique_ptr<objectd::ObjectServer> server;
  std::unique_ptr<ObjectConnection> in_process, socket, shm;
  std::string socket_path, what;
};

World& GetWorld() {
  static World* w = [] {
    auto* w = new World;
    const char* vol = std::getenv("COFFER_BENCH_VOLUME");
    const char* key = std::getenv("COFFER_BENCH_KEY");
    Result<std::unique_ptr<LocalStore>> local = Unsupported("unset");
    if (vol && key) {
      local = OpenSealedStore(vol, key);
      w->what = std::string("sealed volume ") + vol;
    } else {
      local = OpenStoreOnDevice(std::make_unique<MemoryBlockDevice>(BlockGeometry{16, 16, 4096, 16384, 0xff}));
      w->what = "littlefs on a 64 MiB RAM device (set COFFER_BENCH_VOLUME/COFFER_BENCH_KEY for a sealed volume)";
    }
    if (!local.ok()) {
      std::fprintf(stderr, "object bench: %s\n", local.status().ToString().c_str());
      std::exit(1);
    }
    w->local = std::move(local).value();
    w->socket_path = "/tmp/coffer-object-bench-" + std::to_string(getpid()) + ".sock";
    objectd::ServerOptions so;
    so.socket_path = w->socket_path;
    w->server = std::move(objectd::ObjectServer::Start(w->local->store(), so)).value();
    w->in_process = NewLocalConnection(w->local->store(), getuid());
    w->socket = std::move(ConnectObjectDaemon(w->socket_path)).value();
    w->shm = std::move(ConnectObjectDaemon(w->socket_path, ConnectOptions{.shared_memory = true})).value();
    if (std::string(w->shm->transport()) != "shared-memory") {
      std::fprintf(stderr, "object bench: the daemon did not set up the shared-memory ring\n");
      std::exit(1);
    }
    std::printf("object store bench on %s\n", w->what.c_str());
    return w;
  }();
  return *w;
}

std::mutex g_mu;
std::map<std::string, double> g_rates;  // "set/4096/socket" -> ops/s

void Record(const std::string& key, double ops, double seconds) {
  std::lock_guard lock(g_mu);
  if (seconds > 0) g_rates[key] = ops / seconds;
}

constexpr uint32_t kRW = kAccessRead | kAccessWrite | kAccessWriteMeta | kOverwrite;

// The whole-object operations (one round trip through the daemon for objects up to 1 MiB).
void Set(ObjectConnection& c, const std::string& id, const Bytes& data) {
  if (!c.WriteObject("", id, kRW, {}, data).ok()) std::abort();
}

void Get(ObjectConnection& c, const std::string& id, Bytes& out) {
  auto got = c.ReadObject("", id, 0, out.size());
  if (!got.ok() || got->data.size() != out.size()) std::abort();
  out = std::move(got->data);
}

void BM_Object(benchmark::State& state, bool set, int transport) {
  World& w = GetWorld();
  ObjectConnection& c = transport == 0 ? *w.in_process : transport == 1 ? *w.socket : *w.shm;
  size_t size = size_t(state.range(0));
  Bytes data(size, 0x5a);
  std::string id = std::string(set ? "set-" : "get-") + std::to_string(size);
  if (!set) Set(c, id, data);
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    if (set) {
      data[0]++;
      Set(c, id, data);
    } else {
      Get(c, id, data);
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(size));
  Record(std::string(set ? "set/" : "get/") + std::to_string(size) + "/" + c.transport(), double(state.iterations()),
         secs);
}

BENCHMARK_CAPTURE(BM_Object, set_in_process, true, 0)->Arg(64)->Arg(4096)->Arg(1 << 20)->UseRealTime();
BENCHMARK_CAPTURE(BM_Object, set_socket, true, 1)->Arg(64)->Arg(4096)->Arg(1 << 20)->UseRealTime();
BENCHMARK_CAPTURE(BM_Object, set_shm, true, 2)->Arg(64)->Arg(4096)->Arg(1 << 20)->UseRealTime();
BENCHMARK_CAPTURE(BM_Object, get_in_process, false, 0)->Arg(64)->Arg(4096)->Arg(1 << 20)->UseRealTime();
BENCHMARK_CAPTURE(BM_Object, get_socket, false, 1)->Arg(64)->Arg(4096)->Arg(1 << 20)->UseRealTime();
BENCHMARK_CAPTURE(BM_Object, get_shm, false, 2)->Arg(64)->Arg(4096)->Arg(1 << 20)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  std::printf("\n%-4s %8s %13s %12s %12s %7s %7s\n", "op", "size", "in-process/s", "socket/s", "shm/s", "socket", "shm");
  for (const char* op : {"set", "get"}) {
    for (int size : {64, 4096, 1 << 20}) {
      std::string base = std::string(op) + "/" + std::to_string(size);
      auto in = g_rates.find(base + "/in-process");
      if (in == g_rates.end()) continue;
      auto rate = [&](const char* t) {
        auto it = g_rates.find(base + "/" + t);
        return it == g_rates.end() ? 0.0 : it->second;
      };
      double sock = rate("socket"), shm = rate("shared-memory");
      std::printf("%-4s %8d %13.0f %12.0f %12.0f %7.2f %7.2f%s\n", op, size, in->second, sock, shm, sock / in->second,
                  shm / in->second,
                  size == 4096 ? (std::max(sock, shm) / in->second >= 0.5 ? "  (goal >= 0.5: met)" : "  (goal >= 0.5: MISSED)")
                               : "");
    }
  }
  std::printf("(ratios: daemon / in-process for each transport)\n");
  GetWorld().server->Stop();
  benchmark::Shutdown();
  return 0;
}
