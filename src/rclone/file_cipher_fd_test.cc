// EncryptFd/DecryptFd on files of several batches: the pipelined decrypt (a writer thread writes
// batch k while batch k+1 is opened) gives the same bytes as EncryptBuffer/DecryptBuffer, and a
// tampered chunk in a later batch is kDataLoss (nothing after it is written).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

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

}  // namespace
}  // namespace coffer::rclone
