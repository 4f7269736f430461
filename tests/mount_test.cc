// `coffer crypt mount` for real (FUSE): create, write, read, rename, truncate, readdir, unlink,
// concurrent readers; what the mount writes decrypts with decrypt-dir; a tampered chunk is EIO;
// --read-only gives EROFS; `coffer umount` unmounts cleanly. Skips with a printed reason when
// /dev/fuse is unusable. Labels: interop, nosan.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "e2e_util.h"

namespace coffer::e2e {
namespace {
namespace fs = std::filesystem;

std::string FuseUnavailable() {
  if (::access("/dev/fuse", R_OK | W_OK) != 0) return "/dev/fuse is not usable here";
  if (::geteuid() != 0 && e2e::Run("fusermount3", {"-V"}).exit_code != 0) return "not root and no fusermount3";
  return "";
}

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = 88172645u + uint32_t(seed);
  for (auto& c : s) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; c = char(x); }
  return s;
}

struct Mounted {
  TempDir t;
  std::string enc = t / "enc", mnt = t / "mnt";
  bool ok = false;
  explicit Mounted(std::vector<std::string> extra = {}) {
    fs::create_directories(enc);
    fs::create_directories(mnt);
    WriteFile(t / "pw", "mount password");
    fs::create_directories(t / "plain/sub");
    WriteFile(t / "plain/hello.txt", "hello");
    WriteFile(t / "plain/sub/big.bin", Pattern(3 * 65536 + 123, 1));
    if (RunCoffer({"crypt", "encrypt-dir", t / "plain", enc, "--password-file", t / "pw"}).exit_code != 0) return;
    Mount(extra);
  }
  void Mount(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"crypt", "mount", enc, mnt, "--password-file", t / "pw"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunOptions o;
    o.env["COFFER_STATE_DIR"] = t / "state";
    auto r = RunCoffer(args, o);
    ok = r.exit_code == 0;
    if (!ok) ADD_FAILURE() << "mount failed: " << r.err;
  }
  void Unmount() {
    if (!ok) return;
    auto r = RunCoffer({"umount", mnt});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ok = false;
    // The daemon exits after unmount; give it a moment to write the manifest.
    for (int i = 0; i < 50 && e2e::Run("findmnt", {mnt}).exit_code == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ~Mounted() { Unmount(); }
};

TEST(CryptMount, FileWorkloadsLandEncrypted) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Mounted m;
  ASSERT_TRUE(m.ok);
  EXPECT_EQ(ReadFile(m.mnt + "/hello.txt"), "hello");
  EXPECT_EQ(ReadFile(m.mnt + "/sub/big.bin"), Pattern(3 * 65536 + 123, 1));
  // create + write + read back
  WriteFile(m.mnt + "/new.txt", "fresh");
  EXPECT_EQ(ReadFile(m.mnt + "/new.txt"), "fresh");
  // mkdir, rename into it, truncate, overwrite in the middle
  fs::create_directories(m.mnt + "/dir/inner");
  fs::rename(m.mnt + "/new.txt", m.mnt + "/dir/inner/moved.txt");
  EXPECT_FALSE(fs::exists(m.mnt + "/new.txt"));
  fs::resize_file(m.mnt + "/dir/inner/moved.txt", 3);
  EXPECT_EQ(ReadFile(m.mnt + "/dir/inner/moved.txt"), "fre");
  {
    std::fstream f(m.mnt + "/sub/big.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(65530);
    f.write("XYZXYZXYZXYZ", 12);
  }
  std::string big = Pattern(3 * 65536 + 123, 1);
  big.replace(65530, 12, "XYZXYZXYZXYZ");
  EXPECT_EQ(ReadFile(m.mnt + "/sub/big.bin"), big);
  // edge sizes
  for (size_t n : {0, 1, 65535, 65536, 65537}) WriteFile(m.mnt + "/size_" + std::to_string(n), Pattern(n, int(n)));
  for (size_t n : {0, 1, 65535, 65536, 65537}) EXPECT_EQ(ReadFile(m.mnt + "/size_" + std::to_string(n)), Pattern(n, int(n)));
  // readdir shows decrypted names
  std::set<std::string> names;
  for (auto& e : fs::directory_iterator(m.mnt)) names.insert(e.path().filename().string());
  EXPECT_TRUE(names.count("hello.txt") && names.count("dir") && names.count("sub") && names.count("size_65537"));
  // unlink + rmdir
  fs::remove(m.mnt + "/hello.txt");
  EXPECT_FALSE(fs::exists(m.mnt + "/hello.txt"));
  fs::create_directories(m.mnt + "/gone");
  fs::remove(m.mnt + "/gone");
  // concurrent readers
  std::vector<std::thread> readers;
  std::atomic<int> good{0};
  for (int i = 0; i < 6; ++i)
    readers.emplace_back([&] { if (ReadFile(m.mnt + "/sub/big.bin") == big) good++; });
  for (auto& r : readers) r.join();
  EXPECT_EQ(good.load(), 6);
  // errno for bad operations
  EXPECT_NE(::open((m.mnt + "/nope/x").c_str(), O_RDONLY), 0);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(::mkdir((m.mnt + "/" + std::string(200, 'n')).c_str(), 0755), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
  m.Unmount();
  // Everything written through the mount is an rclone crypt tree that decrypts.
  auto r = RunCoffer({"crypt", "decrypt-dir", m.enc, m.t / "out", "--password-file", m.t / "pw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(m.t / "out/dir/inner/moved.txt"), "fre");
  EXPECT_EQ(ReadFile(m.t / "out/sub/big.bin"), big);
  EXPECT_FALSE(fs::exists(m.t / "out/hello.txt"));
  EXPECT_EQ(ReadFile(m.t / "out/size_65537"), Pattern(65537, 65537));
}

// Files written from empty in order are sealed chunk by chunk as they arrive (streaming write-back);
// a read or an out-of-order write in the middle switches to the in-memory path without losing data.
TEST(CryptMount, StreamedWritesMixedWithReadsAndSeeks) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Mounted m;
  ASSERT_TRUE(m.ok);
  std::string want = Pattern(5 * 65536 + 777, 5);
  int fd = ::open((m.mnt + "/s.bin").c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  size_t half = 2 * 65536 + 100;
  for (size_t off = 0; off < half; off += 1000)
    ASSERT_EQ(::pwrite(fd, want.data() + off, std::min<size_t>(1000, half - off), off_t(off)), ssize_t(std::min<size_t>(1000, half - off)));
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(size_t(st.st_size), half);
  char buf[300];
  ASSERT_EQ(::pread(fd, buf, sizeof buf, 65500), ssize_t(sizeof buf));  // reads back a sealed chunk
  EXPECT_EQ(std::string(buf, sizeof buf), want.substr(65500, sizeof buf));
  ASSERT_EQ(::pwrite(fd, want.data() + half, want.size() - half, off_t(half)), ssize_t(want.size() - half));
  want.replace(10, 5, "HELLO");
  ASSERT_EQ(::pwrite(fd, "HELLO", 5, 10), 5);  // out of order
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(m.mnt + "/s.bin"), want);
  // A plain streamed file (cp-like), then fsync before close.
  std::string big = Pattern(3 * 65536, 6);
  fd = ::open((m.mnt + "/t.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, big.data(), big.size()), ssize_t(big.size()));
  EXPECT_EQ(::fsync(fd), 0);
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(m.mnt + "/t.bin"), big);
  std::set<std::string> names;
  for (auto& e : fs::directory_iterator(m.mnt)) names.insert(e.path().filename().string());
  for (auto& n : names) EXPECT_EQ(n.find(".coffer-tmp"), std::string::npos) << n;
  m.Unmount();
  auto r = RunCoffer({"crypt", "decrypt-dir", m.enc, m.t / "out", "--password-file", m.t / "pw"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(m.t / "out/s.bin"), want);
  EXPECT_EQ(ReadFile(m.t / "out/t.bin"), big);
  for (auto& e : fs::recursive_directory_iterator(m.enc))
    EXPECT_EQ(e.path().filename().string().find(".coffer-tmp"), std::string::npos) << e.path();
}

TEST(CryptMount, TamperedChunkIsEio) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Mounted m;
  ASSERT_TRUE(m.ok);
  // Find the encrypted big file (the largest in enc/) and flip a byte in its second chunk.
  std::string victim;
  uintmax_t size = 0;
  for (auto& e : fs::recursive_directory_iterator(m.enc))
    if (e.is_regular_file() && e.file_size() > size) { size = e.file_size(); victim = e.path(); }
  std::string s = ReadFile(victim);
  s[32 + 65552 + 100] ^= 1;
  WriteFile(victim, s);
  int fd = ::open((m.mnt + "/sub/big.bin").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  char buf[4096];
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), ssize_t(sizeof buf));  // chunk 0 is intact
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 65536 + 10), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
}

// Reads a file with 1 MiB read()s (the kernel turns them into parallel readahead requests) until
// EOF or an error; returns the bytes and the errno of the failing read (0 at EOF).
std::pair<std::string, int> ReadSequential(const std::string& path) {
  std::pair<std::string, int> r{"", 0};
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return {"", errno};
  std::string buf(1 << 20, '\0');
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) { r.second = errno; break; }
    if (n == 0) break;
    r.first.append(buf.data(), size_t(n));
  }
  ::close(fd);
  return r;
}

std::string LargestFile(const std::string& dir) {
  std::string victim;
  uintmax_t size = 0;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.file_size() > size) { size = e.file_size(); victim = e.path(); }
  return victim;
}

TEST(CryptMount, SequentialReadsUnderReadaheadAreExactAndFresh) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Mounted m;
  ASSERT_TRUE(m.ok);
  if (::geteuid() == 0) {  // the mount widens its readahead window (root only)
    struct stat st;
    ASSERT_EQ(::stat(m.mnt.c_str(), &st), 0);
    std::string knob = "/sys/class/bdi/" + std::to_string(major(st.st_dev)) + ":" +
                       std::to_string(minor(st.st_dev)) + "/read_ahead_kb";
    if (fs::exists(knob)) {  // set right after the kernel's INIT, which may trail the mount command
      std::string kb;
      for (int i = 0; i < 100 && (kb = ReadFile(knob)) != "2048\n"; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      EXPECT_EQ(kb, "2048\n");
    }
  }
  const std::string path = m.mnt + "/seq.bin";
  std::string want = Pattern((6 << 20) + 4321, 7);
  WriteFile(path, want);
  EXPECT_EQ(ReadSequential(path), std::make_pair(want, 0));
  // Concurrent sequential readers of the same file.
  std::string got[3];
  std::vector<std::thread> readers;
  for (auto& g : got) readers.emplace_back([&g, &path] { g = ReadSequential(path).first; });
  for (auto& t : readers) t.join();
  for (auto& g : got) EXPECT_TRUE(g == want) << "concurrent reader got " << g.size() << " bytes";
  // A write in the middle and a truncate: the next reads see the new content, nothing stale.
  {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    std::string patch = Pattern(200000, 8);
    ASSERT_EQ(::pwrite(fd, patch.data(), patch.size(), (3 << 20) + 5), ssize_t(patch.size()));
    want.replace((3 << 20) + 5, patch.size(), patch);
    ASSERT_EQ(::close(fd), 0);
  }
  EXPECT_TRUE(ReadSequential(path).first == want);
  ASSERT_EQ(::truncate(path.c_str(), (5 << 20) + 7), 0);
  want.resize((5 << 20) + 7);
  auto after = ReadSequential(path);
  EXPECT_EQ(after.second, 0);
  EXPECT_TRUE(after.first == want) << after.first.size();
}

TEST(CryptMount, TamperedChunkUnderReadaheadIsEioNeverWrongData) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Mounted m;
  ASSERT_TRUE(m.ok);
  const std::string path = m.mnt + "/seq.bin";
  const std::string want = Pattern(8 << 20, 9);
  WriteFile(path, want);
  ASSERT_TRUE(ReadSequential(path).first == want);
  std::string victim = LargestFile(m.enc);
  std::string s = ReadFile(victim);
  const size_t bad_chunk = 70;  // inside the 5th MiB: well within the readahead window of earlier reads
  s[32 + bad_chunk * 65552 + 4000] ^= 0x40;
  WriteFile(victim, s);
  auto [data, err] = ReadSequential(path);
  EXPECT_EQ(err, EIO);
  EXPECT_LE(data.size(), bad_chunk * 65536);
  EXPECT_TRUE(want.compare(0, data.size(), data) == 0) << "a read returned wrong bytes before the EIO";
  // Reads of other parts still work; reads touching the chunk keep failing.
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string buf(65536, '\0');
  EXPECT_EQ(::pread(fd, buf.data(), buf.size(), (bad_chunk + 2) * 65536), ssize_t(buf.size()));
  EXPECT_TRUE(buf == want.substr((bad_chunk + 2) * 65536, buf.size()));
  EXPECT_EQ(::pread(fd, buf.data(), 100, bad_chunk * 65536 + 30000), -1);
  EXPECT_EQ(errno, EIO);
  ::close(fd);
}

TEST(CryptMount, ReadOnlyRefusesWrites) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Mounted m({"--read-only"});
  ASSERT_TRUE(m.ok);
  EXPECT_EQ(ReadFile(m.mnt + "/hello.txt"), "hello");
  int fd = ::open((m.mnt + "/x.txt").c_str(), O_WRONLY | O_CREAT, 0644);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::unlink((m.mnt + "/hello.txt").c_str()), -1);
  EXPECT_EQ(errno, EROFS);
}

TEST(CryptMount, ManifestCatchesSwapAndIsKeptUpToDate) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Mounted m;
  ASSERT_TRUE(m.ok);
  m.Unmount();
  RunOptions o;
  o.env["COFFER_STATE_DIR"] = m.t / "state";
  ASSERT_EQ(RunCoffer({"crypt", "manifest", m.enc, "--password-file", m.t / "pw"}, o).exit_code, 0);
  m.Mount({"--manifest"});
  ASSERT_TRUE(m.ok);
  WriteFile(m.mnt + "/written.txt", "through the mount");
  m.Unmount();
  // The manifest now covers the new file: verify passes.
  auto r = RunCoffer({"crypt", "verify", m.enc, "--password-file", m.t / "pw", "--manifest"}, o);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  // Swap two encrypted files' contents: mount refuses (exit 3), verify names them.
  std::vector<std::string> files;
  for (auto& e : fs::recursive_directory_iterator(m.enc))
    if (e.is_regular_file() && e.path().filename() != ".coffer-manifest") files.push_back(e.path());
  ASSERT_GE(files.size(), 2u);
  std::string a = ReadFile(files[0]), b = ReadFile(files[1]);
  WriteFile(files[0], b);
  WriteFile(files[1], a);
  r = RunCoffer({"crypt", "verify", m.enc, "--password-file", m.t / "pw"}, o);
  EXPECT_EQ(r.exit_code, 3) << r.err;
  r = RunCoffer({"crypt", "mount", m.enc, m.mnt, "--password-file", m.t / "pw"}, o);
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

}  // namespace
}  // namespace coffer::e2e
