// Test helper: every ObjectBackend this build has, so store tests run on each (memory always;
// littlefs on a MemoryBlockDevice when the fs module is built).
#pragma once

#include <functional>
#include <ostream>
#include <memory>
#include <string>
#include <vector>

#include "coffer/objects/store.h"

namespace coffer::objects {

// Owns what a backend borrows (device, filesystem) and hands the backend out once.
class BackendHolder {
 public:
  virtual ~BackendHolder() = default;
  virtual std::unique_ptr<ObjectBackend> TakeBackend() = 0;
};

struct BackendFactory {
  std::string name;
  std::function<std::unique_ptr<BackendHolder>()> make;
};

std::vector<BackendFactory> AllBackendFactories();
inline void PrintTo(const BackendFactory& f, std::ostream* os) { *os << f.name; }

}  // namespace coffer::objects
