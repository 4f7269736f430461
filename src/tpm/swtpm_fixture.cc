#include "tpm/swtpm_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>
#include <vector>

namespace coffer::tpm::testing {
namespace {

bool CanBind(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(uint16_t(port));
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// A port P with P and P+1 both free on 127.0.0.1.
int FreePortPair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    int p = ntohs(addr.sin_port);
    if (p < 65535 && CanBind(p) && CanBind(p + 1)) return p;
  }
  return 0;
}

bool Connectable(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(uint16_t(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

std::string Swtpm::Binary() {
  for (const char* p : {"/usr/bin/swtpm", "/usr/local/bin/swtpm"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

bool Swtpm::Start(const std::string& state_dir, std::string* error) {
  Stop();
  std::string bin = Binary();
  if (bin.empty()) {
    *error = "swtpm is not installed";
    return false;
  }
  mkdir(state_dir.c_str(), 0700);
  for (int attempt = 0; attempt < 5; ++attempt) {
    int port = FreePortPair();
    if (port == 0) continue;
    std::vector<std::string> args = {bin,
                                     "socket",
                                     "--tpm2",
                                     "--server",
                                     "type=tcp,port=" + std::to_string(port) + ",bindaddr=127.0.0.1",
                                     "--ctrl",
                                     "type=tcp,port=" + std::to_string(port + 1) + ",bindaddr=127.0.0.1",
                                     "--tpmstate",
                                     "dir=" + state_dir,
                                     "--flags",
                                     "not-need-init,startup-clear"};
    pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (pid < 0) {
      *error = "fork failed";
      return false;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) break;  // exited (port taken?): retry
      if (Connectable(port) && Connectable(port + 1)) {
        pid_ = pid;
        port_ = port;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  *error = "swtpm did not start (state " + state_dir + ")";
  return false;
}

void Swtpm::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(pid_, SIGKILL);
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string Swtpm::tcti() const { return "swtpm:host=127.0.0.1,port=" + std::to_string(port_); }

ScratchDir::ScratchDir() {
  std::string tmpl = (std::getenv("TMPDIR") ? std::string(std::getenv("TMPDIR")) : "/tmp") + "/coffer-tpm-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data())) path_ = buf.data();
}

ScratchDir::~ScratchDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace coffer::tpm::testing
