// The object daemon's shared-memory transport (docs/format/object_ring.md): a per-connection memfd
// holding one request slot and one answer slot, negotiated over the Unix socket (op ATTACH_RING, fd
// passed with SCM_RIGHTS). The client is untrusted: the daemon copies each request out of the
// mapping before parsing it and never reads an offset or length from it without bounding it.
// SharedRing owns its mapping and fd; RingClient is used by one thread at a time; ServeRing runs on
// the connection's own thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"
#include "coffer/objects/store.h"

namespace coffer::objects {

inline constexpr uint32_t kRingMagic = 0x47524f43;  // "CORG" in file order
inline constexpr uint32_t kRingVersion = 1;
inline constexpr size_t kRingHeaderSize = 4096;
// Header word offsets (each a u32 LE; the *_seq words are futex words).
inline constexpr size_t kRingOffMagic = 0, kRingOffVersion = 4, kRingOffHeaderSize = 8, kRingOffSlotSize = 12,
                        kRingOffRequestArea = 16, kRingOffAnswerArea = 20, kRingOffTotalSize = 24;
inline constexpr size_t kRingOffRequestSeq = 64, kRingOffRequestLen = 68, kRingOffServerSleeping = 72;
inline constexpr size_t kRingOffAnswerSeq = 128, kRingOffAnswerLen = 132, kRingOffClientWaiting = 136;

// The most each side spins on the shared words before sleeping (daemon: poll() on the socket;
// client: futex). Spinning happens only right after activity and stops after a miss
// (AdaptiveSpin), so an idle daemon uses no CPU.
struct RingSpin {
  uint32_t server_spin_us = 50;
  uint32_t client_spin_us = 50;
};

// How long one side spins next time. A wait that ended while spinning keeps the full budget; a few
// misses in a row (the peer was slow, idle, or not even running because the CPUs are busy) stop
// spinning, and only every 32nd wait after that probes with a quarter budget. So spinning costs
// nothing on a loaded machine or an idle connection, and comes back when answers are quick again;
// a lone miss (a timer tick or a kernel thread taking the CPU for a moment) does not stop it.
class AdaptiveSpin {
 public:
  static constexpr uint32_t kMissesToStop = 3;
  explicit AdaptiveSpin(uint32_t max_us) : max_us_(max_us) {}
  uint32_t Budget() {
    if (misses_in_row_ < kMissesToStop) return max_us_;
    if (++waits_since_probe_ >= 32) {
      waits_since_probe_ = 0;
      return max_us_ / 4;
    }
    return 0;
  }
  void Record(bool hit) {
    if (hit) {
      misses_in_row_ = 0;
      waits_since_probe_ = 0;
    } else if (misses_in_row_ < kMissesToStop) {
      misses_in_row_++;
    }
  }

 private:
  uint32_t max_us_;
  uint32_t misses_in_row_ = 0;
  uint32_t waits_since_probe_ = 0;
};

// One mapped ring.
class SharedRing {
 public:
  // Daemon side: a sealed memfd (cannot shrink or grow, so no access of the daemon can fault),
  // mapped, header written.
  static Result<SharedRing> Create();
  // Client side: maps fd (taking ownership) after checking its size and header.
  static Result<SharedRing> Attach(int fd);

  SharedRing(SharedRing&& other) noexcept;
  SharedRing& operator=(SharedRing&& other) noexcept;
  ~SharedRing();

  int fd() const { return fd_; }
  size_t size() const { return size_; }
  uint8_t* base() const { return base_; }
  size_t slot_size() const { return slot_size_; }
  uint8_t* request_area() const { return base_ + request_off_; }
  uint8_t* answer_area() const { return base_ + answer_off_; }
  std::atomic_ref<uint32_t> Word(size_t offset) const {
    return std::atomic_ref<uint32_t>(*reinterpret_cast<uint32_t*>(base_ + offset));
  }

 private:
  SharedRing() = default;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0, slot_size_ = 0, request_off_ = 0, answer_off_ = 0;
};

// The client half of a ring connection. Negotiate() sends ATTACH_RING on `sock` (which stays
// open: the daemon watches it for hang-up and it carries wake-up bytes).
class RingClient {
 public:
  // kUnsupported when the daemon does not offer the ring (old version or disabled): use the socket.
  static Result<RingClient> Negotiate(int sock, RingSpin spin = {});
  // Sends one request body; `answer` is set to the whole answer body, inside the ring (valid until
  // the next call).
  Status Call(ByteSpan request, ByteSpan& answer);
  SharedRing& ring() { return ring_; }  // tests scribble on it

 private:
  RingClient(int sock, SharedRing ring, RingSpin spin)
      : sock_(sock), ring_(std::move(ring)), spin_(spin), adapt_(spin.client_spin_us) {}
  bool DaemonGone();
  int sock_;
  SharedRing ring_;
  RingSpin spin_;
  AdaptiveSpin adapt_;
  uint32_t seq_ = 0;
};

// Daemon side, given an ATTACH_RING request body read from `sock`: checks it, creates the ring,
// answers with its fd, then serves requests from the ring on `session` until the client hangs up,
// breaks the ring (an impossible length) or `stopping` is set. `attached` says whether the ring was
// handed over: if not, an error answer went out on the socket and the socket protocol goes on;
// if so, the connection is over when this returns (OK for a hang-up).
Status ServeRing(int sock, Session& session, ByteSpan attach_request, uint64_t quota_bytes,
                 const std::atomic<bool>& stopping, bool& attached, RingSpin spin = {});

}  // namespace coffer::objects
