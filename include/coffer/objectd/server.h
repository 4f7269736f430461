// The object daemon's server: listens on a Unix socket, learns each client's uid from the kernel
// (SO_PEERCRED, never from the request) and serves the object protocol with one thread per
// connection (over the socket, or the shared-memory ring the client negotiated) over a shared ObjectStore (which must outlive the server). Start/Stop from one thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "coffer/base/status.h"
#include "coffer/objects/ring.h"
#include "coffer/objects/store.h"

namespace coffer::objectd {

struct ServerOptions {
  std::string socket_path;
  mode_t socket_mode = 0666;   // who may connect; isolation comes from the per-uid namespaces
  uint64_t quota_bytes = 0;    // reported to clients (the store enforces it)
  size_t max_connections = 256;
  // Offer the shared-memory ring (docs/format/object_ring.md) to clients that ask for it.
  bool shared_memory = true;
  objects::RingSpin ring_spin;
};

class ObjectServer {
 public:
  // Binds the socket (replacing a stale socket file; refusing if a daemon answers there).
  static Result<std::unique_ptr<ObjectServer>> Start(objects::ObjectStore& store, ServerOptions options);
  ~ObjectServer();  // Stop()
  // Stops accepting, disconnects clients (their uncommitted creates are discarded), joins threads,
  // removes the socket file.
  void Stop();
  size_t connections() const;

 private:
  ObjectServer(objects::ObjectStore& store, ServerOptions options, int listen_fd);
  void AcceptLoop();
  void Serve(int fd, uint64_t id);

  objects::ObjectStore& store_;
  ServerOptions options_;
  int listen_fd_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::pair<int, std::thread>> clients_;
  std::vector<std::thread> finished_;
  uint64_t next_id_ = 1;
};

}  // namespace coffer::objectd
