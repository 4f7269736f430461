// Folder encryption throughput: coffer's rclone-crypt implementation vs rclone itself (`rclone
// copy` into and out of a crypt remote over a local folder), measured in the same run on the same
// data: one 256 MiB file and a tree of 2000 small files (1-16 KiB). Prints MiB/s for each and the
// coffer/rclone ratio (goal >= 2). rclone missing: coffer figures only, with a note.
// Data lives under $COFFER_BENCH_DIR (default /tmp); sizes via COFFER_BENCH_BIG_MIB / _SMALL_FILES.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "coffer/base/random.h"
#include "coffer/rclone/config.h"
#include "coffer/rclone/tree.h"

namespace {
namespace fs = std::filesystem;
using namespace coffer;

const char* kPassword = "benchmark password";
std::string g_root;
size_t g_big_mib = 256, g_small_files = 2000;
uint64_t g_big_bytes = 0, g_small_bytes = 0;
std::map<std::string, double> g_best;  // name -> best seconds
std::map<std::string, std::string> g_enc_dir;  // "coffer big" -> the encrypted folder decrypt reads
int g_serial = 0;

// The output folder of one run. Small trees get a fresh folder per run, removed only at the end:
// creating 2000 files right after deleting 2000 makes ext4 scan past "recently deleted" inodes
// (find_inode_bit/recently_deleted dominated the first profiles), which measures the filesystem.
std::string OutDir(const std::string& base, const std::string& set) {
  if (set == "small") return base + "_" + std::to_string(++g_serial);
  fs::remove_all(base);
  return base;
}

int Sh(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
  pid_t pid = fork();
  if (pid == 0) {
    for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

bool HaveRclone() { return Sh({"rclone", "version"}) == 0; }

void Prepare() {
  const char* d = std::getenv("COFFER_BENCH_DIR");
  g_root = std::string(d ? d : "/tmp") + "/coffer-crypt-bench";
  if (const char* m = std::getenv("COFFER_BENCH_BIG_MIB")) g_big_mib = std::strtoul(m, nullptr, 10);
  if (const char* n = std::getenv("COFFER_BENCH_SMALL_FILES")) g_small_files = std::strtoul(n, nullptr, 10);
  fs::remove_all(g_root);
  fs::create_directories(g_root + "/big");
  Bytes chunk = RandomBytes(1 << 20);
  {
    std::ofstream f(g_root + "/big/file.bin", std::ios::binary);
    for (size_t i = 0; i < g_big_mib; ++i) {
      chunk[0] = uint8_t(i);
      f.write(reinterpret_cast<const char*>(chunk.data()), std::streamsize(chunk.size()));
    }
  }
  g_big_bytes = uint64_t(g_big_mib) << 20;
  for (size_t i = 0; i < g_small_files; ++i) {
    std::string dir = g_root + "/small/d" + std::to_string(i % 40);
    fs::create_directories(dir);
    size_t n = 1024 + RandomBelow(15 * 1024);
    std::ofstream f(dir + "/f" + std::to_string(i) + ".dat", std::ios::binary);
    f.write(reinterpret_cast<const char*>(chunk.data() + (i % 1000)), std::streamsize(n));
    g_small_bytes += n;
  }
}

void Record(const std::string& name, double secs) {
  auto it = g_best.find(name);
  if (it == g_best.end() || secs < it->second) g_best[name] = secs;
}

void CofferRun(benchmark::State& state, const std::string& set, bool encrypt) {
  uint64_t bytes = set == "big" ? g_big_bytes : g_small_bytes;
  for (auto _ : state) {
    std::string src = g_root + "/" + set;
    std::string enc = encrypt ? OutDir(g_root + "/c_enc_" + set, set) : g_enc_dir["coffer " + set];
    std::string out = encrypt ? "" : OutDir(g_root + "/c_dec_" + set, set);
    if (encrypt) g_enc_dir["coffer " + set] = enc;
    if (!encrypt && (enc.empty() || !fs::exists(enc))) state.SkipWithError("run encrypt first");
    Sh({"sync"});
    auto t0 = std::chrono::steady_clock::now();
    auto keys = rclone::DeriveKeys(kPassword, "");  // included: rclone derives its keys too
    rclone::NameCipher names(*keys, rclone::NameOptions{});
    rclone::FileCipher files(*keys);
    rclone::TreeOptions opt;
    opt.threads = int(std::max(1u, std::thread::hardware_concurrency()));
    auto r = encrypt ? rclone::EncryptTree(names, files, src, enc, opt) : rclone::DecryptTree(names, files, enc, out, opt);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.errors.empty()) state.SkipWithError(r.status().message().c_str());
    state.SetIterationTime(secs);
    Record(std::string("coffer ") + (encrypt ? "encrypt " : "decrypt ") + set, secs);
  }
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
}

void RcloneRun(benchmark::State& state, const std::string& set, bool encrypt) {
  uint64_t bytes = set == "big" ? g_big_bytes : g_small_bytes;
  if (!HaveRclone()) {
    state.SkipWithError("rclone is not installed");
    for (auto _ : state) {}
    return;
  }
  for (auto _ : state) {
    std::string enc = encrypt ? OutDir(g_root + "/r_enc_" + set, set) : g_enc_dir["rclone " + set];
    std::string out = encrypt ? "" : OutDir(g_root + "/r_dec_" + set, set);
    if (encrypt) g_enc_dir["rclone " + set] = enc;
    std::map<std::string, std::string> env = {{"RCLONE_CONFIG_X_TYPE", "crypt"},
                                              {"RCLONE_CONFIG_X_REMOTE", enc},
                                              {"RCLONE_CONFIG_X_PASSWORD", rclone::Obscure(kPassword)}};
    Sh({"sync"});
    auto t0 = std::chrono::steady_clock::now();
    int rc = encrypt ? Sh({"rclone", "--config", "/dev/null", "copy", g_root + "/" + set, "X:"}, env)
                     : Sh({"rclone", "--config", "/dev/null", "copy", "X:", out}, env);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rc != 0) state.SkipWithError("rclone failed");
    state.SetIterationTime(secs);
    Record(std::string("rclone ") + (encrypt ? "encrypt " : "decrypt ") + set, secs);
  }
  state.SetBytesProcessed(int64_t(bytes) * state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  Prepare();
  for (std::string set : {"big", "small"}) {
    for (bool enc : {true, false}) {
      std::string what = std::string(enc ? "Encrypt" : "Decrypt") + (set == "big" ? "BigFile" : "SmallTree");
      benchmark::RegisterBenchmark(("Coffer" + what).c_str(), [set, enc](benchmark::State& s) { CofferRun(s, set, enc); })
          ->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("Rclone" + what).c_str(), [set, enc](benchmark::State& s) { RcloneRun(s, set, enc); })
          ->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::printf("\n%-24s %12s %12s %8s\n", "case (best of 3)", "coffer MiB/s", "rclone MiB/s", "ratio");
  for (std::string set : {"big", "small"})
    for (std::string op : {"encrypt", "decrypt"}) {
      double bytes = double(set == "big" ? g_big_bytes : g_small_bytes) / (1 << 20);
      auto c = g_best.find("coffer " + op + " " + set), r = g_best.find("rclone " + op + " " + set);
      double cm = c == g_best.end() ? 0 : bytes / c->second, rm = r == g_best.end() ? 0 : bytes / r->second;
      std::printf("%-24s %12.1f %12.1f %8s\n", (op + " " + (set == "big" ? std::to_string(g_big_mib) + " MiB file" : std::to_string(g_small_files) + " files")).c_str(),
                  cm, rm, rm > 0 ? (std::to_string(cm / rm).substr(0, 4) + "x").c_str() : "n/a");
    }
  fs::remove_all(g_root);
  return 0;
}
