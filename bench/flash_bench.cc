// Flash encryption throughput: encrypt a 16 MiB image with each espsecure scheme (coffer's
// FlashCipher) beside OpenSSL's raw AES-256-ECB and AES-XTS measured in the same run, and print
// the ratios. Goals: XTS >= 0.5 of raw XTS; ESP32 scheme (key changes every 32 bytes) >= 0.3 of
// raw AES-256-ECB. Run: build/bench/coffer_flash_bench
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "coffer/base/random.h"
#include "coffer/flash/flash_cipher.h"

namespace {

using namespace coffer;
using namespace coffer::flash;

constexpr size_t kImage = 16 << 20;
constexpr size_t kChunk = 1 << 20;

Bytes& Image() {
  static Bytes b = RandomBytes(kImage);
  return b;
}

void RawEvp(benchmark::State& state, const EVP_CIPHER* cipher, size_t key_len, size_t call_len) {
  Bytes key = RandomBytes(key_len), iv(16, 0), out(kImage + 32);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  EVP_EncryptInit_ex(ctx, cipher, nullptr, key.data(), iv.data());
  EVP_CIPHER_CTX_set_padding(ctx, 0);
  for (auto _ : state) {
    for (size_t pos = 0; pos < kImage; pos += call_len) {
      int outl = 0;
      if (call_len != kImage) {
        PutLe64(iv.data(), pos);
        EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv.data());
      }
      EVP_EncryptUpdate(ctx, out.data() + pos, &outl, Image().data() + pos, int(call_len));
    }
    benchmark::DoNotOptimize(out.data());
  }
  EVP_CIPHER_CTX_free(ctx);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kImage));
}

void BM_RawAes256Ecb(benchmark::State& s) { RawEvp(s, EVP_aes_256_ecb(), 32, kImage); }
// Raw XTS in 4 KiB data units (a new tweak per unit, like a disk sector), the usual XTS ceiling.
void BM_RawAes128Xts(benchmark::State& s) { RawEvp(s, EVP_aes_128_xts(), 32, 4096); }
void BM_RawAes256Xts(benchmark::State& s) { RawEvp(s, EVP_aes_256_xts(), 64, 4096); }
// Raw XTS as one 16 MiB data unit (no per-unit re-init): the best case OpenSSL offers (information).
void BM_RawAes128XtsOneUnit(benchmark::State& s) { RawEvp(s, EVP_aes_128_xts(), 32, kImage); }

void Scheme(benchmark::State& state, flash::Scheme scheme, size_t key_len, CipherPath path = CipherPath::kAuto) {
  if (!CipherPathAvailable(path)) {
    state.SkipWithError("this CPU lacks the instructions of this path");
    return;
  }
  Bytes raw = RandomBytes(key_len);
  auto key = PrepareFlashKey(scheme, SecretBytes::CopyOf(raw));
  auto cipher = FlashCipher::Create(*key, 0xF, path);
  state.SetLabel(std::string(CipherPathName(cipher->path())));
  Bytes out(kImage);
  for (auto _ : state) {
    for (size_t pos = 0; pos < kImage; pos += kChunk) {
      Status st = cipher->Encrypt(0x10000 + pos, ByteSpan(Image().data() + pos, kChunk), MutableByteSpan(out.data() + pos, kChunk));
      if (!st.ok()) state.SkipWithError(st.message().c_str());
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kImage));
}

void BM_Esp32Scheme(benchmark::State& s) { Scheme(s, Scheme::kEsp32, 32); }
void BM_Xts128Scheme(benchmark::State& s) { Scheme(s, Scheme::kXts, 32); }
void BM_Xts256Scheme(benchmark::State& s) { Scheme(s, Scheme::kXts, 64); }
// The slower paths, for CPUs without VAES / AES-NI (information; the goals apply to kAuto).
void BM_Esp32SchemeAesNi(benchmark::State& s) { Scheme(s, Scheme::kEsp32, 32, CipherPath::kAesNi); }
void BM_Esp32SchemeGeneric(benchmark::State& s) { Scheme(s, Scheme::kEsp32, 32, CipherPath::kGeneric); }
void BM_Xts128SchemeGeneric(benchmark::State& s) { Scheme(s, Scheme::kXts, 32, CipherPath::kGeneric); }

BENCHMARK(BM_RawAes256Ecb)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_Esp32Scheme)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_RawAes128Xts)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_Xts128Scheme)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_RawAes256Xts)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_Xts256Scheme)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_RawAes128XtsOneUnit)->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_Esp32SchemeAesNi)->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_Esp32SchemeGeneric)->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_Xts128SchemeGeneric)->Unit(benchmark::kMillisecond)->MinTime(0.5);

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs) {
      auto it = r.counters.find("bytes_per_second");
      if (it != r.counters.end()) mbps[r.benchmark_name()] = double(it->second) / 1e6;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> mbps;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  RatioReporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  auto ratio = [&](const char* name, const char* mine, const char* raw, double goal) {
    if (!rep.mbps.count(mine) || !rep.mbps.count(raw)) return;
    double r = rep.mbps[mine] / rep.mbps[raw];
    if (goal <= 0) {
      std::printf("%-34s %8.0f MB/s vs raw %8.0f MB/s  ratio %.2f\n", name, rep.mbps[mine], rep.mbps[raw], r);
      return;
    }
    std::printf("%-34s %8.0f MB/s vs raw %8.0f MB/s  ratio %.2f (goal >= %.1f) %s\n", name, rep.mbps[mine], rep.mbps[raw], r,
                goal, r >= goal ? "MET" : "MISSED");
  };
  std::printf("\n16 MiB image, 1 MiB calls:\n");
  ratio("ESP32 scheme / AES-256-ECB", "BM_Esp32Scheme/min_time:1.000", "BM_RawAes256Ecb/min_time:1.000", 0.3);
  ratio("XTS-AES-128 scheme / AES-128-XTS", "BM_Xts128Scheme/min_time:1.000", "BM_RawAes128Xts/min_time:1.000", 0.5);
  ratio("XTS-AES-256 scheme / AES-256-XTS", "BM_Xts256Scheme/min_time:1.000", "BM_RawAes256Xts/min_time:1.000", 0.5);
  std::printf("for information (no goal):\n");
  ratio("XTS-AES-128 scheme / one-unit XTS", "BM_Xts128Scheme/min_time:1.000", "BM_RawAes128XtsOneUnit/min_time:0.500", 0.0);
  ratio("ESP32 aes-ni path / AES-256-ECB", "BM_Esp32SchemeAesNi/min_time:0.500", "BM_RawAes256Ecb/min_time:1.000", 0.0);
  ratio("ESP32 generic path / AES-256-ECB", "BM_Esp32SchemeGeneric/min_time:0.500", "BM_RawAes256Ecb/min_time:1.000", 0.0);
  ratio("XTS-128 generic path / AES-128-XTS", "BM_Xts128SchemeGeneric/min_time:0.500", "BM_RawAes128Xts/min_time:1.000", 0.0);
  benchmark::Shutdown();
  return 0;
}
