#include "coffer/blockdev/file_backing_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <sodium.h>

#include <cstring>

#include "coffer/base/bytes.h"
#include "coffer/base/file_util.h"

namespace coffer {
namespace {

// Plain (non-durable) file write: these tests model on-disk states, not durability.
void Put(const std::string& path, ByteSpan data) {
  FILE* f = fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fwrite(data.data(), 1, data.size(), f), data.size());
  fclose(f);
}

class FileBackingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/coffer-fbs-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    path_ = dir_ + "/v";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Bytes Record(uint8_t seed) { return Bytes(64, seed); }
  Bytes ReadAll(BackingStore& s) {
    Bytes out(s.record_size() * s.record_count());
    EXPECT_TRUE(s.Read(0, uint32_t(s.record_count()), out).ok());
    return out;
  }
  std::string dir_, path_;
};

TEST_F(FileBackingStoreTest, CreateThenReopenKeepsRecords) {
  {
    auto s = FileBackingStore::Create(path_, 64, 10);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    Bytes a = Record(1);
    ASSERT_TRUE((*s)->WriteBatch(std::vector<RecordWrite>{{3, a}}).ok());
  }
  struct stat st;
  ASSERT_EQ(stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto s = FileBackingStore::Open(path_);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->record_size(), 64u);
  EXPECT_EQ((*s)->record_count(), 10u);
  Bytes out(64);
  ASSERT_TRUE((*s)->Read(3, 1, out).ok());
  EXPECT_EQ(out, Record(1));
}

TEST_F(FileBackingStoreTest, CreateRefusesExistingFile) {
  ASSERT_TRUE(FileBackingStore::Create(path_, 64, 10).ok());
  EXPECT_EQ(FileBackingStore::Create(path_, 64, 10).status().code(), StatusCode::kAlreadyExists);
}

TEST_F(FileBackingStoreTest, SecondOpenWhileInUseIsRefused) {
  auto a = FileBackingStore::Create(path_, 64, 10);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(FileBackingStore::Open(path_).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(FileBackingStoreTest, MissingFileIsNotFound) {
  EXPECT_EQ(FileBackingStore::Open(dir_ + "/nope").status().code(), StatusCode::kNotFound);
}

TEST_F(FileBackingStoreTest, EveryHeaderByteFlipIsDataLoss) {
  ASSERT_TRUE(FileBackingStore::Create(path_, 64, 10).ok());
  Bytes orig = ReadFileBytes(path_).value();
  for (size_t i = 0; i < 64; ++i) {
    Bytes bad = orig;
    bad[i] ^= 0x10;
    Put(path_, bad);
    EXPECT_EQ(FileBackingStore::Open(path_).status().code(), StatusCode::kDataLoss) << "byte " << i;
  }
}

TEST_F(FileBackingStoreTest, TruncatedOrExtendedFileIsDataLoss) {
  ASSERT_TRUE(FileBackingStore::Create(path_, 64, 10).ok());
  ASSERT_EQ(truncate(path_.c_str(), 4096 + 64 * 9), 0);
  EXPECT_EQ(FileBackingStore::Open(path_).status().code(), StatusCode::kDataLoss);
  ASSERT_EQ(truncate(path_.c_str(), 4096 + 64 * 11), 0);
  EXPECT_EQ(FileBackingStore::Open(path_).status().code(), StatusCode::kDataLoss);
  ASSERT_EQ(truncate(path_.c_str(), 100), 0);
  EXPECT_EQ(FileBackingStore::Open(path_).status().code(), StatusCode::kDataLoss);
}

TEST_F(FileBackingStoreTest, FutureVersionIsUnsupported) {
  ASSERT_TRUE(FileBackingStore::Create(path_, 64, 10).ok());
  Bytes b = ReadFileBytes(path_).value();
  b[8] = 2;
  crypto_generichash_blake2b(b.data() + 32, 32, b.data(), 32, nullptr, 0);
  ASSERT_TRUE(WriteFileAtomic(path_, b).ok());
  auto s = FileBackingStore::Open(path_);
  EXPECT_EQ(s.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(s.status().message().find("upgrade"), std::string::npos);
}

// Crash while writing the journal (any prefix of it on disk): the batch is not applied.
// Crash after the journal is complete (while applying): reopening replays it whole.
TEST_F(FileBackingStoreTest, JournalTornAtEveryLengthGivesOldOrNewState) {
  Bytes old_state, new_state, journal;
  {
    auto s = FileBackingStore::Create(path_, 64, 10);
    ASSERT_TRUE(s.ok());
    Bytes a = Record(1), b = Record(2);
    ASSERT_TRUE((*s)->WriteBatch(std::vector<RecordWrite>{{1, a}, {7, b}}).ok());
    old_state = ReadAll(**s);
  }
  Bytes base_file = ReadFileBytes(path_).value();
  // Produce the journal of the next batch by writing it to a copy and capturing the journal bytes.
  Bytes c = Record(3), d = Record(4), e = Record(5);
  std::vector<RecordWrite> batch = {{1, c}, {2, d}, {9, e}};
  {
    // Build the expected journal by hand through a store on a scratch copy.
    std::string scratch = dir_ + "/scratch";
    ASSERT_TRUE(WriteFileAtomic(scratch, base_file).ok());
    auto s = FileBackingStore::Open(scratch);
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->WriteBatch(batch).ok());
    new_state = ReadAll(**s);
  }
  ASSERT_NE(old_state, new_state);
  // Reconstruct the journal format: header 32 + n*(8+R) + 32 checksum.
  journal.resize(32);
  std::memcpy(journal.data(), "CFJOURN1", 8);
  PutLe16(journal.data() + 8, 1);
  PutLe32(journal.data() + 12, 64);
  PutLe64(journal.data() + 16, batch.size());
  for (auto& w : batch) {
    uint8_t idx[8];
    PutLe64(idx, w.index);
    journal.insert(journal.end(), idx, idx + 8);
    journal.insert(journal.end(), w.data.begin(), w.data.end());
  }
  uint8_t sum[32];
  crypto_generichash_blake2b(sum, 32, journal.data(), journal.size(), nullptr, 0);
  journal.insert(journal.end(), sum, sum + 32);
  for (size_t len = 0; len <= journal.size(); len += (len < 40 || len + 40 > journal.size()) ? 1 : 13) {
    for (bool partially_applied : {false, true}) {
      Bytes file = base_file;
      if (partially_applied && len == journal.size()) {
        std::memcpy(file.data() + 4096 + 1 * 64, c.data(), 64);  // first record applied, crash
      }
      Put(path_, file);
      Put(FileBackingStore::JournalPath(path_), ByteSpan(journal.data(), len));
      auto s = FileBackingStore::Open(path_);
      ASSERT_TRUE(s.ok()) << len << ": " << s.status().ToString();
      Bytes got = ReadAll(**s);
      if (len == journal.size()) {
        EXPECT_EQ(got, new_state) << "complete journal not replayed";
        EXPECT_TRUE((*s)->recovered_batch());
      } else {
        EXPECT_EQ(got, old_state) << "torn journal of " << len << " bytes changed the store";
      }
    }
  }
}

}  // namespace
}  // namespace coffer
