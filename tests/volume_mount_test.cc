// `coffer mount --volume` for real (FUSE): file workloads with the errno of each failure, concurrent
// readers, data surviving unmount + remount (and readable by `coffer fs get`), a file written and
// closed surviving SIGKILL of the mount, --read-only (EROFS), a tampered volume (EIO, logged, never
// wrong data), a wrong key (exit 4, nothing mounted), SIGTERM unmounting cleanly. Skips with a
// printed reason when /dev/fuse is unusable. Labels: interop, nosan.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
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
  if (::geteuid() != 0 && Run("fusermount3", {"-V"}).exit_code != 0) return "not root and no fusermount3";
  return "";
}

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = 2463534242u + uint32_t(seed);
  for (auto& c : s) { x ^= x << 13; x ^= x >> 17; x ^= x << 5; c = char(x); }
  return s;
}

bool IsMounted(const std::string& dir) {
  struct stat a, b;
  if (::stat(dir.c_str(), &a) != 0 || ::stat((dir + "/..").c_str(), &b) != 0) return false;
  return a.st_dev != b.st_dev;
}

// A formatted 4 MiB sealed volume and a mount point.
struct Volume {
  TempDir t;
  std::string vol = "file:" + (t / "disk.vol"), key = t / "disk.key", mnt = t / "mnt";
  bool mounted = false;
  Volume() {
    fs::create_directories(mnt);
    RunResult r = RunCoffer({"key", "new", key});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = RunCoffer({"volume", "create", vol, "--key", key, "--size", "4M"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    r = RunCoffer({"fs", "format", "--volume", vol, "--key", key});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  RunResult Mount(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"mount", "--volume", vol, "--key", key, mnt};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = RunCoffer(args);
    mounted = r.exit_code == 0;
    return r;
  }
  void Unmount() {
    if (!mounted) return;
    RunResult r = RunCoffer({"umount", mnt});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_FALSE(IsMounted(mnt));
    mounted = false;
  }
  ~Volume() { Unmount(); }
};

// `coffer mount --foreground` as a child with stderr in a file.
struct Foreground {
  pid_t pid = -1;
  std::string err_path;
  Foreground(const Volume& v, const std::string& err_file) : err_path(err_file) {
    pid = fork();
    if (pid == 0) {
      int fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 2);
      ::execl(COFFER_BIN, COFFER_BIN, "mount", "--volume", v.vol.c_str(), "--key", v.key.c_str(), v.mnt.c_str(),
              "--foreground", static_cast<char*>(nullptr));
      _exit(127);
    }
    for (int i = 0; i < 200 && !IsMounted(v.mnt); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  int Stop(int sig) {  // the exit status (128+signal when killed)
    if (pid <= 0) return -1;
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  ~Foreground() { if (pid > 0) Stop(SIGKILL); }
};

int Errno(int rc) { return rc == 0 ? 0 : errno; }

TEST(VolumeMount, FileWorkloadsErrnosAndPersistence) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Volume v;
  RunResult r = v.Mount();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(IsMounted(v.mnt));
  const std::string& m = v.mnt;
  // create, write, read back; edge sizes around the block and inline limits
  WriteFile(m + "/hello.txt", "hello");
  EXPECT_EQ(ReadFile(m + "/hello.txt"), "hello");
  for (size_t n : {0, 1, 4095, 4096, 4097, 65537})
    WriteFile(m + "/size_" + std::to_string(n), Pattern(n, int(n)));
  for (size_t n : {0, 1, 4095, 4096, 4097, 65537})
    EXPECT_EQ(ReadFile(m + "/size_" + std::to_string(n)), Pattern(n, int(n))) << n;
  EXPECT_EQ(fs::file_size(m + "/size_65537"), 65537u);
  // mkdir, rename into it, truncate (shrink and grow), overwrite in the middle, append
  fs::create_directories(m + "/dir/inner");
  fs::rename(m + "/hello.txt", m + "/dir/inner/moved.txt");
  EXPECT_FALSE(fs::exists(m + "/hello.txt"));
  fs::resize_file(m + "/dir/inner/moved.txt", 3);
  EXPECT_EQ(ReadFile(m + "/dir/inner/moved.txt"), "hel");
  fs::resize_file(m + "/dir/inner/moved.txt", 6);
  EXPECT_EQ(ReadFile(m + "/dir/inner/moved.txt"), std::string("hel\0\0\0", 6));
  std::string big = Pattern(300000, 7);
  WriteFile(m + "/big.bin", big);
  {
    std::fstream f(m + "/big.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4090);
    f.write("XYZXYZXYZXYZ", 12);
  }
  big.replace(4090, 12, "XYZXYZXYZXYZ");
  {
    std::ofstream f(m + "/big.bin", std::ios::binary | std::ios::app);
    f << "tail";
  }
  big += "tail";
  EXPECT_EQ(ReadFile(m + "/big.bin"), big);
  // rename a directory with files in it
  fs::rename(m + "/dir", m + "/dir2");
  EXPECT_EQ(ReadFile(m + "/dir2/inner/moved.txt"), std::string("hel\0\0\0", 6));
  // readdir
  std::set<std::string> names;
  for (auto& e : fs::directory_iterator(m)) names.insert(e.path().filename().string());
  EXPECT_EQ(names, (std::set<std::string>{"big.bin", "dir2", "size_0", "size_1", "size_4095", "size_4096",
                                          "size_4097", "size_65537"}));
  EXPECT_TRUE(fs::is_directory(m + "/dir2/inner"));
  // unlink, rmdir
  fs::remove(m + "/size_0");
  EXPECT_FALSE(fs::exists(m + "/size_0"));
  fs::create_directories(m + "/gone");
  EXPECT_EQ(::rmdir((m + "/gone").c_str()), 0);
  EXPECT_FALSE(fs::exists(m + "/gone"));
  // errno for each failure
  EXPECT_EQ(Errno(::open((m + "/nope/x").c_str(), O_RDONLY) < 0 ? -1 : 0), ENOENT);
  EXPECT_EQ(Errno(::mkdir((m + "/dir2").c_str(), 0755)), EEXIST);
  EXPECT_EQ(Errno(::rmdir((m + "/dir2").c_str())), ENOTEMPTY);
  EXPECT_EQ(Errno(::rmdir((m + "/big.bin").c_str())), ENOTDIR);
  EXPECT_EQ(Errno(::unlink((m + "/dir2").c_str())), EISDIR);
  EXPECT_EQ(Errno(::mkdir((m + "/" + std::string(256, 'n')).c_str(), 0755)), ENAMETOOLONG);
  EXPECT_EQ(Errno(::mkdir((m + "/" + std::string(255, 'n')).c_str(), 0755)), 0);  // the longest name fits
  EXPECT_EQ(Errno(::open((m + "/big.bin").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644) < 0 ? -1 : 0), EEXIST);
  EXPECT_EQ(Errno(::open((m + "/dir2").c_str(), O_WRONLY) < 0 ? -1 : 0), EISDIR);
  EXPECT_EQ(Errno(::renameat2(AT_FDCWD, (m + "/size_1").c_str(), AT_FDCWD, (m + "/big.bin").c_str(), RENAME_NOREPLACE)), EEXIST);
  // concurrent readers
  std::vector<std::thread> readers;
  std::atomic<int> good{0};
  for (int i = 0; i < 6; ++i) readers.emplace_back([&] { if (ReadFile(m + "/big.bin") == big) good++; });
  for (auto& t : readers) t.join();
  EXPECT_EQ(good.load(), 6);
  // statfs reports the volume, not the host disk
  struct statvfs sv;
  ASSERT_EQ(::statvfs(m.c_str(), &sv), 0);
  EXPECT_EQ(uint64_t(sv.f_blocks) * sv.f_frsize, 4u << 20);
  EXPECT_EQ(sv.f_namemax, 255u);
  // a full volume is ENOSPC (at write or at close), and the volume stays usable
  {
    int fd = ::open((m + "/fill.bin").c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    std::string chunk = Pattern(1 << 20, 9);
    int err = 0;
    for (int i = 0; i < 8 && !err; ++i)
      if (::write(fd, chunk.data(), chunk.size()) < 0) err = errno;
    if (::close(fd) != 0 && !err) err = errno;
    EXPECT_EQ(err, ENOSPC);
    ::unlink((m + "/fill.bin").c_str());
  }
  WriteFile(m + "/after_full.txt", "still works");
  EXPECT_EQ(ReadFile(m + "/after_full.txt"), "still works");

  // Unmount, then `coffer fs get` sees everything; remount and read again.
  v.Unmount();
  r = RunCoffer({"fs", "get", "--volume", v.vol, "--key", v.key, "/big.bin", v.t / "big.out"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(v.t / "big.out"), big);
  r = RunCoffer({"fs", "get", "--volume", v.vol, "--key", v.key, "/after_full.txt", v.t / "after.out"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(v.t / "after.out"), "still works");
  r = v.Mount();
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(m + "/dir2/inner/moved.txt"), std::string("hel\0\0\0", 6));
  EXPECT_EQ(ReadFile(m + "/size_65537"), Pattern(65537, 65537));
  EXPECT_FALSE(fs::exists(m + "/size_0"));
}

TEST(VolumeMount, ReadOnlyRefusesWritesWithErofs) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Volume v;
  ASSERT_EQ(v.Mount().exit_code, 0);
  WriteFile(v.mnt + "/keep.txt", "kept");
  v.Unmount();
  RunResult r = v.Mount({"--read-only"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(v.mnt + "/keep.txt"), "kept");
  EXPECT_EQ(Errno(::open((v.mnt + "/new.txt").c_str(), O_WRONLY | O_CREAT, 0644) < 0 ? -1 : 0), EROFS);
  EXPECT_EQ(Errno(::open((v.mnt + "/keep.txt").c_str(), O_WRONLY) < 0 ? -1 : 0), EROFS);
  EXPECT_EQ(Errno(::unlink((v.mnt + "/keep.txt").c_str())), EROFS);
  EXPECT_EQ(Errno(::mkdir((v.mnt + "/d").c_str(), 0755)), EROFS);
  EXPECT_EQ(Errno(::truncate((v.mnt + "/keep.txt").c_str(), 0)), EROFS);
  EXPECT_EQ(Errno(::rename((v.mnt + "/keep.txt").c_str(), (v.mnt + "/k2").c_str())), EROFS);
  EXPECT_EQ(ReadFile(v.mnt + "/keep.txt"), "kept");
}

TEST(VolumeMount, WrongKeyExits4WithoutMounting) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Volume v;
  ASSERT_EQ(RunCoffer({"key", "new", v.t / "other.key"}).exit_code, 0);
  RunResult r = RunCoffer({"mount", "--volume", v.vol, "--key", v.t / "other.key", v.mnt});
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("coffer: error:"), std::string::npos) << r.err;
  EXPECT_FALSE(IsMounted(v.mnt));
  // No filesystem on the volume yet / missing mount point / usage errors.
  r = RunCoffer({"mount", "--volume", v.vol, v.mnt});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = RunCoffer({"mount", "--volume", v.vol, "--key", v.key, v.t / "no-such-dir"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_FALSE(IsMounted(v.mnt));
}

TEST(VolumeMount, TamperedVolumeIsEioAndLogged) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Volume v;
  ASSERT_EQ(v.Mount().exit_code, 0);
  std::string data = Pattern(2 << 20, 3);
  WriteFile(v.mnt + "/data.bin", data);
  v.Unmount();
  // Flip one byte in every 40th written sector after the superblock pair: some are the file's data.
  // Layout (docs/format/file_store.md, volume.md): records at 4096 + i*4144; sector s is record 1+s.
  std::string path = v.t / "disk.vol";
  std::string raw = ReadFile(path);
  const size_t kRecord = 4096 + 48, kSectors = 1024;
  int flipped = 0, written = 0;
  for (size_t s = 2; s < kSectors; ++s) {
    size_t off = 4096 + (1 + s) * kRecord;
    if (off + kRecord > raw.size()) break;
    if (raw.compare(off, kRecord, std::string(kRecord, '\0')) == 0) continue;  // never written
    if (++written % 40 == 0) { raw[off + 100] ^= 0x20; ++flipped; }
  }
  ASSERT_GE(flipped, 5);
  WriteFile(path, raw);
  Foreground fg(v, v.t / "mount.err");
  ASSERT_TRUE(IsMounted(v.mnt)) << ReadFile(v.t / "mount.err");
  int fd = ::open((v.mnt + "/data.bin").c_str(), O_RDONLY);
  int err = 0;
  std::string got;
  if (fd < 0) {
    err = errno;
  } else {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) { err = errno; break; }
      if (n == 0) break;
      got.append(buf, size_t(n));
    }
    ::close(fd);
  }
  EXPECT_EQ(err, EIO);
  EXPECT_LT(got.size(), data.size());
  EXPECT_EQ(got, data.substr(0, got.size()));  // what was returned is right; the rest refused
  EXPECT_EQ(fg.Stop(SIGTERM), 0);
  EXPECT_FALSE(IsMounted(v.mnt));
  EXPECT_NE(ReadFile(v.t / "mount.err").find("failed authentication"), std::string::npos) << ReadFile(v.t / "mount.err");
  RunResult r = RunCoffer({"fs", "get", "--volume", v.vol, "--key", v.key, "/data.bin", v.t / "out"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
}

TEST(VolumeMount, SigtermUnmountsCleanlyAndClosedFilesSurviveSigkill) {
  if (auto why = FuseUnavailable(); !why.empty()) GTEST_SKIP() << why;
  Volume v;
  {
    Foreground fg(v, v.t / "a.err");
    ASSERT_TRUE(IsMounted(v.mnt)) << ReadFile(v.t / "a.err");
    WriteFile(v.mnt + "/one.txt", "before sigterm");
    EXPECT_EQ(fg.Stop(SIGTERM), 0) << ReadFile(v.t / "a.err");
    EXPECT_FALSE(IsMounted(v.mnt));
  }
  {
    Foreground fg(v, v.t / "b.err");
    ASSERT_TRUE(IsMounted(v.mnt)) << ReadFile(v.t / "b.err");
    EXPECT_EQ(ReadFile(v.mnt + "/one.txt"), "before sigterm");
    ::mkdir((v.mnt + "/d").c_str(), 0755);
    WriteFile(v.mnt + "/d/two.bin", Pattern(100000, 2));  // written and closed: committed
    EXPECT_EQ(fg.Stop(SIGKILL), 128 + SIGKILL);             // a crash: no unmount, no final commit
    RunResult r = RunCoffer({"umount", v.mnt});              // detach the dead mount
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  RunResult r = RunCoffer({"fs", "get", "--volume", v.vol, "--key", v.key, "/d/two.bin", v.t / "two.out"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(v.t / "two.out"), Pattern(100000, 2));
}

}  // namespace
}  // namespace coffer::e2e
