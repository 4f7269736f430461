// The object daemon's wire protocol (docs/format/object_protocol.md), its server-side dispatcher,
// and the client. Frames: u32 LE body length, then a body that starts with the protocol version.
// ObjectConnection is the one client-facing API, implemented in-process (LocalConnection, over a
// Session) and over the socket (SocketConnection). A connection is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"
#include "coffer/objects/store.h"

namespace coffer::objects {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr uint32_t kMaxChunk = 1u << 20;             // largest READ/WRITE payload
inline constexpr uint32_t kMaxFrame = kMaxChunk + 4096;      // largest frame body either way
inline constexpr size_t kMaxShareName = 32;

enum class Op : uint8_t {
  kCreate = 1,
  kOpen = 2,
  kRead = 3,
  kWrite = 4,
  kSeek = 5,
  kTruncate = 6,
  kRename = 7,
  kClose = 8,
  kCloseAndDelete = 9,
  kInfo = 10,
  kEnumerate = 11,
  kUsage = 12,
  kGet = 13,  // open + read + close in one round trip
  kPut = 14,  // create + data + close (commit) in one round trip
  kAttachRing = 15,  // switch this connection to the shared-memory ring (objects/ring.h)
};

// Server side: decodes one request body, runs it on the session, encodes the response body.
// Never fails: malformed requests get a kInvalidArgument response naming the problem.
Bytes HandleRequest(Session& session, ByteSpan request, uint64_t quota_bytes = 0);
// The same, writing the answer into `out` (cleared first; its capacity is reused across requests).
void HandleRequestInto(Session& session, ByteSpan request, uint64_t quota_bytes, Bytes& out);
// An error answer body (version, status, message) for a status that is not OK.
Bytes ErrorAnswer(const Status& status);

// Frame I/O on a stream socket. ReadFrame: kNotFound at a clean end of stream before any byte,
// kInvalidArgument for a length above kMaxFrame, kIoError otherwise.
Status ReadFrame(int fd, Bytes& body);
Status WriteFrame(int fd, ByteSpan body);
// WriteFrame passing `pass_fd` with SCM_RIGHTS on the frame's first byte.
Status WriteFrameWithFd(int fd, ByteSpan body, int pass_fd);

// Buffered frame reader for one stream: one recv() usually brings a whole request frame (instead
// of a read for the length and another for the body); the buffer is kept across frames. Bodies
// returned stay valid until the next Read. Same errors as ReadFrame.
class FrameReader {
 public:
  explicit FrameReader(int fd) : fd_(fd) {}
  Status Read(ByteSpan& body);
  size_t buffered() const { return end_ - start_; }

 private:
  Status Fill(size_t need, bool at_frame_start);
  int fd_;
  Bytes buf_;
  size_t start_ = 0, end_ = 0;
};

// Socket buffers big enough for a whole 1 MiB frame, so a large answer is not trickled through the
// default ~200 KiB buffer with a wake-up per piece (best effort: capped by net.core.*mem_max).
void SetLargeSocketBuffers(int fd);

struct Usage {
  uint64_t used = 0;
  uint64_t quota = 0;  // 0 = none
};

struct ObjectContents {
  ObjectMeta meta;  // meta.size = the whole object's size
  Bytes data;       // the bytes read
};

class ObjectConnection {
 public:
  virtual ~ObjectConnection() = default;
  // Whole-object shortcuts (one round trip through the daemon when they fit one frame).
  // ReadObject: up to max_length bytes from offset (opened READ|SHARE_READ, closed again).
  virtual Result<ObjectContents> ReadObject(const std::string& share, const std::string& id, uint64_t offset,
                                            size_t max_length);
  // WriteObject: creates id with `flags` (add kOverwrite to replace) holding data; committed on return.
  virtual Status WriteObject(const std::string& share, const std::string& id, uint32_t flags,
                             const CreateAttrs& attrs, ByteSpan data);
  virtual Result<uint32_t> Create(const std::string& share, const std::string& id, uint32_t flags,
                                  const CreateAttrs& attrs, ByteSpan initial_data = {}) = 0;
  virtual Result<uint32_t> Open(const std::string& share, const std::string& id, uint32_t flags) = 0;
  // Reads up to out.size() bytes (any size; split into chunks as needed). Short only at the end.
  virtual Result<size_t> Read(uint32_t handle, MutableByteSpan out) = 0;
  virtual Status Write(uint32_t handle, ByteSpan data) = 0;
  virtual Result<uint64_t> Seek(uint32_t handle, int64_t offset, Whence whence) = 0;
  virtual Status Truncate(uint32_t handle, uint64_t size) = 0;
  virtual Status Rename(uint32_t handle, const std::string& new_id) = 0;
  virtual Status Close(uint32_t handle) = 0;
  virtual Status CloseAndDelete(uint32_t handle) = 0;
  virtual Result<HandleInfo> Info(uint32_t handle) = 0;
  virtual Result<EnumPage> Enumerate(const std::string& share, const std::string& after, size_t max_ids) = 0;
  virtual Result<Usage> GetUsage(const std::string& share) = 0;
  // "in-process", "socket" or "shared-memory".
  virtual const char* transport() const = 0;
};

// In-process: the connection owns a session of `store` (which must outlive it).
std::unique_ptr<ObjectConnection> NewLocalConnection(ObjectStore& store, uint32_t uid, uint64_t quota_bytes = 0);
struct ConnectOptions {
  // Ask the daemon for the shared-memory ring (docs/format/object_ring.md); a daemon that does not
  // offer it is used over the socket as before.
  bool shared_memory = false;
};
// Connects to the daemon's Unix socket.
Result<std::unique_ptr<ObjectConnection>> ConnectObjectDaemon(const std::string& socket_path,
                                                              ConnectOptions options = {});

// Reads every id of a namespace (pages through Enumerate).
Result<std::vector<std::string>> ListAll(ObjectConnection& conn, const std::string& share = "");

}  // namespace coffer::objects
