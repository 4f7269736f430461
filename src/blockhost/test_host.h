// TestHost: a BlockHostServer on 127.0.0.1 in a background thread, over a temp data directory, for
// tests and benchmarks. Restart() stops it and starts a new server on the same port and data.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "coffer/blockhost/server.h"

namespace coffer::blockhost::testing {

class TestHost {
 public:
  explicit TestHost(ServerOptions options = {}) : options_(std::move(options)) {
    if (options_.data_dir.empty()) {
      char tmpl[] = "/tmp/coffer-host-XXXXXX";
      dir_ = mkdtemp(tmpl);
      options_.data_dir = dir_;
    }
    options_.listen_host = "127.0.0.1";
    if (!options_.tls) options_.insecure_plaintext = true;
    options_.keep_alive_seconds = 1;  // Stop() waits for idle keep-alive connections
    status_ = Start();
  }
  ~TestHost() {
    Stop();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  const Status& status() const { return status_; }
  int port() const { return port_; }
  std::string origin() const { return (options_.tls ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_); }
  const std::string& data_dir() const { return options_.data_dir; }

  void Stop() {
    if (server_) server_->Stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
  }
  Status Restart() {
    Stop();
    options_.listen_port = port_;
    return Start();
  }

 private:
  Status Start() {
    auto s = BlockHostServer::Create(options_);
    if (!s.ok()) return s.status();
    server_ = std::move(*s);
    COFFER_RETURN_IF_ERROR(server_->Start());
    port_ = server_->port();
    thread_ = std::thread([this] { (void)server_->Run(); });
    return Status::Ok();
  }
  ServerOptions options_;
  std::string dir_;
  Status status_;
  int port_ = 0;
  std::unique_ptr<BlockHostServer> server_;
  std::thread thread_;
};

}  // namespace coffer::blockhost::testing
