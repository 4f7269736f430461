// VolumeStore on a temp directory: geometry, fences, batch ids, and crash recovery through the
// journal built by hand from docs/format/blockhost_protocol.md (complete: replayed; torn: ignored).
#include "coffer/blockhost/volume_store.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "coffer/base/random.h"

namespace coffer::blockhost {
namespace {

class VolumeStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/coffer-vs-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Reopen();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Reopen() {
    store_.reset();
    auto s = VolumeStore::Open(dir_, {});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
  }
  BatchView Batch(std::vector<std::pair<uint64_t, Bytes>>& recs, uint64_t gen) {
    BatchView b;
    FillRandom(b.id);
    b.generation = gen;
    b.record_size = 16;
    for (auto& [i, d] : recs) b.writes.push_back({i, d});
    return b;
  }
  Bytes Read(uint64_t i) {
    Bytes out(16);
    EXPECT_TRUE(store_->Read("v", i, 1, out).ok());
    return out;
  }
  // A journal for `recs` on top of the volume's current header, as the docs describe it.
  Bytes Journal(std::vector<std::pair<uint64_t, Bytes>>& recs, uint64_t seq = 1) {
    std::ifstream in(dir_ + "/v.vol", std::ios::binary);
    Bytes header(4096);
    in.read(reinterpret_cast<char*>(header.data()), 4096);
    Bytes j = {'C', 'B', 'H', 'J'};
    AppendLe32(j, 2);
    AppendLe32(j, uint32_t(recs.size()));
    AppendLe32(j, 16);
    AppendLe64(j, seq);
    Append(j, header);
    for (auto& [i, d] : recs) {
      AppendLe64(j, i);
      Append(j, d);
    }
    uint8_t digest[32];
    unsigned int n = 0;
    EVP_Digest(j.data(), j.size(), digest, &n, EVP_sha256(), nullptr);
    j.insert(j.end(), digest, digest + 32);
    return j;
  }
  void WriteJournal(const Bytes& j) {
    std::ofstream out(dir_ + "/v.jnl", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(j.data()), std::streamsize(j.size()));
  }
  std::string dir_;
  std::unique_ptr<VolumeStore> store_;
};

TEST_F(VolumeStoreTest, CreateApplyReadAndPersist) {
  auto info = store_->Create("v", 16, 100, "cn:devA");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto gen = store_->OpenForWrite("v");
  ASSERT_TRUE(gen.ok());
  std::vector<std::pair<uint64_t, Bytes>> recs = {{3, Bytes(16, 3)}, {99, Bytes(16, 9)}};
  auto r = store_->ApplyBatch("v", Batch(recs, *gen), true);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  Reopen();
  EXPECT_EQ(Read(3), Bytes(16, 3));
  EXPECT_EQ(Read(99), Bytes(16, 9));
  EXPECT_EQ(Read(4), Bytes(16, 0));
  auto i2 = store_->Info("v");
  EXPECT_EQ(i2->owner, "cn:devA");
  EXPECT_EQ(i2->generation, *gen);
  EXPECT_EQ(store_->Create("v", 16, 100, "").status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Info("../etc").status().code(), StatusCode::kInvalidArgument);
}

TEST_F(VolumeStoreTest, FenceAndDuplicateBatches) {
  ASSERT_TRUE(store_->Create("v", 16, 10, "").ok());
  uint64_t g1 = *store_->OpenForWrite("v");
  uint64_t g2 = *store_->OpenForWrite("v");
  EXPECT_GT(g2, g1);
  std::vector<std::pair<uint64_t, Bytes>> recs = {{1, Bytes(16, 1)}};
  EXPECT_EQ(store_->ApplyBatch("v", Batch(recs, g1), true).status().code(), StatusCode::kFailedPrecondition);
  BatchView b = Batch(recs, g2);
  EXPECT_FALSE(store_->ApplyBatch("v", b, true)->duplicate);
  Reopen();  // batch ids are durable too
  EXPECT_TRUE(store_->ApplyBatch("v", b, true)->duplicate);
}

TEST_F(VolumeStoreTest, CompleteJournalIsReplayedTornJournalIgnored) {
  ASSERT_TRUE(store_->Create("v", 16, 10, "").ok());
  store_.reset();
  std::vector<std::pair<uint64_t, Bytes>> recs = {{2, Bytes(16, 0x22)}, {5, Bytes(16, 0x55)}};
  Bytes j = Journal(recs);
  Bytes torn(j.begin(), j.end() - 1);
  WriteJournal(torn);
  Reopen();
  EXPECT_EQ(Read(2), Bytes(16, 0)) << "a torn journal was replayed";
  store_.reset();
  Bytes flipped = j;
  flipped[j.size() - 40] ^= 1;
  WriteJournal(flipped);
  Reopen();
  EXPECT_EQ(Read(5), Bytes(16, 0)) << "a journal failing its digest was replayed";
  store_.reset();
  WriteJournal(j);
  Reopen();
  EXPECT_EQ(Read(2), Bytes(16, 0x22));
  EXPECT_EQ(Read(5), Bytes(16, 0x55));
  // After the replay the log starts over: zero-filled at its full size.
  std::ifstream in(dir_ + "/v.jnl", std::ios::binary);
  Bytes head(64);
  in.read(reinterpret_cast<char*>(head.data()), 64);
  EXPECT_EQ(head, Bytes(64, 0));
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/v.jnl"), size_t(1) << 20);
}

// The log is a chain: entries are replayed in order while each carries the previous sequence + 1;
// a torn entry, or an older entry left behind from before a wrap, ends the chain.
TEST_F(VolumeStoreTest, JournalChainReplaysInOrderAndStopsAtTornOrStaleEntry) {
  ASSERT_TRUE(store_->Create("v", 16, 10, "").ok());
  store_.reset();
  std::vector<std::pair<uint64_t, Bytes>> a = {{1, Bytes(16, 0xA1)}, {2, Bytes(16, 0xA2)}};
  std::vector<std::pair<uint64_t, Bytes>> b = {{2, Bytes(16, 0xB2)}};
  std::vector<std::pair<uint64_t, Bytes>> stale = {{3, Bytes(16, 0x33)}};
  Bytes log = Journal(a, 7);
  Append(log, Journal(b, 8));
  Bytes with_stale = log;
  Append(with_stale, Journal(stale, 4));  // an entry from an earlier lap: not part of the chain
  WriteJournal(with_stale);
  Reopen();
  EXPECT_EQ(Read(1), Bytes(16, 0xA1));
  EXPECT_EQ(Read(2), Bytes(16, 0xB2)) << "entries replayed out of order";
  EXPECT_EQ(Read(3), Bytes(16, 0)) << "a stale entry was replayed";
  // A torn third entry: the first two stay, the torn one is ignored.
  store_.reset();
  std::vector<std::pair<uint64_t, Bytes>> c = {{4, Bytes(16, 0xC4)}};
  Bytes torn_log = Journal(a, 1);
  Append(torn_log, Journal(c, 2));
  torn_log.resize(torn_log.size() - 5);
  WriteJournal(torn_log);
  Reopen();
  EXPECT_EQ(Read(4), Bytes(16, 0)) << "a torn entry was replayed";
  // Writes after reopening commit through the fresh log and survive another reopen.
  uint64_t gen = *store_->OpenForWrite("v");
  std::vector<std::pair<uint64_t, Bytes>> d = {{9, Bytes(16, 0xD9)}};
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(store_->ApplyBatch("v", Batch(d, gen), true).ok());  // wraps the log
  Reopen();
  EXPECT_EQ(Read(9), Bytes(16, 0xD9));
  EXPECT_EQ(Read(1), Bytes(16, 0xA1));
}

// Concurrent writers share log flushes (group commit): every batch is answered, applied once, in the
// volume after a reopen; a stale-generation batch in the same storm is refused alone.
TEST_F(VolumeStoreTest, ConcurrentBatchesAreGroupCommittedAndAllDurable) {
  ASSERT_TRUE(store_->Create("v", 16, 1000, "").ok());
  uint64_t gen = *store_->OpenForWrite("v");
  constexpr int kThreads = 12, kBatches = 40;
  std::atomic<int> ok{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBatches; ++i) {
        uint64_t index = uint64_t(t) * kBatches + uint64_t(i);
        std::vector<std::pair<uint64_t, Bytes>> recs = {{index, Bytes(16, uint8_t(index))}};
        auto r = store_->ApplyBatch("v", Batch(recs, t == 0 && i == 7 ? gen - 1 : gen), true);
        if (r.ok() && !r->duplicate && r->records == 1) ++ok;
        if (!r.ok() && r.status().code() == StatusCode::kFailedPrecondition) ++refused;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kBatches - 1);
  EXPECT_EQ(refused.load(), 1);
  Reopen();
  for (uint64_t index = 0; index < uint64_t(kThreads) * kBatches; ++index) {
    Bytes want = index == 7 ? Bytes(16, 0) : Bytes(16, uint8_t(index));
    ASSERT_EQ(Read(index), want) << "record " << index;
  }
}

TEST_F(VolumeStoreTest, LimitsAndGeometryChecks) {
  EXPECT_EQ(store_->Create("v", 0, 10, "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create("v", 16, 0, "").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Create("v", 16, uint64_t(1) << 60, "").status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->Create("v", 16, 10, "").ok());
  EXPECT_EQ(store_->Ensure("v", 16, 11, "").status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->Ensure("v", 16, 10, "").ok());
  std::vector<std::pair<uint64_t, Bytes>> recs = {{10, Bytes(16, 1)}};
  EXPECT_EQ(store_->ApplyBatch("v", Batch(recs, 1), false).status().code(), StatusCode::kOutOfRange);
  Bytes out(32);
  EXPECT_EQ(store_->Read("v", 9, 2, out).code(), StatusCode::kOutOfRange);
  ASSERT_TRUE(store_->Delete("v").ok());
  EXPECT_EQ(store_->Info("v").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace coffer::blockhost
