// The shared-memory ring: memfd creation and sealing, the client's attach and call, the daemon's
// serving loop. Layout and rules: docs/format/object_ring.md; threat reasoning: docs/objects.md.
#include "coffer/objects/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>

#include "coffer/objects/protocol.h"

namespace coffer::objects {
namespace {

constexpr size_t kSlotSize = (size_t(kMaxFrame) + 4095) / 4096 * 4096;
constexpr size_t kRingSize = kRingHeaderSize + 2 * kSlotSize;

using Clock = std::chrono::steady_clock;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Shared (not FUTEX_PRIVATE) futex operations: the word lives in a MAP_SHARED mapping of another process.
int FutexWait(uint32_t* addr, uint32_t expected, int timeout_ms) {
  timespec ts{timeout_ms / 1000, long(timeout_ms % 1000) * 1000000L};
  return int(::syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, nullptr, 0));
}
void FutexWake(uint32_t* addr) { (void)::syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0); }

// Spins until pred() or `us` microseconds pass. The clock is read only from the 64th turn on (a
// quick answer costs no clock reads), then every 64 turns.
template <typename Pred>
bool SpinFor(uint32_t us, Pred pred) {
  if (pred()) return true;
  if (us == 0) return false;
  Clock::time_point deadline;
  for (uint32_t i = 1;; ++i) {
    if (pred()) return true;
    CpuRelax();
    if ((i & 63) == 0) {
      auto now = Clock::now();
      if (i == 64) {
        deadline = now + std::chrono::microseconds(us);
      } else if (now >= deadline) {
        return pred();
      }
    }
  }
}

}  // namespace

Result<SharedRing> SharedRing::Create() {
  int fd = ::memfd_create("coffer-object-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return ErrnoStatus("memfd_create for the object ring", errno);
  SharedRing ring;
  ring.fd_ = fd;
  if (::ftruncate(fd, off_t(kRingSize)) != 0) return ErrnoStatus("sizing the object ring", errno);
  // The client gets this fd and could ftruncate it: a shrunk file would make the daemon's next
  // access fault (SIGBUS). Sealing the size first makes that impossible.
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return ErrnoStatus("sealing the object ring", errno);
  }
  void* p = ::mmap(nullptr, kRingSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoStatus("mapping the object ring", errno);
  ring.base_ = static_cast<uint8_t*>(p);
  ring.size_ = kRingSize;
  ring.slot_size_ = kSlotSize;
  ring.request_off_ = kRingHeaderSize;
  ring.answer_off_ = kRingHeaderSize + kSlotSize;
  // The daemon writes the header once and never reads it back: its own copies above are what it uses.
  PutLe32(ring.base_ + kRingOffMagic, kRingMagic);
  PutLe32(ring.base_ + kRingOffVersion, kRingVersion);
  PutLe32(ring.base_ + kRingOffHeaderSize, uint32_t(kRingHeaderSize));
  PutLe32(ring.base_ + kRingOffSlotSize, uint32_t(kSlotSize));
  PutLe32(ring.base_ + kRingOffRequestArea, uint32_t(ring.request_off_));
  PutLe32(ring.base_ + kRingOffAnswerArea, uint32_t(ring.answer_off_));
  PutLe32(ring.base_ + kRingOffTotalSize, uint32_t(kRingSize));
  return ring;
}

Result<SharedRing> SharedRing::Attach(int fd) {
  SharedRing ring;
  ring.fd_ = fd;
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoStatus("examining the object ring", errno);
  if (st.st_size < off_t(kRingHeaderSize) || st.st_size > off_t(64u << 20)) {
    return Corrupt("the object daemon passed a ring of " + std::to_string(st.st_size) + " bytes");
  }
  size_t size = size_t(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoStatus("mapping the object ring", errno);
  ring.base_ = static_cast<uint8_t*>(p);
  ring.size_ = size;
  const uint8_t* h = ring.base_;
  if (GetLe32(h + kRingOffMagic) != kRingMagic) return Corrupt("the object ring has a bad magic");
  if (GetLe32(h + kRingOffVersion) != kRingVersion) {
    return Unsupported("object ring version " + std::to_string(GetLe32(h + kRingOffVersion)) + " (this client speaks 1)");
  }
  uint64_t header = GetLe32(h + kRingOffHeaderSize), slot = GetLe32(h + kRingOffSlotSize),
           req = GetLe32(h + kRingOffRequestArea), ans = GetLe32(h + kRingOffAnswerArea),
           total = GetLe32(h + kRingOffTotalSize);
  if (header != kRingHeaderSize || total != size || slot < kMaxFrame || req < header || ans < req + slot ||
      ans + slot > size) {
    return Corrupt("the object ring's header does not match its size");
  }
  ring.slot_size_ = size_t(slot);
  ring.request_off_ = size_t(req);
  ring.answer_off_ = size_t(ans);
  return ring;
}

SharedRing::SharedRing(SharedRing&& o) noexcept { *this = std::move(o); }

SharedRing& SharedRing::operator=(SharedRing&& o) noexcept {
  if (this != &o) {
    this->~SharedRing();
    fd_ = std::exchange(o.fd_, -1);
    base_ = std::exchange(o.base_, nullptr);
    size_ = std::exchange(o.size_, 0);
    slot_size_ = o.slot_size_;
    request_off_ = o.request_off_;
    answer_off_ = o.answer_off_;
  }
  return *this;
}

SharedRing::~SharedRing() {
  if (base_) ::munmap(base_, size_);
  if (fd_ >= 0) ::close(fd_);
  base_ = nullptr;
  fd_ = -1;
}

// ---- client ----

Result<RingClient> RingClient::Negotiate(int sock, RingSpin spin) {
  Bytes req = {kProtocolVersion, uint8_t(Op::kAttachRing)};
  AppendLe32(req, kRingVersion);
  COFFER_RETURN_IF_ERROR(WriteFrame(sock, req));
  // The answer's first bytes carry the fd (SCM_RIGHTS); read the length with recvmsg.
  uint8_t len[4];
  size_t got = 0;
  int passed = -1;
  while (got < 4) {
    struct iovec iov = {len + got, 4 - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    struct msghdr msg {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t k = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      if (passed >= 0) ::close(passed);
      return k == 0 ? IoError("the object daemon hung up") : ErrnoStatus("reading from the object socket", errno);
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < n; ++i) {
          int f;
          std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          if (passed < 0) {
            passed = f;
          } else {
            ::close(f);
          }
        }
      }
    }
    got += size_t(k);
  }
  auto fail = [&](Status st) {
    if (passed >= 0) ::close(passed);
    return st;
  };
  uint32_t n = GetLe32(len);
  if (n > kMaxFrame || n < 4) return fail(Corrupt("object daemon sent a malformed ATTACH_RING answer"));
  Bytes body(n);
  for (size_t off = 0; off < n;) {
    ssize_t k = ::read(sock, body.data() + off, n - off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return fail(IoError("the object daemon hung up in the middle of an answer"));
    off += size_t(k);
  }
  if (body[0] != kProtocolVersion) return fail(Unsupported("object daemon speaks another protocol version"));
  if (body[1] != 0) {
    // Older daemons answer "unknown operation code"; either way: no ring, keep the socket.
    size_t mlen = std::min<size_t>(GetLe16(&body[2]), n - 4);
    return fail(Unsupported("the object daemon does not offer the shared-memory ring: " +
                            std::string(reinterpret_cast<const char*>(&body[4]), mlen)));
  }
  if (n != 12 || GetLe32(&body[4]) != kRingVersion) return fail(Corrupt("object daemon sent a malformed ATTACH_RING answer"));
  if (passed < 0) return Corrupt("object daemon accepted ATTACH_RING but passed no ring");
  auto ring = SharedRing::Attach(passed);  // owns `passed` from here on
  if (!ring.ok()) return ring.status();
  if (ring->size() != GetLe32(&body[8])) return Corrupt("the object ring's size does not match the daemon's answer");
  return RingClient(sock, std::move(ring).value(), spin);
}

bool RingClient::DaemonGone() {
  pollfd p{sock_, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return true;
  uint8_t b;
  return ::recv(sock_, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

Status RingClient::Call(ByteSpan request, ByteSpan& answer) {
  if (request.size() > ring_.slot_size()) return InvalidArgument("request larger than the ring slot");
  std::memcpy(ring_.request_area(), request.data(), request.size());
  ring_.Word(kRingOffRequestLen).store(uint32_t(request.size()), std::memory_order_relaxed);
  uint32_t seq = ++seq_;
  ring_.Word(kRingOffRequestSeq).store(seq, std::memory_order_seq_cst);
  if (ring_.Word(kRingOffServerSleeping).load(std::memory_order_seq_cst) != 0) {
    uint8_t bell = 1;  // the daemon sleeps in poll() on the socket: one byte wakes it
    ssize_t k = ::send(sock_, &bell, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      return ErrnoStatus("waking the object daemon", errno);
    }
  }
  auto seq_word = ring_.Word(kRingOffAnswerSeq);
  auto done = [&] { return seq_word.load(std::memory_order_acquire) == seq; };
  bool spun = SpinFor(adapt_.Budget(), done);
  if (!spun) {
    auto waiting = ring_.Word(kRingOffClientWaiting);
    while (true) {
      waiting.store(1, std::memory_order_seq_cst);
      uint32_t now = seq_word.load(std::memory_order_seq_cst);
      if (now == seq) break;
      int r = FutexWait(reinterpret_cast<uint32_t*>(ring_.base() + kRingOffAnswerSeq), now, 100);
      if (r != 0 && errno == ETIMEDOUT && !done() && DaemonGone()) {
        return IoError("the object daemon hung up");
      }
    }
    waiting.store(0, std::memory_order_relaxed);
  }
  adapt_.Record(spun);
  uint32_t len = ring_.Word(kRingOffAnswerLen).load(std::memory_order_acquire);
  if (len > ring_.slot_size()) return Corrupt("object daemon wrote an answer larger than the ring slot");
  answer = ByteSpan(ring_.answer_area(), len);
  return Status::Ok();
}

// ---- daemon ----

Status ServeRing(int sock, Session& session, ByteSpan attach_request, uint64_t quota_bytes,
                 const std::atomic<bool>& stopping, bool& attached, RingSpin spin) {
  attached = false;
  if (attach_request.size() != 6) {
    return WriteFrame(sock, ErrorAnswer(InvalidArgument("malformed request: ATTACH_RING has a bad length")));
  }
  uint32_t want = GetLe32(attach_request.data() + 2);
  if (want != kRingVersion) {
    return WriteFrame(sock, ErrorAnswer(Unsupported("object ring version " + std::to_string(want) +
                                                    " is not supported (this daemon speaks 1)")));
  }
  auto created = SharedRing::Create();
  if (!created.ok()) {
    return WriteFrame(sock, ErrorAnswer(Unavailable("could not set up the shared-memory ring: " +
                                                    created.status().message())));
  }
  SharedRing ring = std::move(created).value();
  Bytes ok = {kProtocolVersion, 0, 0, 0};
  AppendLe32(ok, kRingVersion);
  AppendLe32(ok, uint32_t(ring.size()));
  COFFER_RETURN_IF_ERROR(WriteFrameWithFd(sock, ok, ring.fd()));
  attached = true;
  const size_t slot = ring.slot_size();  // the daemon's own values, never re-read from the header
  uint8_t* const request_area = ring.request_area();
  uint8_t* const answer_area = ring.answer_area();
  auto req_seq = ring.Word(kRingOffRequestSeq);
  auto req_len = ring.Word(kRingOffRequestLen);
  auto sleeping = ring.Word(kRingOffServerSleeping);
  auto ans_seq = ring.Word(kRingOffAnswerSeq);
  auto ans_len = ring.Word(kRingOffAnswerLen);
  auto waiting = ring.Word(kRingOffClientWaiting);
  uint32_t last = 0;
  Bytes request, answer;
  request.reserve(64 * 1024);
  answer.reserve(64 * 1024);
  auto publish = [&](uint32_t seq) {
    std::memcpy(answer_area, answer.data(), answer.size());
    ans_len.store(uint32_t(answer.size()), std::memory_order_relaxed);
    ans_seq.store(seq, std::memory_order_seq_cst);
    if (waiting.load(std::memory_order_seq_cst) != 0) FutexWake(reinterpret_cast<uint32_t*>(ring.base() + kRingOffAnswerSeq));
  };
  AdaptiveSpin adapt(spin.server_spin_us);
  while (!stopping.load(std::memory_order_relaxed)) {
    auto arrived = [&] { return req_seq.load(std::memory_order_acquire) != last; };
    bool spun = SpinFor(adapt.Budget(), arrived);
    adapt.Record(spun);
    if (!spun) {
      // Sleep on the socket, not a futex: poll() also sees the client hang up or die.
      sleeping.store(1, std::memory_order_seq_cst);
      if (req_seq.load(std::memory_order_seq_cst) == last) {
        pollfd p{sock, POLLIN, 0};
        int r = ::poll(&p, 1, 1000);
        if (r < 0 && errno != EINTR) return ErrnoStatus("waiting on the object socket", errno);
        if (r > 0) {
          uint8_t bells[256];  // wake-up bytes carry nothing; drain them
          ssize_t k = ::recv(sock, bells, sizeof(bells), MSG_DONTWAIT);
          if (k == 0) return Status::Ok();  // the client hung up (or died)
          if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return Status::Ok();
        }
      }
      sleeping.store(0, std::memory_order_relaxed);
      continue;
    }
    uint32_t seq = req_seq.load(std::memory_order_acquire);
    uint32_t len = req_len.load(std::memory_order_relaxed);  // read once; the client may change it
    last = seq;
    if (len > slot) {
      // No well-formed request can be this long: say why, then drop the ring (as for a frame).
      answer = ErrorAnswer(InvalidArgument("malformed request: ring request of " + std::to_string(len) +
                                           " bytes is larger than the slot of " + std::to_string(slot)));
      publish(seq);
      return InvalidArgument("client wrote an impossible ring request length");
    }
    // Copy out first: everything parsed below comes from daemon memory the client cannot touch.
    request.assign(request_area, request_area + len);
    HandleRequestInto(session, request, quota_bytes, answer);
    if (answer.size() > slot) answer = ErrorAnswer(Internal("answer larger than the ring slot"));
    publish(seq);
  }
  return Status::Ok();
}

}  // namespace coffer::objects
