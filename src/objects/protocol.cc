// Object protocol codec, server dispatch, frame I/O and the two ObjectConnection implementations.
#include "coffer/objects/protocol.h"

#include "coffer/objects/ring.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace coffer::objects {
namespace {

// Bounds-checked reader over a request or response body.
class Reader {
 public:
  explicit Reader(ByteSpan data) : data_(data) {}
  bool U8(uint8_t& v) {
    if (!Need(1)) return false;
    v = data_[pos_++];
    return true;
  }
  bool U16(uint16_t& v) {
    if (!Need(2)) return false;
    v = GetLe16(&data_[pos_]);
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t& v) {
    if (!Need(4)) return false;
    v = GetLe32(&data_[pos_]);
    pos_ += 4;
    return true;
  }
  bool U64(uint64_t& v) {
    if (!Need(8)) return false;
    v = GetLe64(&data_[pos_]);
    pos_ += 8;
    return true;
  }
  bool Str8(std::string& s) {  // u8 length + bytes
    uint8_t n;
    if (!U8(n) || !Need(n)) return false;
    s.assign(reinterpret_cast<const char*>(&data_[pos_]), n);
    pos_ += n;
    return true;
  }
  bool Str16(std::string& s) {
    uint16_t n;
    if (!U16(n) || !Need(n)) return false;
    s.assign(reinterpret_cast<const char*>(&data_[pos_]), n);
    pos_ += n;
    return true;
  }
  ByteSpan Rest() {
    ByteSpan r = data_.subspan(pos_);
    pos_ = data_.size();
    return r;
  }
  bool Done() const { return pos_ == data_.size(); }

 private:
  bool Need(size_t n) const { return data_.size() - pos_ >= n; }
  ByteSpan data_;
  size_t pos_ = 0;
};

void PutU8(Bytes& b, uint8_t v) { b.push_back(v); }
void PutU16(Bytes& b, uint16_t v) {
  b.push_back(uint8_t(v));
  b.push_back(uint8_t(v >> 8));
}
void PutStr8(Bytes& b, const std::string& s) {
  b.push_back(uint8_t(s.size()));
  Append(b, AsBytes(s));
}

// Clears out and writes the answer header (version, status, message).
void SetStatus(Bytes& out, const Status& st) {
  out.clear();
  PutU8(out, kProtocolVersion);
  PutU8(out, uint8_t(st.code()));
  size_t n = st.ok() ? 0 : std::min<size_t>(st.message().size(), 1024);
  PutU16(out, uint16_t(n));
  if (n) out.insert(out.end(), st.message().begin(), st.message().begin() + n);
}

void SetMalformed(Bytes& out, const std::string& what) { SetStatus(out, InvalidArgument("malformed request: " + what)); }

Bytes Encode(Op op) {
  Bytes b;
  PutU8(b, kProtocolVersion);
  PutU8(b, uint8_t(op));
  return b;
}

// Checks a length-prefixed field fits the u8 prefix before encoding (ids longer than 255 bytes
// cannot even be sent; the store refuses 65..255 with its own message).
Status CheckEncodable(const std::string& id, const char* what) {
  if (id.size() > 255) return InvalidArgument(std::string(what) + " is " + std::to_string(id.size()) + " bytes long (ids are 1 to 64 bytes)");
  return Status::Ok();
}

}  // namespace

void HandleRequestInto(Session& s, ByteSpan request, uint64_t quota_bytes, Bytes& out) {
  Reader r(request);
  uint8_t version = 0, op = 0;
  if (!r.U8(version)) return SetMalformed(out, "empty frame");
  if (version != kProtocolVersion) {
    return SetStatus(out, Unsupported("protocol version " + std::to_string(version) +
                                      " is not supported (this daemon speaks version 1)"));
  }
  if (!r.U8(op)) return SetMalformed(out, "no operation code");
  auto done = [&](const char*) { return r.Done(); };
  switch (static_cast<Op>(op)) {
    case Op::kCreate: {
      uint32_t flags, oflags, uflags;
      uint64_t cap;
      std::string share, id;
      if (!r.U32(flags) || !r.U32(oflags) || !r.U32(uflags) || !r.U64(cap) || !r.Str8(share) || !r.Str8(id)) {
        return SetMalformed(out, "CREATE is truncated");
      }
      ByteSpan initial = r.Rest();
      auto h = s.Create(share, id, flags, CreateAttrs{oflags, uflags, cap}, initial);
      if (!h.ok()) return SetStatus(out, h.status());
      SetStatus(out, Status::Ok());
      AppendLe32(out, *h);
      return;
    }
    case Op::kOpen: {
      uint32_t flags;
      std::string share, id;
      if (!r.U32(flags) || !r.Str8(share) || !r.Str8(id) || !done("OPEN")) return SetMalformed(out, "OPEN has a bad length");
      auto h = s.Open(share, id, flags);
      if (!h.ok()) return SetStatus(out, h.status());
      SetStatus(out, Status::Ok());
      AppendLe32(out, *h);
      return;
    }
    case Op::kRead: {
      uint32_t handle, len;
      if (!r.U32(handle) || !r.U32(len) || !done("READ")) return SetMalformed(out, "READ has a bad length");
      if (len > kMaxChunk) return SetMalformed(out, "READ asks for more than 1 MiB");
      SetStatus(out, Status::Ok());
      size_t head = out.size();
      out.resize(head + len);
      auto n = s.Read(handle, MutableByteSpan(out).subspan(head));
      if (!n.ok()) return SetStatus(out, n.status());
      out.resize(head + *n);
      return;
    }
    case Op::kWrite: {
      uint32_t handle;
      if (!r.U32(handle)) return SetMalformed(out, "WRITE is truncated");
      return SetStatus(out, s.Write(handle, r.Rest()));
    }
    case Op::kSeek: {
      uint32_t handle;
      uint64_t off;
      uint8_t whence;
      if (!r.U32(handle) || !r.U64(off) || !r.U8(whence) || !done("SEEK")) return SetMalformed(out, "SEEK has a bad length");
      if (whence > 2) return SetMalformed(out, "SEEK whence must be 0, 1 or 2");
      auto p = s.Seek(handle, int64_t(off), static_cast<Whence>(whence));
      if (!p.ok()) return SetStatus(out, p.status());
      SetStatus(out, Status::Ok());
      AppendLe64(out, *p);
      return;
    }
    case Op::kTruncate: {
      uint32_t handle;
      uint64_t size;
      if (!r.U32(handle) || !r.U64(size) || !done("TRUNCATE")) return SetMalformed(out, "TRUNCATE has a bad length");
      return SetStatus(out, s.Truncate(handle, size));
    }
    case Op::kRename: {
      uint32_t handle;
      std::string id;
      if (!r.U32(handle) || !r.Str8(id) || !done("RENAME")) return SetMalformed(out, "RENAME has a bad length");
      return SetStatus(out, s.Rename(handle, id));
    }
    case Op::kClose:
    case Op::kCloseAndDelete: {
      uint32_t handle;
      if (!r.U32(handle) || !done("CLOSE")) return SetMalformed(out, "CLOSE has a bad length");
      return SetStatus(out, static_cast<Op>(op) == Op::kClose ? s.Close(handle) : s.CloseAndDelete(handle));
    }
    case Op::kInfo: {
      uint32_t handle;
      if (!r.U32(handle) || !done("INFO")) return SetMalformed(out, "INFO has a bad length");
      auto info = s.Info(handle);
      if (!info.ok()) return SetStatus(out, info.status());
      SetStatus(out, Status::Ok());
      AppendLe64(out, info->meta.size);
      AppendLe64(out, info->position);
      AppendLe32(out, info->access);
      AppendLe32(out, info->meta.object_flags);
      AppendLe32(out, info->meta.user_flags);
      AppendLe64(out, info->meta.user_capacity);
      AppendLe32(out, info->meta.owner_uid);
      PutStr8(out, info->id);
      return;
    }
    case Op::kEnumerate: {
      std::string share, after;
      uint32_t max_ids;
      if (!r.Str8(share) || !r.Str8(after) || !r.U32(max_ids) || !done("ENUMERATE")) {
        return SetMalformed(out, "ENUMERATE has a bad length");
      }
      auto page = s.Enumerate(share, after, std::max<uint32_t>(1, max_ids), kMaxChunk);
      if (!page.ok()) return SetStatus(out, page.status());
      SetStatus(out, Status::Ok());
      PutU8(out, page->more ? 1 : 0);
      AppendLe32(out, uint32_t(page->ids.size()));
      for (const auto& id : page->ids) PutStr8(out, id);
      return;
    }
    case Op::kGet: {
      uint32_t flags, max_len;
      uint64_t offset;
      std::string share, id;
      if (!r.U32(flags) || !r.Str8(share) || !r.Str8(id) || !r.U64(offset) || !r.U32(max_len) || !done("GET")) {
        return SetMalformed(out, "GET has a bad length");
      }
      if (max_len > kMaxChunk) return SetMalformed(out, "GET asks for more than 1 MiB");
      auto h = s.Open(share, id, flags | kAccessRead);
      if (!h.ok()) return SetStatus(out, h.status());
      SetStatus(out, Status::Ok());
      auto info = s.Info(*h);
      Status st = info.status();
      if (st.ok()) {
        AppendLe64(out, info->meta.size);
        AppendLe32(out, info->meta.object_flags);
        AppendLe32(out, info->meta.user_flags);
        AppendLe64(out, info->meta.user_capacity);
        AppendLe32(out, info->meta.owner_uid);
        if (offset > info->meta.size) offset = info->meta.size;
        st = s.Seek(*h, int64_t(offset), Whence::kSet).status();
      }
      if (st.ok()) {
        size_t head = out.size();
        out.resize(head + std::min<uint64_t>(max_len, info->meta.size - offset));
        auto n = s.Read(*h, MutableByteSpan(out).subspan(head));
        st = n.status();
        if (st.ok()) out.resize(head + *n);
      }
      Status closed = s.Close(*h);
      if (st.ok()) st = closed;
      if (!st.ok()) return SetStatus(out, st);
      return;
    }
    case Op::kPut: {
      uint32_t flags, oflags, uflags;
      uint64_t cap;
      std::string share, id;
      if (!r.U32(flags) || !r.U32(oflags) || !r.U32(uflags) || !r.U64(cap) || !r.Str8(share) || !r.Str8(id)) {
        return SetMalformed(out, "PUT is truncated");
      }
      auto h = s.Create(share, id, flags, CreateAttrs{oflags, uflags, cap}, r.Rest());
      if (!h.ok()) return SetStatus(out, h.status());
      return SetStatus(out, s.Close(*h));
    }
    case Op::kUsage: {
      std::string share;
      if (!r.Str8(share) || !done("USAGE")) return SetMalformed(out, "USAGE has a bad length");
      auto used = s.Usage(share);
      if (!used.ok()) return SetStatus(out, used.status());
      SetStatus(out, Status::Ok());
      AppendLe64(out, *used);
      AppendLe64(out, quota_bytes);
      return;
    }
    case Op::kAttachRing:
      // Only the daemon's socket loop can hand over a ring (it needs the socket to pass the fd).
      return SetStatus(out, Unsupported("the shared-memory ring is negotiated only on a daemon socket"));
  }
  return SetMalformed(out, "unknown operation code " + std::to_string(op));
}

Bytes ErrorAnswer(const Status& status) {
  Bytes out;
  SetStatus(out, status);
  return out;
}

Bytes HandleRequest(Session& s, ByteSpan request, uint64_t quota_bytes) {
  Bytes out;
  HandleRequestInto(s, request, quota_bytes, out);
  return out;
}

Status ReadFrame(int fd, Bytes& body) {
  auto read_all = [fd](uint8_t* p, size_t n, bool first) -> Status {
    size_t got = 0;
    while (got < n) {
      ssize_t k = ::read(fd, p + got, n - got);
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) return ErrnoStatus("reading from the object socket", errno);
      if (k == 0) {
        if (first && got == 0) return NotFound("connection closed");
        return IoError("connection closed in the middle of a frame");
      }
      got += size_t(k);
    }
    return Status::Ok();
  };
  uint8_t len[4];
  COFFER_RETURN_IF_ERROR(read_all(len, 4, true));
  uint32_t n = GetLe32(len);
  if (n > kMaxFrame) {
    return InvalidArgument("frame of " + std::to_string(n) + " bytes is larger than the maximum " +
                           std::to_string(kMaxFrame));
  }
  body.resize(n);
  return read_all(body.data(), n, false);
}

Status WriteFrame(int fd, ByteSpan body) {
  if (body.size() > kMaxFrame) return InvalidArgument("frame too large");
  uint8_t len[4];
  PutLe32(len, uint32_t(body.size()));
  struct iovec iov[2] = {{len, 4}, {const_cast<uint8_t*>(body.data()), body.size()}};
  size_t total = 4 + body.size(), sent = 0;
  while (sent < total) {
    struct msghdr msg {};
    struct iovec cur[2];
    int cnt = 0;
    size_t skip = sent;
    for (auto& v : iov) {
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      cur[cnt].iov_base = static_cast<uint8_t*>(v.iov_base) + skip;
      cur[cnt].iov_len = v.iov_len - skip;
      skip = 0;
      ++cnt;
    }
    msg.msg_iov = cur;
    msg.msg_iovlen = cnt;
    ssize_t k = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return ErrnoStatus("writing to the object socket", errno);
    sent += size_t(k);
  }
  return Status::Ok();
}

Status WriteFrameWithFd(int fd, ByteSpan body, int pass_fd) {
  if (body.size() > kMaxFrame) return InvalidArgument("frame too large");
  uint8_t len[4];
  PutLe32(len, uint32_t(body.size()));
  // The fd travels with the length bytes; the body follows with WriteFrame's loop.
  struct iovec iov = {len, 4};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  ssize_t k;
  do {
    k = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (k < 0 && errno == EINTR);
  if (k < 0) return ErrnoStatus("passing the ring to the client", errno);
  size_t sent = size_t(k);
  while (sent < 4) {  // a stream socket may take fewer bytes; the fd went with the first
    ssize_t m = ::send(fd, len + sent, 4 - sent, MSG_NOSIGNAL);
    if (m < 0 && errno == EINTR) continue;
    if (m < 0) return ErrnoStatus("writing to the object socket", errno);
    sent += size_t(m);
  }
  size_t off = 0;
  while (off < body.size()) {
    ssize_t m = ::send(fd, body.data() + off, body.size() - off, MSG_NOSIGNAL);
    if (m < 0 && errno == EINTR) continue;
    if (m < 0) return ErrnoStatus("writing to the object socket", errno);
    off += size_t(m);
  }
  return Status::Ok();
}

void SetLargeSocketBuffers(int fd) {
  int size = int(2 * kMaxFrame);
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
}

Status FrameReader::Fill(size_t need, bool at_frame_start) {
  if (end_ - start_ >= need) return Status::Ok();
  if (buf_.size() - start_ < need) {  // move the partial frame to the front, grow if still short
    if (end_ > start_) std::memmove(buf_.data(), buf_.data() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
    if (buf_.size() < need) buf_.resize(std::max<size_t>(need, 64 * 1024));
  }
  while (end_ - start_ < need) {
    ssize_t k = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return ErrnoStatus("reading from the object socket", errno);
    if (k == 0) {
      if (at_frame_start && end_ == start_) return NotFound("connection closed");
      return IoError("connection closed in the middle of a frame");
    }
    end_ += size_t(k);
  }
  return Status::Ok();
}

Status FrameReader::Read(ByteSpan& body) {
  if (start_ == end_) start_ = end_ = 0;
  COFFER_RETURN_IF_ERROR(Fill(4, true));
  uint32_t n = GetLe32(buf_.data() + start_);
  if (n > kMaxFrame) {
    return InvalidArgument("frame of " + std::to_string(n) + " bytes is larger than the maximum " +
                           std::to_string(kMaxFrame));
  }
  COFFER_RETURN_IF_ERROR(Fill(4 + size_t(n), false));
  body = ByteSpan(buf_.data() + start_ + 4, n);
  start_ += 4 + size_t(n);
  return Status::Ok();
}

Result<ObjectContents> ObjectConnection::ReadObject(const std::string& share, const std::string& id,
                                                   uint64_t offset, size_t max_length) {
  COFFER_ASSIGN_OR_RETURN(uint32_t h, Open(share, id, kAccessRead | kShareRead));
  auto body = [&]() -> Result<ObjectContents> {
    ObjectContents c;
    COFFER_ASSIGN_OR_RETURN(auto info, Info(h));
    c.meta = info.meta;
    if (offset >= c.meta.size) return c;
    COFFER_RETURN_IF_ERROR(Seek(h, int64_t(offset), Whence::kSet).status());
    c.data.resize(std::min<uint64_t>(max_length, c.meta.size - offset));
    COFFER_ASSIGN_OR_RETURN(size_t n, Read(h, c.data));
    c.data.resize(n);
    return c;
  };
  auto result = body();
  Status closed = Close(h);
  if (result.ok() && !closed.ok()) return closed;
  return result;
}

Status ObjectConnection::WriteObject(const std::string& share, const std::string& id, uint32_t flags,
                                     const CreateAttrs& attrs, ByteSpan data) {
  size_t first = std::min<size_t>(data.size(), kMaxChunk - 512);
  COFFER_ASSIGN_OR_RETURN(uint32_t h, Create(share, id, flags, attrs, data.first(first)));
  Status st;
  if (first < data.size()) {
    st = Seek(h, 0, Whence::kEnd).status();
    if (st.ok()) st = Write(h, data.subspan(first));
  }
  if (!st.ok()) {
    (void)CloseAndDelete(h);  // discards the staged object; an older one stays
    return st;
  }
  return Close(h);
}

namespace {

class LocalConnection : public ObjectConnection {
 public:
  LocalConnection(ObjectStore& store, uint32_t uid, uint64_t quota)
      : store_(store), session_(store.NewSession(uid)), quota_(quota) {}
  Result<uint32_t> Create(const std::string& share, const std::string& id, uint32_t flags,
                          const CreateAttrs& attrs, ByteSpan initial) override {
    return session_->Create(share, id, flags, attrs, initial);
  }
  Result<uint32_t> Open(const std::string& share, const std::string& id, uint32_t flags) override {
    return session_->Open(share, id, flags);
  }
  Result<size_t> Read(uint32_t h, MutableByteSpan out) override { return session_->Read(h, out); }
  Status Write(uint32_t h, ByteSpan data) override { return session_->Write(h, data); }
  Result<uint64_t> Seek(uint32_t h, int64_t off, Whence w) override { return session_->Seek(h, off, w); }
  Status Truncate(uint32_t h, uint64_t size) override { return session_->Truncate(h, size); }
  Status Rename(uint32_t h, const std::string& id) override { return session_->Rename(h, id); }
  Status Close(uint32_t h) override { return session_->Close(h); }
  Status CloseAndDelete(uint32_t h) override { return session_->CloseAndDelete(h); }
  Result<HandleInfo> Info(uint32_t h) override { return session_->Info(h); }
  Result<EnumPage> Enumerate(const std::string& share, const std::string& after, size_t max_ids) override {
    return session_->Enumerate(share, after, max_ids);
  }
  Result<Usage> GetUsage(const std::string& share) override {
    COFFER_ASSIGN_OR_RETURN(uint64_t used, session_->Usage(share));
    return Usage{used, quota_};
  }
  const char* transport() const override { return "in-process"; }

 private:
  ObjectStore& store_;
  std::unique_ptr<Session> session_;
  uint64_t quota_;
};

Status CheckNames(const std::string& share, const std::string& id) {
  COFFER_RETURN_IF_ERROR(CheckEncodable(id, "object id"));
  return CheckEncodable(share, "share name");
}

// CREATE and PUT carry the same fields: open flags, the object's attributes, the names, the data.
Bytes WriteRequest(Op op, const std::string& share, const std::string& id, uint32_t flags, const CreateAttrs& attrs,
                   ByteSpan data) {
  Bytes req = Encode(op);
  AppendLe32(req, flags);
  AppendLe32(req, attrs.object_flags);
  AppendLe32(req, attrs.user_flags);
  AppendLe64(req, attrs.user_capacity);
  PutStr8(req, share);
  PutStr8(req, id);
  Append(req, data);
  return req;
}

class SocketConnection : public ObjectConnection {
 public:
  explicit SocketConnection(int fd) : fd_(fd) {}
  ~SocketConnection() override {
    ring_.reset();  // unmaps before the socket closes (the daemon then ends the connection)
    ::close(fd_);
  }
  void UseRing(RingClient ring) { ring_ = std::make_unique<RingClient>(std::move(ring)); }
  const char* transport() const override { return ring_ ? "shared-memory" : "socket"; }

  Result<uint32_t> Create(const std::string& share, const std::string& id, uint32_t flags,
                          const CreateAttrs& attrs, ByteSpan initial) override {
    COFFER_RETURN_IF_ERROR(CheckNames(share, id));
    if (initial.size() > kMaxChunk) return InvalidArgument("initial data above 1 MiB: write it in chunks");
    COFFER_ASSIGN_OR_RETURN(ByteSpan resp, Call(WriteRequest(Op::kCreate, share, id, flags, attrs, initial)));
    return U32At(resp);
  }
  Result<ObjectContents> ReadObject(const std::string& share, const std::string& id, uint64_t offset,
                                    size_t max_length) override {
    if (max_length > kMaxChunk) return ObjectConnection::ReadObject(share, id, offset, max_length);
    COFFER_RETURN_IF_ERROR(CheckNames(share, id));
    Bytes req = Encode(Op::kGet);
    AppendLe32(req, kAccessRead | kShareRead);
    PutStr8(req, share);
    PutStr8(req, id);
    AppendLe64(req, offset);
    AppendLe32(req, uint32_t(max_length));
    COFFER_ASSIGN_OR_RETURN(ByteSpan resp, Call(req));
    Reader r(resp);
    ObjectContents c;
    if (!r.U64(c.meta.size) || !r.U32(c.meta.object_flags) || !r.U32(c.meta.user_flags) ||
        !r.U64(c.meta.user_capacity) || !r.U32(c.meta.owner_uid)) {
      return Corrupt("object daemon sent a malformed GET answer");
    }
    ByteSpan rest = r.Rest();
    if (rest.size() > max_length) return Corrupt("object daemon answered GET with too many bytes");
    // The one copy on the client: from the receive buffer (or the ring) into the caller's object.
    c.data.assign(rest.begin(), rest.end());
    return c;
  }
  Status WriteObject(const std::string& share, const std::string& id, uint32_t flags, const CreateAttrs& attrs,
                     ByteSpan data) override {
    if (data.size() > kMaxChunk) return ObjectConnection::WriteObject(share, id, flags, attrs, data);
    COFFER_RETURN_IF_ERROR(CheckNames(share, id));
    return Call(WriteRequest(Op::kPut, share, id, flags, attrs, data)).status();
  }
  Result<uint32_t> Open(const std::string& share, const std::string& id, uint32_t flags) override {
    COFFER_RETURN_IF_ERROR(CheckNames(share, id));
    Bytes req = Encode(Op::kOpen);
    AppendLe32(req, flags);
    PutStr8(req, share);
    PutStr8(req, id);
    COFFER_ASSIGN_OR_RETURN(ByteSpan resp, Call(req));
    return U32At(resp);
  }
  Result<size_t> Read(uint32_t h, MutableByteSpan out) override {
    size_t total = 0;
    while (total < out.size()) {
      uint32_t want = uint32_t(std::min<size_t>(out.size() - total, kMaxChunk));
      Bytes req = Encode(Op::kRead);
      AppendLe32(req, h);
      AppendLe32(req, want);
      COFFER_ASSIGN_OR_RETURN(ByteSpan resp, Call(req));
      if (resp.size() > want) return Corrupt("object daemon answered READ with too many bytes");
      std::copy(resp.begin(), resp.end(), out.begin() + total);
      total += resp.size();
      if (resp.size() < want) break;
    }
    return total;
  }
  Status Write(uint32_t h, ByteSpan data) override {
    do {
      size_t n = std::min<size_t>(data.size(), kMaxChunk);
      Bytes req = Encode(Op::kWrite);
      AppendLe32(req, h);
      Append(req, data.first(n));
      COFFER_RETURN_IF_ERROR(Call(req).status());
      data = data.subspan(n);
    } while (!data.empty());
    return Status::Ok();
  }
  Result<uint64_t> Seek(uint32_t h, int64_t off, Whence w) override {
    Bytes req = Encode(Op::kSeek);
    AppendLe32(req, h);
    AppendLe64(req, uint64_t(off));
    PutU8(req, uint8_t(w));
    COFFER_ASSIGN_OR_RETURN(ByteSpan resp, Call(req));
    if (resp.size() != 8) return Corrupt("object daemon sent a malformed SEEK answer");
    return GetLe64(resp.data());
  }
  Status Truncate(uint32_t h, uint64_t size) override {
    Bytes req = Encode(Op::kTruncate);
    AppendLe32(req, h);
    AppendLe64(req, size);
    return Call(req).status();
  }
  Status Rename(uint32_t h, const std::string& id) override {
    COFFER_RETURN_IF_ERROR(CheckEncodable(id, "new object id"));
    Bytes req = Encode(Op::kRename);
    AppendLe32(req, h);
    PutStr8(req, id);
    return Call(req).status();
  }
  Status Close(uint32_t h) override { return Simple(Op::kClose, h); }
  Status CloseAndDelete(uint32_t h) override { return Simple(Op::kCloseAndDelete, h); }
  Result<HandleInfo> Info(uint32_t h) override {
    Bytes req = Encode(Op::kInfo);
    AppendLe32(req, h);
    COFFER_ASSIGN_OR_RETURN(ByteSpan resp, Call(req));
    Reader r(resp);
    HandleInfo info;
    if (!r.U64(info.meta.size) || !r.U64(info.position) || !r.U32(info.access) ||
        !r.U32(info.meta.object_flags) || !r.U32(info.meta.user_flags) || !r.U64(info.meta.user_capacity) ||
        !r.U32(info.meta.owner_uid) || !r.Str8(info.id) || !r.Done()) {
      return Corrupt("object daemon sent a malformed INFO answer");
    }
    return info;
  }
  Result<EnumPage> Enumerate(const std::string& share, const std::string& after, size_t max_ids) override {
    COFFER_RETURN_IF_ERROR(CheckEncodable(share, "share name"));
    COFFER_RETURN_IF_ERROR(CheckEncodable(after, "cursor"));
    Bytes req = Encode(Op::kEnumerate);
    PutStr8(req, share);
    PutStr8(req, after);
    AppendLe32(req, uint32_t(std::min<size_t>(max_ids, UINT32_MAX)));
    COFFER_ASSIGN_OR_RETURN(ByteSpan resp, Call(req));
    Reader r(resp);
    uint8_t more;
    uint32_t count;
    EnumPage page;
    if (!r.U8(more) || !r.U32(count)) return Corrupt("object daemon sent a malformed ENUMERATE answer");
    page.more = more != 0;
    for (uint32_t i = 0; i < count; ++i) {
      std::string id;
      if (!r.Str8(id)) return Corrupt("object daemon sent a malformed ENUMERATE answer");
      page.ids.push_back(std::move(id));
    }
    if (!r.Done()) return Corrupt("object daemon sent a malformed ENUMERATE answer");
    return page;
  }
  Result<Usage> GetUsage(const std::string& share) override {
    COFFER_RETURN_IF_ERROR(CheckEncodable(share, "share name"));
    Bytes req = Encode(Op::kUsage);
    PutStr8(req, share);
    COFFER_ASSIGN_OR_RETURN(ByteSpan resp, Call(req));
    if (resp.size() != 16) return Corrupt("object daemon sent a malformed USAGE answer");
    return Usage{GetLe64(resp.data()), GetLe64(resp.data() + 8)};
  }

 private:
  Status Simple(Op op, uint32_t h) {
    Bytes req = Encode(op);
    AppendLe32(req, h);
    return Call(req).status();
  }
  static Result<uint32_t> U32At(ByteSpan resp) {
    if (resp.size() != 4) return Corrupt("object daemon sent a malformed handle");
    return GetLe32(resp.data());
  }
  // Sends a request, returns the payload after the status (or the status as an error). The span
  // points into the connection's receive buffer (or the ring) and is valid until the next call.
  Result<ByteSpan> Call(ByteSpan req) {
    if (broken_) return Unavailable("the connection to the object daemon was lost");
    ByteSpan resp;
    Status st;
    if (ring_) {
      st = ring_->Call(req, resp);
    } else {
      st = WriteFrame(fd_, req);
      if (st.ok()) st = reader_.Read(resp);
    }
    if (!st.ok()) {
      broken_ = true;
      return Unavailable("lost the connection to the object daemon: " + st.message());
    }
    Reader r(resp);
    uint8_t version, code;
    std::string msg;
    if (!r.U8(version) || !r.U8(code) || !r.Str16(msg)) return Corrupt("object daemon sent a malformed answer");
    if (version != kProtocolVersion) return Unsupported("object daemon speaks protocol version " + std::to_string(version));
    if (code != 0) {
      if (code > uint8_t(StatusCode::kInternal)) return Corrupt("object daemon sent an unknown status code");
      return Status(static_cast<StatusCode>(code), msg.empty() ? "object daemon refused the request" : msg);
    }
    return r.Rest();
  }
  int fd_;
  FrameReader reader_{fd_};
  std::unique_ptr<RingClient> ring_;
  bool broken_ = false;
};

}  // namespace

std::unique_ptr<ObjectConnection> NewLocalConnection(ObjectStore& store, uint32_t uid, uint64_t quota) {
  return std::make_unique<LocalConnection>(store, uid, quota);
}

Result<std::unique_ptr<ObjectConnection>> ConnectObjectDaemon(const std::string& path, ConnectOptions options) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument("socket path '" + path + "' is empty or longer than 107 bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    ::close(fd);
    Status st = ErrnoStatus("connecting to the object daemon at " + path, err);
    return Status(StatusCode::kUnavailable, st.message());
  }
  SetLargeSocketBuffers(fd);
  auto conn = std::make_unique<SocketConnection>(fd);
  if (options.shared_memory) {
    auto ring = RingClient::Negotiate(fd);
    if (ring.ok()) {
      conn->UseRing(std::move(ring).value());
    } else if (ring.status().code() != StatusCode::kUnsupported) {
      return ring.status();  // the daemon offered a ring that could not be used, or hung up
    }
  }
  return std::unique_ptr<ObjectConnection>(std::move(conn));
}

Result<std::vector<std::string>> ListAll(ObjectConnection& conn, const std::string& share) {
  std::vector<std::string> all;
  std::string after;
  while (true) {
    COFFER_ASSIGN_OR_RETURN(auto page, conn.Enumerate(share, after, 4096));
    all.insert(all.end(), page.ids.begin(), page.ids.end());
    if (!page.more || page.ids.empty()) break;
    after = page.ids.back();
  }
  return all;
}

}  // namespace coffer::objects
