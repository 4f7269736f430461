// ObjectBackend in RAM: for tests of the protocol, daemon and semantics, and the volatile PSA store.
#include <algorithm>
#include <map>

#include "coffer/objects/store.h"

namespace coffer::objects {
namespace {

class MemoryBackend : public ObjectBackend {
 public:
  Result<ObjectMeta> Stat(const std::string& ns, const std::string& id) override {
    COFFER_ASSIGN_OR_RETURN(auto* o, Find(ns, id));
    ObjectMeta m = o->meta;
    m.size = o->data.size();
    return m;
  }
  Status Create(const std::string& ns, const std::string& id, const ObjectMeta& meta) override {
    auto& space = spaces_[ns];
    if (space.count(id)) return AlreadyExists("object exists");
    space[id].meta = meta;
    return Status::Ok();
  }
  Result<size_t> Read(const std::string& ns, const std::string& id, uint64_t offset,
                      MutableByteSpan out) override {
    COFFER_ASSIGN_OR_RETURN(auto* o, Find(ns, id));
    if (offset >= o->data.size()) return size_t{0};
    size_t n = std::min<uint64_t>(out.size(), o->data.size() - offset);
    std::copy_n(o->data.begin() + offset, n, out.begin());
    return n;
  }
  Status Write(const std::string& ns, const std::string& id, uint64_t offset, ByteSpan data) override {
    COFFER_ASSIGN_OR_RETURN(auto* o, Find(ns, id));
    if (o->data.size() < offset + data.size()) o->data.resize(offset + data.size(), 0);
    std::copy(data.begin(), data.end(), o->data.begin() + offset);
    return Status::Ok();
  }
  Status Truncate(const std::string& ns, const std::string& id, uint64_t size) override {
    COFFER_ASSIGN_OR_RETURN(auto* o, Find(ns, id));
    o->data.resize(size, 0);
    return Status::Ok();
  }
  Status Remove(const std::string& ns, const std::string& id) override {
    auto it = spaces_.find(ns);
    if (it == spaces_.end() || !it->second.erase(id)) return NotFound("no such object");
    return Status::Ok();
  }
  Status Rename(const std::string& from_ns, const std::string& from_id, const std::string& to_ns,
                const std::string& to_id, bool replace) override {
    COFFER_ASSIGN_OR_RETURN(auto* o, Find(from_ns, from_id));
    auto& target = spaces_[to_ns];
    if (target.count(to_id) && !replace) return AlreadyExists("target object exists");
    Object moved = std::move(*o);
    spaces_[from_ns].erase(from_id);
    target[to_id] = std::move(moved);
    return Status::Ok();
  }
  Status Flush(const std::string& ns, const std::string& id) override {
    return Find(ns, id).status();
  }
  Result<std::vector<std::string>> List(const std::string& ns) override {
    std::vector<std::string> ids;
    auto it = spaces_.find(ns);
    if (it != spaces_.end()) {
      for (const auto& [id, o] : it->second) ids.push_back(id);
    }
    return ids;
  }
  Status Clear(const std::string& ns) override {
    spaces_.erase(ns);
    return Status::Ok();
  }

 private:
  struct Object {
    ObjectMeta meta;
    Bytes data;
  };
  Result<Object*> Find(const std::string& ns, const std::string& id) {
    auto it = spaces_.find(ns);
    if (it == spaces_.end()) return NotFound("no such object");
    auto o = it->second.find(id);
    if (o == it->second.end()) return NotFound("no such object");
    return &o->second;
  }
  std::map<std::string, std::map<std::string, Object>> spaces_;
};

}  // namespace

std::unique_ptr<ObjectBackend> NewMemoryBackend() { return std::make_unique<MemoryBackend>(); }

}  // namespace coffer::objects
