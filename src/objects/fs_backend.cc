// ObjectBackend over coffer's littlefs (docs/format/object_store.md): one file per object at
// /objects/<ns>/<hex of id>, a 32-byte header before the data, atomic replacement by littlefs
// rename. Keeps a few files open (littlefs path lookups are the expensive part).
#include "coffer/objects/fs_backend.h"

#include <map>

#include "coffer/base/bytes.h"

namespace coffer::objects {
namespace {

constexpr char kRoot[] = "/objects";
constexpr uint32_t kHeaderSize = 32;
constexpr uint8_t kMagic[4] = {'C', 'O', 'B', 'J'};
constexpr uint16_t kFormatVersion = 1;
constexpr size_t kMaxOpenFiles = 16;

Bytes EncodeHeader(const ObjectMeta& m) {
  Bytes h(kHeaderSize, 0);
  std::copy(kMagic, kMagic + 4, h.begin());
  PutLe16(&h[4], kFormatVersion);
  PutLe16(&h[6], kHeaderSize);
  PutLe32(&h[8], m.object_flags);
  PutLe32(&h[12], m.user_flags);
  PutLe64(&h[16], m.user_capacity);
  PutLe32(&h[24], m.owner_uid);
  return h;
}

Result<ObjectMeta> DecodeHeader(const uint8_t* h, const std::string& path) {
  if (!std::equal(kMagic, kMagic + 4, h)) return Corrupt(path + ": not an object file (bad magic)");
  if (GetLe16(h + 4) != kFormatVersion) {
    return Unsupported(path + ": object format version " + std::to_string(GetLe16(h + 4)) + " is not supported");
  }
  if (GetLe16(h + 6) != kHeaderSize) return Corrupt(path + ": bad object header size");
  ObjectMeta m;
  m.object_flags = GetLe32(h + 8);
  m.user_flags = GetLe32(h + 12);
  m.user_capacity = GetLe64(h + 16);
  m.owner_uid = GetLe32(h + 24);
  return m;
}

class FsBackend : public ObjectBackend {
 public:
  explicit FsBackend(fs::Filesystem& fs) : fs_(fs) {}
  ~FsBackend() override { CloseAll(); }

  Result<ObjectMeta> Stat(const std::string& ns, const std::string& id) override {
    COFFER_ASSIGN_OR_RETURN(Open * o, Get(Path(ns, id)));
    COFFER_ASSIGN_OR_RETURN(uint32_t size, o->file.Size());
    ObjectMeta m = o->meta;
    m.size = size - kHeaderSize;
    return m;
  }

  Status Create(const std::string& ns, const std::string& id, const ObjectMeta& meta) override {
    Status mk = fs_.Mkdir(std::string(kRoot) + "/" + ns);
    if (!mk.ok() && mk.code() != StatusCode::kAlreadyExists) return mk;
    std::string path = Path(ns, id);
    Drop(path);
    COFFER_ASSIGN_OR_RETURN(fs::File f, fs_.Open(path, fs::kRdWr | fs::kCreat | fs::kExcl));
    Bytes h = EncodeHeader(meta);
    COFFER_ASSIGN_OR_RETURN(size_t n, f.Write(h));
    if (n != h.size()) return IoError(path + ": short header write");
    MakeRoom();
    ObjectMeta m = meta;
    m.size = 0;
    open_.emplace(path, Open{std::move(f), m});
    return Status::Ok();
  }

  Result<size_t> Read(const std::string& ns, const std::string& id, uint64_t offset, MutableByteSpan out) override {
    COFFER_ASSIGN_OR_RETURN(Open * o, Get(Path(ns, id)));
    if (offset > UINT32_MAX - kHeaderSize) return size_t{0};
    COFFER_RETURN_IF_ERROR(o->file.Seek(int64_t(offset + kHeaderSize), fs::Whence::kSet).status());
    size_t total = 0;
    while (total < out.size()) {
      COFFER_ASSIGN_OR_RETURN(size_t n, o->file.Read(out.subspan(total)));
      if (n == 0) break;
      total += n;
    }
    return total;
  }

  Status Write(const std::string& ns, const std::string& id, uint64_t offset, ByteSpan data) override {
    COFFER_ASSIGN_OR_RETURN(Open * o, Get(Path(ns, id)));
    if (offset + data.size() > UINT32_MAX / 2 - kHeaderSize) return OutOfRange("object too large for littlefs");
    COFFER_RETURN_IF_ERROR(o->file.Seek(int64_t(offset + kHeaderSize), fs::Whence::kSet).status());
    while (!data.empty()) {
      COFFER_ASSIGN_OR_RETURN(size_t n, o->file.Write(data));
      if (n == 0) return IoError("littlefs wrote nothing");
      data = data.subspan(n);
    }
    return Status::Ok();
  }

  Status Truncate(const std::string& ns, const std::string& id, uint64_t size) override {
    COFFER_ASSIGN_OR_RETURN(Open * o, Get(Path(ns, id)));
    if (size > UINT32_MAX / 2 - kHeaderSize) return OutOfRange("object too large for littlefs");
    return o->file.Truncate(uint32_t(size + kHeaderSize));
  }

  Status Remove(const std::string& ns, const std::string& id) override {
    std::string path = Path(ns, id);
    Drop(path);
    return fs_.Remove(path);
  }

  Status Rename(const std::string& from_ns, const std::string& from_id, const std::string& to_ns,
                const std::string& to_id, bool replace) override {
    std::string from = Path(from_ns, from_id), to = Path(to_ns, to_id);
    COFFER_RETURN_IF_ERROR(Close(from));
    Drop(to);
    if (!replace) {
      auto st = fs_.Stat(to);
      if (st.ok()) return AlreadyExists("target object exists");
      if (st.status().code() != StatusCode::kNotFound) return st.status();
    }
    Status mk = fs_.Mkdir(std::string(kRoot) + "/" + to_ns);
    if (!mk.ok() && mk.code() != StatusCode::kAlreadyExists) return mk;
    // littlefs renames atomically, replacing an existing file in the same commit.
    return fs_.Rename(from, to);
  }

  Status Flush(const std::string& ns, const std::string& id) override {
    auto it = open_.find(Path(ns, id));
    if (it == open_.end()) return fs_.Stat(Path(ns, id)).status();
    return it->second.file.Sync();
  }

  Result<std::vector<std::string>> List(const std::string& ns) override {
    std::vector<std::string> ids;
    auto dir = fs_.OpenDir(std::string(kRoot) + "/" + ns);
    if (!dir.ok()) {
      if (dir.status().code() == StatusCode::kNotFound) return ids;
      return dir.status();
    }
    while (true) {
      COFFER_ASSIGN_OR_RETURN(auto e, dir->Read());
      if (!e) break;
      if (e->type != fs::EntryType::kFile) continue;
      auto raw = HexDecode(e->name);
      if (!raw.ok() || raw->empty()) continue;  // not one of ours (e.g. a staging token)
      ids.emplace_back(raw->begin(), raw->end());
    }
    return ids;
  }

  Status Clear(const std::string& ns) override {
    std::string dir_path = std::string(kRoot) + "/" + ns;
    std::vector<std::string> names;
    {
      auto dir = fs_.OpenDir(dir_path);
      if (!dir.ok()) return dir.status().code() == StatusCode::kNotFound ? Status::Ok() : dir.status();
      while (true) {
        COFFER_ASSIGN_OR_RETURN(auto e, dir->Read());
        if (!e) break;
        if (e->type == fs::EntryType::kFile) names.push_back(e->name);
      }
    }
    for (const auto& n : names) {
      Drop(dir_path + "/" + n);
      COFFER_RETURN_IF_ERROR(fs_.Remove(dir_path + "/" + n));
    }
    return Status::Ok();
  }

 private:
  struct Open {
    fs::File file;
    ObjectMeta meta;
  };

  // Object ids are raw bytes: hex keeps every byte value (NUL, '/', "..") out of the path syntax.
  // Staging tokens (store-chosen digits) use a "~" prefix so they never parse as hex ids.
  static std::string Path(const std::string& ns, const std::string& id) {
    if (ns == "t") return std::string(kRoot) + "/t/~" + id;
    return std::string(kRoot) + "/" + ns + "/" + HexEncode(AsBytes(id));
  }

  Result<Open*> Get(const std::string& path) {
    auto it = open_.find(path);
    if (it != open_.end()) return &it->second;
    auto f = fs_.Open(path, fs::kRdWr);
    if (!f.ok()) {
      if (f.status().code() == StatusCode::kNotFound) return NotFound("no such object");
      return f.status();
    }
    uint8_t h[kHeaderSize];
    COFFER_ASSIGN_OR_RETURN(size_t n, f->Read(h));
    if (n != kHeaderSize) return Corrupt(path + ": object file shorter than its header");
    COFFER_ASSIGN_OR_RETURN(ObjectMeta meta, DecodeHeader(h, path));
    MakeRoom();
    auto [pos, inserted] = open_.emplace(path, Open{std::move(f).value(), meta});
    return &pos->second;
  }

  void MakeRoom() {
    while (open_.size() >= kMaxOpenFiles) {
      (void)open_.begin()->second.file.Close();
      open_.erase(open_.begin());
    }
  }
  Status Close(const std::string& path) {
    auto it = open_.find(path);
    if (it == open_.end()) return Status::Ok();
    Status st = it->second.file.Close();
    open_.erase(it);
    return st;
  }
  void Drop(const std::string& path) { (void)Close(path); }
  void CloseAll() {
    for (auto& [p, o] : open_) (void)o.file.Close();
    open_.clear();
  }

  fs::Filesystem& fs_;
  std::map<std::string, Open> open_;

 public:
  Status Init() {
    Status mk = fs_.Mkdir(kRoot);
    if (!mk.ok() && mk.code() != StatusCode::kAlreadyExists) return mk;
    return Status::Ok();
  }
  Status Sync() {
    Status first;
    for (auto& [p, o] : open_) {
      Status st = o.file.Sync();
      if (first.ok()) first = st;
    }
    return first;
  }
};

}  // namespace

Result<std::unique_ptr<ObjectBackend>> NewFsBackend(fs::Filesystem& fs) {
  auto b = std::make_unique<FsBackend>(fs);
  COFFER_RETURN_IF_ERROR(b->Init());
  return std::unique_ptr<ObjectBackend>(std::move(b));
}

Status FormatIfBlank(BlockDevice& device) {
  const BlockGeometry& g = device.geometry();
  if (g.block_count < 2) return InvalidArgument("device too small for littlefs (needs 2 blocks or more)");
  Bytes buf(g.block_size);
  bool blank = true;
  for (uint32_t b = 0; b < 2 && blank; ++b) {
    COFFER_RETURN_IF_ERROR(device.Read(b, 0, buf));
    uint8_t first = buf[0];
    if (first != 0x00 && first != 0xff) blank = false;
    for (uint8_t v : buf) {
      if (v != first) {
        blank = false;
        break;
      }
    }
  }
  if (!blank) return Status::Ok();
  fs::Config config;
  return fs::Filesystem::Format(device, config).WithContext("formatting the object volume");
}

}  // namespace coffer::objects
