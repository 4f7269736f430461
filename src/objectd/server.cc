// ObjectServer: accept loop, peer credentials, one thread per client connection (socket or ring).
#include "coffer/objectd/server.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "coffer/objects/protocol.h"

namespace coffer::objectd {

using coffer::Bytes;

Result<std::unique_ptr<ObjectServer>> ObjectServer::Start(objects::ObjectStore& store, ServerOptions options) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& path = options.socket_path;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("socket path '" + path + "' is empty or longer than 107 bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return AlreadyExists(path + " exists and is not a socket");
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return AlreadyExists("another daemon is listening on " + path);
    ::unlink(path.c_str());  // stale socket of a daemon that died
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoStatus("binding " + path, err);
  }
  if (::chmod(path.c_str(), options.socket_mode) != 0 || ::listen(fd, 64) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    return ErrnoStatus("preparing " + path, err);
  }
  std::unique_ptr<ObjectServer> server(new ObjectServer(store, std::move(options), fd));
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

ObjectServer::ObjectServer(objects::ObjectStore& store, ServerOptions options, int listen_fd)
    : store_(store), options_(std::move(options)), listen_fd_(listen_fd) {}

ObjectServer::~ObjectServer() { Stop(); }

size_t ObjectServer::connections() const {
  std::lock_guard lock(mu_);
  return clients_.size();
}

void ObjectServer::Stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  ::unlink(options_.socket_path.c_str());
  std::map<uint64_t, std::pair<int, std::thread>> clients;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, c] : clients_) ::shutdown(c.first, SHUT_RDWR);
  }
  // Each client thread removes itself from clients_ and parks its std::thread in finished_.
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (clients_.empty()) break;
    }
    ::usleep(1000);
  }
  std::lock_guard lock(mu_);
  for (auto& t : finished_) t.join();
  finished_.clear();
}

void ObjectServer::AcceptLoop() {
  while (!stopping_) {
    pollfd p{listen_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    if (stopping_) break;
    if (r <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    std::lock_guard lock(mu_);
    for (auto& t : finished_) t.join();
    finished_.clear();
    if (clients_.size() >= options_.max_connections) {
      Bytes refusal = {objects::kProtocolVersion, uint8_t(StatusCode::kUnavailable), 0, 0};
      (void)objects::WriteFrame(fd, refusal);
      ::close(fd);
      continue;
    }
    objects::SetLargeSocketBuffers(fd);
    uint64_t id = next_id_++;
    clients_[id].first = fd;
    clients_[id].second = std::thread([this, fd, id] { Serve(fd, id); });
  }
}

void ObjectServer::Serve(int fd, uint64_t id) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && len == sizeof(cred)) {
    auto session = store_.NewSession(cred.uid);
    objects::FrameReader reader(fd);
    ByteSpan request;
    Bytes resp;
    while (!stopping_) {
      Status st = reader.Read(request);
      if (!st.ok()) {
        if (st.code() == StatusCode::kInvalidArgument) {
          // An impossible length: say why, then drop the connection (the stream is out of sync).
          (void)objects::WriteFrame(fd, objects::ErrorAnswer(InvalidArgument("malformed request: " + st.message())));
        }
        break;
      }
      if (request.size() >= 2 && request[0] == objects::kProtocolVersion &&
          request[1] == uint8_t(objects::Op::kAttachRing)) {
        if (!options_.shared_memory) {
          resp = objects::ErrorAnswer(Unsupported("this daemon does not offer the shared-memory ring"));
        } else {
          // Same session (same uid, same handles) on the ring from here on.
          bool attached = false;
          Status rs = objects::ServeRing(fd, *session, request, options_.quota_bytes, stopping_, attached,
                                         options_.ring_spin);
          if (attached || !rs.ok()) break;
          continue;  // refused with an answer on the socket; the socket protocol goes on
        }
      } else {
        objects::HandleRequestInto(*session, request, options_.quota_bytes, resp);
      }
      if (!objects::WriteFrame(fd, resp).ok()) break;
    }
  }
  ::close(fd);
  std::lock_guard lock(mu_);
  auto it = clients_.find(id);
  if (it != clients_.end()) {
    finished_.push_back(std::move(it->second.second));
    clients_.erase(it);
  }
}

}  // namespace coffer::objectd
