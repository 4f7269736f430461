// libFuzzer target: the shared-memory ring's daemon half against arbitrary client writes. The input
// is a sequence of steps (u8 kind, u32 LE value, u16 LE length + bytes) that a hostile client applies
// to its mapping — request bytes, the length word, the sequence word, header words — each followed
// by a doorbell; the daemon (ServeRing on a thread, over a socketpair, on an in-memory store) must
// answer or drop the ring, never crash, and every answer it publishes must be well formed. The
// client's header check (SharedRing::Attach) is fed the input as a header too.
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "coffer/objects/local_store.h"
#include "coffer/objects/protocol.h"
#include "coffer/objects/ring.h"

using namespace coffer;
using namespace coffer::objects;

namespace {

void FuzzAttach(const uint8_t* data, size_t size) {
  int fd = ::memfd_create("fuzz-ring", MFD_CLOEXEC);
  if (fd < 0) abort();
  size_t total = 2 * kRingHeaderSize;
  if (size >= 28) total = std::min<size_t>(GetLe32(data + 24), 4u << 20);
  if (::ftruncate(fd, off_t(total)) != 0) abort();
  if (::pwrite(fd, data, std::min(size, total), 0) < 0) abort();
  auto ring = SharedRing::Attach(fd);  // owns fd
  if (ring.ok()) {
    if (ring->answer_area() + ring->slot_size() > ring->base() + ring->size()) abort();
    if (ring->request_area() + ring->slot_size() > ring->answer_area()) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzAttach(data, size);
  auto local = OpenMemoryStore();
  if (!local.ok()) abort();
  auto session = (*local)->store().NewSession(1000);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) abort();
  std::atomic<bool> stopping{false}, daemon_done{false};
  std::thread daemon([&] {
    Bytes attach;
    if (ReadFrame(sv[1], attach).ok()) {
      bool attached = false;
      (void)ServeRing(sv[1], *session, attach, 0, stopping, attached, RingSpin{0, 0});
    }
    daemon_done = true;
  });
  auto client = RingClient::Negotiate(sv[0], RingSpin{0, 0});
  if (!client.ok()) abort();
  SharedRing& ring = client->ring();
  size_t pos = 0;
  uint32_t seq = 0;
  while (pos + 7 <= size && !daemon_done) {
    uint8_t kind = data[pos];
    uint32_t value = GetLe32(data + pos + 1);
    size_t n = GetLe16(data + pos + 5);
    pos += 7;
    n = std::min(n, size - pos);
    switch (kind % 4) {
      case 0:  // a request body, posted with its true length
        std::memcpy(ring.request_area(), data + pos, n);
        ring.Word(kRingOffRequestLen).store(uint32_t(n));
        break;
      case 1:  // any length word
        ring.Word(kRingOffRequestLen).store(value);
        break;
      case 2: {  // any header word (offsets, sizes, flags) but the answer words this harness checks
        size_t off = (value % (kRingHeaderSize / 4)) * 4;
        if (off == kRingOffAnswerSeq || off == kRingOffAnswerLen) off = kRingOffClientWaiting;
        ring.Word(off).store(uint32_t(value * 2654435761u));
        break;
      }
      case 3:  // bytes anywhere in the request slot
        std::memcpy(ring.request_area() + (value % (ring.slot_size() - n + 1)), data + pos, n);
        break;
    }
    pos += n;
    ring.Word(kRingOffRequestSeq).store(++seq);
    uint8_t bell = 1;
    if (::send(sv[0], &bell, 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) break;
    // Wait (bounded) for the answer to this request, or for the daemon to drop the ring.
    for (int i = 0; i < 2000 && !daemon_done && ring.Word(kRingOffAnswerSeq).load() != seq; ++i) usleep(50);
    if (ring.Word(kRingOffAnswerSeq).load() == seq) {
      uint32_t len = ring.Word(kRingOffAnswerLen).load();
      if (len < 4 || len > ring.slot_size()) abort();
      const uint8_t* a = ring.answer_area();
      if (a[0] != kProtocolVersion || a[1] > uint8_t(StatusCode::kInternal)) abort();
      if (4u + GetLe16(a + 2) > len) abort();
    }
  }
  ::shutdown(sv[0], SHUT_RDWR);
  daemon.join();
  ::close(sv[0]);
  ::close(sv[1]);
  return 0;
}
