// libFuzzer target for the block host's request parsing and handling: the first input byte picks a
// parser (batch body, decimal parameter, volume name, URL, CIDR list, token file); batch bodies that
// parse are applied to a real VolumeStore in a temp directory and must never break its invariants.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "coffer/blockhost/protocol.h"
#include "coffer/blockhost/volume_store.h"
#include "coffer/net/net.h"

using namespace coffer;

namespace {
blockhost::VolumeStore* Store() {
  static blockhost::VolumeStore* store = [] {
    char tmpl[] = "/tmp/coffer-fuzz-host-XXXXXX";
    std::string dir = mkdtemp(tmpl);
    auto s = blockhost::VolumeStore::Open(dir, {});
    if (!s.ok()) std::abort();
    auto* p = s->release();
    if (!p->Create("v", 16, 64, "").ok()) std::abort();
    return p;
  }();
  return store;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::span<const uint8_t> rest(data + 1, size - 1);
  std::string text(reinterpret_cast<const char*>(rest.data()), rest.size());
  switch (data[0] % 6) {
    case 0: {
      auto b = blockhost::ParseBatch(rest);
      if (!b.ok()) break;
      if (b->writes.empty()) std::abort();
      auto r = Store()->ApplyBatch("v", *b, false);
      if (r.ok() && b->record_size != 16) std::abort();  // wrong geometry must be refused
      std::vector<uint8_t> out(16);
      if (r.ok() && !r->duplicate) {
        for (const auto& w : b->writes) {
          if (!Store()->Read("v", w.index, 1, out).ok() || std::memcmp(out.data(), w.data.data(), 16) != 0) std::abort();
        }
      }
      break;
    }
    case 1: {
      uint64_t v = 0;
      if (blockhost::ParseDecimal(text, v) && v != std::strtoull(text.c_str(), nullptr, 10)) std::abort();
      break;
    }
    case 2: (void)blockhost::IsValidVolumeName(text); break;
    case 3: (void)net::ParseUrl(text); break;
    case 4: {
      std::vector<std::string> entries;
      size_t start = 0;
      for (size_t i = 0; i <= text.size(); ++i) {
        if (i == text.size() || text[i] == ',') {
          entries.push_back(text.substr(start, i - start));
          start = i + 1;
        }
      }
      auto l = net::CidrAllowlist::Parse(entries);
      if (l.ok()) (void)l->Allows("127.0.0.1");
      break;
    }
    case 5: {
      auto t = net::TokenTable::Parse(text);
      if (t.ok()) (void)t->Identify("x");
      break;
    }
  }
  return 0;
}
