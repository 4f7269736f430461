// EncryptFd/DecryptFd on files of several batches: the parallel decrypts (positional pread/open/
// pwrite slices for regular files, the pipelined batches otherwise) give the same bytes as
// EncryptBuffer/DecryptBuffer; a tampered chunk is kDataLoss naming the first bad chunk, and the
// output is cut before it.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>

#include "coffer/base/random.h"
#include "coffer/rclone/file_cipher.h"
#include "coffer/rclone/keys.h"

namespace coffer::rclone {
namespace {

int MemFile(const Bytes& data) {
  int fd = ::memfd_create("coffer-test", MFD_CLOEXEC);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::pwrite(fd, data.data(), data.size(), 0), ssize_t(data.size()));
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

Bytes ReadAll(int fd) {
  Bytes out(size_t(::lseek(fd, 0, SEEK_END)));
  EXPECT_EQ(::pread(fd, out.data(), out.size(), 0), ssize_t(out.size()));
  return out;
}

TEST(FileCipherFd, PipelinedDecryptOfManyBatches) {
  auto keys = DeriveKeys("fd test", "");
  ASSERT_TRUE(keys.ok());
  FileCipher files(*keys);
  for (size_t size : {size_t(9 << 20) + 12345, size_t(4 << 20), size_t(130) * kChunkDataSize - 1}) {
    Bytes plain = RandomBytes(size);
    FileNonce nonce = RandomFileNonce();
    Bytes want = files.EncryptBuffer(plain, nonce);
    for (int threads : {1, 2, 4}) {
      int in = MemFile(plain), enc = ::memfd_create("enc", MFD_CLOEXEC);
      ASSERT_TRUE(files.EncryptFd(in, enc, nonce, {}, threads).ok());
      EXPECT_EQ(ReadAll(enc), want) << size << " " << threads;
      ::lseek(enc, 0, SEEK_SET);
      int out = ::memfd_create("out", MFD_CLOEXEC);
      Status s = files.DecryptFd(enc, out, "big", {}, threads);
      EXPECT_TRUE(s.ok()) << s.message();
      EXPECT_EQ(ReadAll(out), plain) << size << " " << threads;
      ::close(in);
      ::close(enc);
      ::close(out);
    }
  }
}

TEST(FileCipherFd, TamperInALaterBatchIsDataLoss) {
  auto keys = DeriveKeys("fd test", "");
  ASSERT_TRUE(keys.ok());
  FileCipher files(*keys);
  Bytes plain = RandomBytes(9 << 20);
  Bytes enc = files.EncryptBuffer(plain, RandomFileNonce());
  size_t chunk = 100;  // in the second or third batch, whatever the batch size
  enc[kFileHeaderSize + chunk * kChunkSize + 7] ^= 1;
  for (int threads : {1, 2}) {
    int in = MemFile(enc), out = ::memfd_create("out", MFD_CLOEXEC);
    Status s = files.DecryptFd(in, out, "victim", {}, threads);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
    EXPECT_NE(s.message().find("victim"), std::string::npos) << s.message();
    Bytes got = ReadAll(out);
    EXPECT_LE(got.size(), chunk * kChunkDataSize);  // nothing from the bad chunk on
    EXPECT_TRUE(std::equal(got.begin(), got.end(), plain.begin()));
    ::close(in);
    ::close(out);
  }
}

TEST(FileCipherFd, PositionalDecryptNamesTheFirstBadChunkAndCutsThere) {
  auto keys = DeriveKeys("fd test", "");
  ASSERT_TRUE(keys.ok());
  FileCipher files(*keys);
  Bytes plain = RandomBytes((10 << 20) + 777);
  Bytes enc = files.EncryptBuffer(plain, RandomFileNonce());
  for (size_t bad : {size_t(120), size_t(37)}) enc[kFileHeaderSize + bad * kChunkSize + 40] ^= 0x10;
  for (int threads : {2, 3, 4}) {
    int in = MemFile(enc), out = ::memfd_create("out", MFD_CLOEXEC);
    Status s = files.DecryptFd(in, out, "victim", {}, threads);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
    EXPECT_NE(s.message().find("chunk 37 "), std::string::npos) << s.message();
    Bytes got = ReadAll(out);
    EXPECT_EQ(got.size(), 37 * kChunkDataSize);  // every chunk before the bad one, nothing after
    EXPECT_TRUE(std::equal(got.begin(), got.end(), plain.begin()));
    ::close(in);
    ::close(out);
  }
}

TEST(FileCipherFd, PositionalDecryptReportsProgressAndLeavesOffsetsAtTheEnd) {
  auto keys = DeriveKeys("fd test", "");
  ASSERT_TRUE(keys.ok());
  FileCipher files(*keys);
  Bytes plain = RandomBytes((3 << 20) + 5);
  Bytes enc = files.EncryptBuffer(plain, RandomFileNonce());
  int in = MemFile(enc), out = ::memfd_create("out", MFD_CLOEXEC);
  std::atomic<uint64_t> seen{0};
  Status s = files.DecryptFd(in, out, "f", [&](uint64_t n) { seen += n; }, 2);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(seen.load(), plain.size());
  EXPECT_EQ(::lseek(in, 0, SEEK_CUR), off_t(enc.size()));
  EXPECT_EQ(::lseek(out, 0, SEEK_CUR), off_t(plain.size()));
  EXPECT_EQ(ReadAll(out), plain);
  ::close(in);
  ::close(out);
}

TEST(FileCipherFd, OutputThatIsNotEmptyKeepsTheStreamSemantics) {
  auto keys = DeriveKeys("fd test", "");
  ASSERT_TRUE(keys.ok());
  FileCipher files(*keys);
  Bytes plain = RandomBytes(2 << 20);
  Bytes enc = files.EncryptBuffer(plain, RandomFileNonce());
  Bytes prefix = {'o', 'l', 'd'};
  int in = MemFile(enc), out = MemFile(prefix);
  ASSERT_EQ(::lseek(out, 0, SEEK_END), 3);
  Status s = files.DecryptFd(in, out, "f", {}, 2);
  ASSERT_TRUE(s.ok()) << s.message();
  Bytes want = prefix;
  want.insert(want.end(), plain.begin(), plain.end());
  EXPECT_EQ(ReadAll(out), want);
  ::close(in);
  ::close(out);
}

TEST(FileCipherFd, CutInsideAChunkHeaderIsDataLossWithThreads) {
  auto keys = DeriveKeys("fd test", "");
  ASSERT_TRUE(keys.ok());
  FileCipher files(*keys);
  Bytes plain = RandomBytes(3 << 20);
  Bytes enc = files.EncryptBuffer(plain, RandomFileNonce());
  enc.resize(enc.size() - kChunkSize + 10);  // the last chunk keeps 10 bytes of its tag
  int in = MemFile(enc), out = ::memfd_create("out", MFD_CLOEXEC);
  Status s = files.DecryptFd(in, out, "cut", {}, 2);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss) << s.message();
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
  ::close(in);
  ::close(out);
}

}  // namespace
}  // namespace coffer::rclone
