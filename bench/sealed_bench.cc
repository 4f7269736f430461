// Sealed volume throughput vs the raw AEAD it is built on, measured in the same run.
//   build/bench/coffer_sealed_bench [--benchmark_filter=...]
// For each cipher suite and sector size (256 B, 4 KiB) on a memory backing store:
//   Raw/<alg>/<size>          OpenSSL EVP AEAD seal of one buffer of that size (the ceiling)
//   SealedWrite/<suite>/<S>   erase+prog every sector of a 4 MiB volume, then Sync (sealing, which
//                             whole-sector progs do at once; tree hashing, header MAC, store batch
//                             and anchor at the commit)
//   SealedRead/<suite>/<S>    read every sector (verified against the tree, decrypted)
// The `ratio` counter is sealed bytes/s divided by the raw AEAD bytes/s of the same algorithm and
// size, measured in this process just before (both in process CPU time; Google Benchmark prints the
// ratio with a "/s" suffix because it is a rate counter). Goal: >= 0.8 at 4 KiB, >= 0.5 at 256 B.
#include <benchmark/benchmark.h>

#include <time.h>

#include <algorithm>
#include <map>

#include "coffer/base/random.h"
#include "coffer/blockdev/memory_backing_store.h"
#include "coffer/crypt/aead.h"
#include "coffer/keys/anchor.h"
#include "coffer/volume/sealed_volume.h"

namespace coffer {
namespace {

// The raw ceiling: OpenSSL EVP ChaCha20-Poly1305 (IETF, 12-byte nonce) or AES-256-GCM, as OpenSSL
// users get it, sealing `size`-byte messages in place.
double RawBytesPerSecond(AeadAlgorithm alg, size_t size) {
  static std::map<std::pair<int, size_t>, double> cache;
  auto key = std::make_pair(int(alg), size);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  auto aead = NewAead(alg, SecretBytes::Random(32)).value();
  Bytes buf(size + 16), nonce(aead->nonce_size()), ad(32);
  // Process CPU time, like Google Benchmark's default rates, so the ratio is not skewed by a busy machine.
  auto cpu = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
  };
  // The best of five 0.1 s slices: a slice slowed by the VM's neighbours would lower the ceiling and
  // flatter every ratio measured against it.
  double best = 0;
  for (int slice = 0; slice < 5; ++slice) {
    double start = cpu();
    uint64_t bytes = 0;
    double secs = 0;
    do {
      for (int i = 0; i < 256; ++i) {
        nonce[0]++;
        (void)aead->Seal(nonce, ad, {buf.data(), size}, buf);
        bytes += size;
      }
      secs = cpu() - start;
    } while (secs < 0.1);
    best = std::max(best, double(bytes) / secs);
  }
  return cache[key] = best;
}

AeadAlgorithm RawFor(CipherSuite suite) {
  return suite == CipherSuite::kAes256Gcm ? AeadAlgorithm::kAes256Gcm : AeadAlgorithm::kChaCha20Poly1305;
}

class FixedKey : public UnlockMethod {
 public:
  KeySlotType slot_type() const override { return KeySlotType::kKeyFile; }
  std::string Describe() const override { return "bench key"; }
  Result<Bytes> NewSlotParams() override { return Bytes{}; }
  Result<SecretBytes> UnlockSecret(ByteSpan) override { return SecretBytes(32); }
  std::string DefaultAnchorPath() const override { return ""; }
};

std::unique_ptr<SealedVolume> MakeVolume(CipherSuite suite, uint32_t sector) {
  const uint64_t size = 4 << 20;
  uint32_t record = sector + 48;
  uint64_t records = size / sector + 2 * (size / sector / 4 + 64) + 64;  // sectors + tree + header, generous
  FixedKey key;
  auto v = SealedVolume::Create(std::make_unique<MemoryBackingStore>(record, records), key,
                                std::make_shared<MemoryAnchor>(),
                                {.size_bytes = size, .sector_size = sector, .suite = suite},
                                // The smallest plaintext cache (16 sectors): reads measure the
                                // verify-and-decrypt path, not cache hits.
                                {.plain_cache_bytes = 0});
  if (!v.ok()) abort();
  return std::move(v).value();
}

void BM_Raw(benchmark::State& state, AeadAlgorithm alg) {
  size_t size = size_t(state.range(0));
  auto aead = NewAead(alg, SecretBytes::Random(32)).value();
  Bytes buf(size + 16), nonce(aead->nonce_size()), ad(32);
  for (auto _ : state) {
    nonce[0]++;
    benchmark::DoNotOptimize(aead->Seal(nonce, ad, {buf.data(), size}, buf));
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(size));
}

void BM_SealedWrite(benchmark::State& state, CipherSuite suite) {
  uint32_t sector = uint32_t(state.range(0));
  double raw = RawBytesPerSecond(RawFor(suite), sector);
  auto v = MakeVolume(suite, sector);
  uint32_t blocks = v->geometry().block_count;
  Bytes data = RandomBytes(sector);
  for (auto _ : state) {
    for (uint32_t b = 0; b < blocks; ++b) {
      data[0] = uint8_t(b);
      if (!v->Erase(b).ok() || !v->Prog(b, 0, data).ok()) state.SkipWithError("prog failed");
    }
    if (!v->Sync().ok()) state.SkipWithError("sync failed");
  }
  double bytes = double(state.iterations()) * blocks * sector;
  state.SetBytesProcessed(int64_t(bytes));
  state.counters["raw_MBps"] = raw / 1e6;
  state.counters["ratio"] = benchmark::Counter(bytes / raw, benchmark::Counter::kIsRate);
}

void BM_SealedRead(benchmark::State& state, CipherSuite suite) {
  uint32_t sector = uint32_t(state.range(0));
  double raw = RawBytesPerSecond(RawFor(suite), sector);
  auto v = MakeVolume(suite, sector);
  uint32_t blocks = v->geometry().block_count;
  Bytes data = RandomBytes(sector);
  for (uint32_t b = 0; b < blocks; ++b) (void)v->Prog(b, 0, data);
  if (!v->Sync().ok()) abort();
  Bytes out(sector);
  for (auto _ : state) {
    for (uint32_t b = 0; b < blocks; ++b) {
      if (!v->Read(b, 0, out).ok()) state.SkipWithError("read failed");
    }
  }
  double bytes = double(state.iterations()) * blocks * sector;
  state.SetBytesProcessed(int64_t(bytes));
  state.counters["raw_MBps"] = raw / 1e6;
  state.counters["ratio"] = benchmark::Counter(bytes / raw, benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_Raw, chacha20_poly1305, AeadAlgorithm::kChaCha20Poly1305)->Arg(256)->Arg(4096);
BENCHMARK_CAPTURE(BM_Raw, xchacha20_poly1305, AeadAlgorithm::kXChaCha20Poly1305)->Arg(256)->Arg(4096);
BENCHMARK_CAPTURE(BM_Raw, aes_256_gcm, AeadAlgorithm::kAes256Gcm)->Arg(256)->Arg(4096);
BENCHMARK_CAPTURE(BM_SealedWrite, xchacha20_poly1305, CipherSuite::kXChaCha20Poly1305)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SealedRead, xchacha20_poly1305, CipherSuite::kXChaCha20Poly1305)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SealedWrite, aes_256_gcm, CipherSuite::kAes256Gcm)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_SealedRead, aes_256_gcm, CipherSuite::kAes256Gcm)->Arg(256)->Arg(4096)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace coffer

BENCHMARK_MAIN();
