// End-to-end tests of `coffer objectd` and `coffer object ...`: the built binary as a daemon on a
// Unix socket (in memory, and on a sealed volume when the volume module is in the build), clients
// through the CLI, hostile ids, kill -9 of the daemon in the middle of a write.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "e2e_util.h"

namespace coffer::e2e {
namespace {

std::string RandomData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

// A daemon process: coffer objectd ARGS..., stopped with SIGTERM (or killed) at the end.
class Daemon {
 public:
  Daemon(const std::vector<std::string>& args, const std::string& socket, const std::string& log) : socket_(socket) {
    unlink(socket.c_str());  // a killed daemon leaves its socket file behind
    pid_ = fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> argv;
      std::string bin = COFFER_BIN, cmd = "objectd";
      argv.push_back(bin.data());
      argv.push_back(cmd.data());
      std::vector<std::string> copy = args;
      for (auto& a : copy) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(bin.c_str(), argv.data());
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      struct stat st;
      if (stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        ready_ = true;
        break;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ~Daemon() { Stop(SIGTERM); }
  bool ready() const { return ready_; }
  // Returns the exit status (or 128+signal).
  int Stop(int sig) {
    if (pid_ <= 0) return -1;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  std::string socket_;
  pid_t pid_ = -1;
  bool ready_ = false;
};

class ObjectCli : public ::testing::Test {
 protected:
  std::string Sock() { return dir_ / "s"; }
  // Creates a key and a sealed volume; false if this build has no volume commands.
  bool MakeVolume() {
    RunResult k = RunCoffer({"key", "new", dir_ / "k"});
    if (k.exit_code != 0) return false;
    RunResult v = RunCoffer({"volume", "create", "file:" + (dir_ / "v"), "--key", dir_ / "k", "--size", "4194304"});
    EXPECT_EQ(v.exit_code, 0) << v.err;
    return v.exit_code == 0;
  }
  std::vector<std::string> VolumeArgs() {
    return {"--volume", "file:" + (dir_ / "v"), "--key", dir_ / "k", "--socket", Sock()};
  }
  TempDir dir_;
};

TEST_F(ObjectCli, PutGetLsInfoMvRmThroughTheDaemon) {
  Daemon d({"--memory", "--socket", Sock()}, Sock(), dir_ / "log");
  ASSERT_TRUE(d.ready()) << ReadFile(dir_ / "log");
  std::string data = RandomData(100000, 1);
  WriteFile(dir_ / "o", data);
  RunResult put = RunCoffer({"object", "put", "--socket", Sock(), "object#1", dir_ / "o"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  RunResult get = RunCoffer({"object", "get", "--socket", Sock(), "object#1", dir_ / "back"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(ReadFile(dir_ / "back"), data);
  // stdin / stdout
  RunOptions in;
  in.stdin_data = "from stdin";
  ASSERT_EQ(RunCoffer({"object", "put", "--socket", Sock(), "--id-hex", "002f2e2e", "-"}, in).exit_code, 0);
  RunResult cat = RunCoffer({"object", "get", "--socket", Sock(), "--id-hex", "002f2e2e", "-"});
  EXPECT_EQ(cat.out, "from stdin");
  RunResult ls = RunCoffer({"object", "ls", "--socket", Sock(), "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  auto j = nlohmann::json::parse(ls.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["id_hex"], "002f2e2e");
  EXPECT_EQ(j[0]["id"], "hex:002f2e2e");
  EXPECT_EQ(j[1]["id"], "object#1");
  RunResult info = RunCoffer({"object", "info", "--socket", Sock(), "object#1", "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(nlohmann::json::parse(info.out)["size"], 100000);
  // mv onto an existing id is refused and changes nothing.
  RunResult mv = RunCoffer({"object", "mv", "--socket", Sock(), "--id-hex", "002f2e2e", "6f"});
  EXPECT_EQ(mv.exit_code, 0) << mv.err;
  RunResult clash = RunCoffer({"object", "mv", "--socket", Sock(), "o", "object#1"});
  EXPECT_NE(clash.exit_code, 0);
  RunResult mv2 = RunCoffer({"object", "mv", "--socket", Sock(), "o", "object#2"});
  EXPECT_EQ(mv2.exit_code, 0) << mv2.err;
  put = RunCoffer({"object", "put", "--socket", Sock(), "--no-overwrite", "object#2", dir_ / "o"});
  EXPECT_EQ(put.exit_code, 1);
  EXPECT_NE(put.err.find("access conflict"), std::string::npos) << put.err;
  ASSERT_EQ(RunCoffer({"object", "rm", "--socket", Sock(), "object#2"}).exit_code, 0);
  RunResult gone = RunCoffer({"object", "get", "--socket", Sock(), "object#2", dir_ / "x"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("coffer: error: "), std::string::npos);
  EXPECT_FALSE(std::ifstream(dir_ / "x").good()) << "a failed get must not leave a file";
}

TEST_F(ObjectCli, HostileIdsAreRefusedWithAClearError) {
  Daemon d({"--memory", "--socket", Sock()}, Sock(), dir_ / "log");
  ASSERT_TRUE(d.ready()) << ReadFile(dir_ / "log");
  WriteFile(dir_ / "o", "x");
  RunResult r = RunCoffer({"object", "put", "--socket", Sock(), std::string(65, 'a'), dir_ / "o"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("65 bytes"), std::string::npos) << r.err;
  r = RunCoffer({"object", "put", "--socket", Sock(), "", dir_ / "o"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("empty"), std::string::npos) << r.err;
  r = RunCoffer({"object", "put", "--socket", Sock(), "--id-hex", "zz", dir_ / "o"});
  EXPECT_EQ(r.exit_code, 2);
  // 64 bytes and path-like ids are fine.
  for (std::string id : {std::string(64, 'b'), std::string("../x"), std::string("/etc/passwd")}) {
    r = RunCoffer({"object", "put", "--socket", Sock(), id, dir_ / "o"});
    EXPECT_EQ(r.exit_code, 0) << id << ": " << r.err;
  }
  EXPECT_FALSE(std::ifstream(dir_.path() + "/../x").good());
}

TEST_F(ObjectCli, DaemonUsageErrorsAndMissingDaemon) {
  RunResult r = RunCoffer({"objectd", "--socket", Sock()});
  EXPECT_EQ(r.exit_code, 2);
  r = RunCoffer({"object", "ls", "--socket", dir_ / "nobody-here"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("hint: is 'coffer objectd' running"), std::string::npos) << r.err;
  r = RunCoffer({"objectd", "--memory", "--socket", Sock(), "--quota", "12Q"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--quota"), std::string::npos) << r.err;
}

TEST_F(ObjectCli, QuotaFromTheCommandLine) {
  Daemon d({"--memory", "--socket", Sock(), "--quota", "150000"}, Sock(), dir_ / "log");
  ASSERT_TRUE(d.ready()) << ReadFile(dir_ / "log");
  WriteFile(dir_ / "o", RandomData(100000, 2));
  ASSERT_EQ(RunCoffer({"object", "put", "--socket", Sock(), "a", dir_ / "o"}).exit_code, 0);
  RunResult r = RunCoffer({"object", "put", "--socket", Sock(), "b", dir_ / "o"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("quota"), std::string::npos) << r.err;
  // Replacing a within the quota works (the old copy's space is credited).
  EXPECT_EQ(RunCoffer({"object", "put", "--socket", Sock(), "a", dir_ / "o"}).exit_code, 0);
}

TEST_F(ObjectCli, SealedVolumePersistsAcrossRestarts) {
  if (!MakeVolume()) GTEST_SKIP() << "this build has no `coffer key new` / `coffer volume create` yet";
  std::string data = RandomData(300000, 3);
  WriteFile(dir_ / "o", data);
  {
    Daemon d(VolumeArgs(), Sock(), dir_ / "log");
    ASSERT_TRUE(d.ready()) << ReadFile(dir_ / "log");
    ASSERT_EQ(RunCoffer({"object", "put", "--socket", Sock(), "keep", dir_ / "o"}).exit_code, 0);
    EXPECT_EQ(d.Stop(SIGTERM), 0);
  }
  Daemon d(VolumeArgs(), Sock(), dir_ / "log2");
  ASSERT_TRUE(d.ready()) << ReadFile(dir_ / "log2");
  RunResult get = RunCoffer({"object", "get", "--socket", Sock(), "keep", dir_ / "back"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(ReadFile(dir_ / "back"), data);
  // The volume file holds no plaintext.
  std::string raw = ReadFile(dir_ / "v");
  EXPECT_EQ(raw.find(data.substr(1000, 64)), std::string::npos);
}

TEST_F(ObjectCli, WrongKeyIsAnUnlockFailure) {
  if (!MakeVolume()) GTEST_SKIP() << "this build has no `coffer key new` / `coffer volume create` yet";
  ASSERT_EQ(RunCoffer({"key", "new", dir_ / "k2"}).exit_code, 0);
  RunResult r = RunCoffer({"objectd", "--volume", "file:" + (dir_ / "v"), "--key", dir_ / "k2", "--socket", Sock()});
  EXPECT_EQ(r.exit_code, 4) << r.err;
}

TEST_F(ObjectCli, KillNineMidWriteLeavesTheOldObject) {
  if (!MakeVolume()) GTEST_SKIP() << "this build has no `coffer key new` / `coffer volume create` yet";
  std::string old_data = RandomData(50000, 4);
  WriteFile(dir_ / "old", old_data);
  for (int round = 0; round < 3; ++round) {
    Daemon d(VolumeArgs(), Sock(), dir_ / "log");
    ASSERT_TRUE(d.ready()) << ReadFile(dir_ / "log");
    if (round == 0) ASSERT_EQ(RunCoffer({"object", "put", "--socket", Sock(), "obj", dir_ / "old"}).exit_code, 0);
    // A writer streams a large replacement from a pipe that never finishes.
    int pipefd[2];
    ASSERT_EQ(pipe(pipefd), 0);
    pid_t writer = fork();
    if (writer == 0) {
      dup2(pipefd[0], 0);
      close(pipefd[1]);
      execl(COFFER_BIN, COFFER_BIN, "object", "put", "--socket", Sock().c_str(), "obj", "-", (char*)nullptr);
      _exit(127);
    }
    close(pipefd[0]);
    std::string chunk = RandomData(256 * 1024, 5 + round);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 4; ++i) {
      size_t off = 0;
      while (off < chunk.size()) {
        ssize_t n = write(pipefd[1], chunk.data() + off, chunk.size() - off);
        ASSERT_GT(n, 0) << "the writer stopped reading early";
        off += size_t(n);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100 * (round + 1)));
    EXPECT_EQ(d.Stop(SIGKILL), 128 + SIGKILL);
    close(pipefd[1]);
    int status;
    waitpid(writer, &status, 0);
    EXPECT_NE(WEXITSTATUS(status), 0) << "the writer must notice the daemon died";
  }
  Daemon d(VolumeArgs(), Sock(), dir_ / "log");
  ASSERT_TRUE(d.ready()) << ReadFile(dir_ / "log");
  RunResult get = RunCoffer({"object", "get", "--socket", Sock(), "obj", dir_ / "back"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(ReadFile(dir_ / "back"), old_data);
  RunResult ls = RunCoffer({"object", "ls", "--socket", Sock()});
  EXPECT_EQ(ls.out, "obj\n");
}

}  // namespace
}  // namespace coffer::e2e
