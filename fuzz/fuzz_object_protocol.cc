// libFuzzer target: the object daemon's request decoder and dispatcher. The input is a sequence of
// request bodies (u16 LE length + bytes) run in order on one session of an in-memory store, so
// handles opened by early requests are exercised by later ones. Every answer must be well formed.
#include <cstdint>
#include <cstdlib>

#include "coffer/objects/local_store.h"
#include "coffer/objects/protocol.h"

using namespace coffer;
using namespace coffer::objects;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  StoreOptions options;
  options.quota_bytes = 1 << 20;
  options.shares["s"] = {1000};
  auto local = OpenMemoryStore(options);
  if (!local.ok()) abort();
  auto session = (*local)->store().NewSession(1000);
  size_t pos = 0;
  while (pos + 2 <= size) {
    size_t n = GetLe16(data + pos);
    pos += 2;
    if (n > size - pos) n = size - pos;
    Bytes answer = HandleRequest(*session, ByteSpan(data + pos, n), options.quota_bytes);
    pos += n;
    if (answer.size() < 4 || answer[0] != kProtocolVersion || answer.size() > kMaxFrame) abort();
    size_t msg = GetLe16(&answer[2]);
    if (4 + msg > answer.size()) abort();
    if (answer[1] > uint8_t(StatusCode::kInternal)) abort();
    if (answer[1] != 0 && answer.size() != 4 + msg) abort();  // errors carry no payload
  }
  return 0;
}
