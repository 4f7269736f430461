// The backends the store tests run on.
#include "objects/store_test_backends.h"

namespace coffer::objects {
namespace {

class MemoryHolder : public BackendHolder {
 public:
  std::unique_ptr<ObjectBackend> TakeBackend() override { return NewMemoryBackend(); }
};

}  // namespace

std::vector<BackendFactory> AllBackendFactories() {
  std::vector<BackendFactory> out;
  out.push_back({"Memory", [] { return std::unique_ptr<BackendHolder>(new MemoryHolder()); }});
  return out;
}

}  // namespace coffer::objects
