#include "coffer/rclone/manifest.h"

#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"

namespace coffer::rclone {
namespace {

constexpr size_t kMacSize = 32;
constexpr size_t kFixedHeader = 8 + 4 + 4 + 16 + 8 + 4;

void ManifestKey(const RcloneKeys& keys, uint8_t out[32]) {
  static constexpr char kLabel[] = "coffer rclone-crypt manifest key v1";
  crypto_auth_hmacsha256(out, reinterpret_cast<const uint8_t*>(kLabel), sizeof(kLabel) - 1, keys.data_key.reveal().data());
}

void Mac(const RcloneKeys& keys, ByteSpan body, uint8_t out[32]) {
  uint8_t key[32];
  ManifestKey(keys, key);
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, key, sizeof key);
  crypto_auth_hmacsha256_update(&st, body.data(), body.size());
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(key, sizeof key);
  sodium_memzero(&st, sizeof st);
}

}  // namespace

Bytes SerializeManifest(const Manifest& m, const RcloneKeys& keys) {
  Bytes out;
  out.insert(out.end(), kManifestMagic, kManifestMagic + 8);
  AppendLe32(out, kManifestVersion);
  AppendLe32(out, 0);  // flags
  out.insert(out.end(), m.folder_id.begin(), m.folder_id.end());
  AppendLe64(out, m.counter);
  AppendLe32(out, uint32_t(m.files.size()));
  for (auto& [path, e] : m.files) {
    uint8_t len[2];
    PutLe16(len, uint16_t(path.size()));
    out.insert(out.end(), len, len + 2);
    out.insert(out.end(), path.begin(), path.end());
    AppendLe64(out, e.plain_size);
    AppendLe64(out, e.encrypted_size);
    out.insert(out.end(), e.sha256.begin(), e.sha256.end());
  }
  uint8_t mac[kMacSize];
  Mac(keys, out, mac);
  out.insert(out.end(), mac, mac + kMacSize);
  return out;
}

Result<Manifest> ParseManifest(ByteSpan d, const RcloneKeys& keys) {
  if (d.size() < kFixedHeader + kMacSize) return Corrupt("manifest is too short");
  if (std::memcmp(d.data(), kManifestMagic, 8) != 0) return Corrupt("manifest has a bad magic (not a coffer crypt manifest)");
  uint32_t version = GetLe32(&d[8]);
  if (version != kManifestVersion)
    return Unsupported("manifest version " + std::to_string(version) + " is not supported (this coffer reads version 1)");
  uint8_t mac[kMacSize];
  Mac(keys, d.subspan(0, d.size() - kMacSize), mac);
  if (!ConstantTimeEquals(ByteSpan(mac, kMacSize), d.subspan(d.size() - kMacSize)))
    return DataLoss("manifest failed authentication (it was modified, or the password is wrong)");
  Manifest m;
  std::memcpy(m.folder_id.data(), &d[16], 16);
  m.counter = GetLe64(&d[32]);
  uint32_t count = GetLe32(&d[40]);
  size_t pos = kFixedHeader, end = d.size() - kMacSize;
  for (uint32_t i = 0; i < count; ++i) {
    if (pos + 2 > end) return Corrupt("manifest entry list is truncated");
    size_t len = GetLe16(&d[pos]);
    pos += 2;
    if (pos + len + 8 + 8 + 32 > end) return Corrupt("manifest entry list is truncated");
    std::string path(reinterpret_cast<const char*>(&d[pos]), len);
    pos += len;
    ManifestEntry e;
    e.plain_size = GetLe64(&d[pos]);
    e.encrypted_size = GetLe64(&d[pos + 8]);
    std::memcpy(e.sha256.data(), &d[pos + 16], 32);
    pos += 48;
    if (!m.files.emplace(std::move(path), e).second) return Corrupt("manifest lists a file twice");
  }
  if (pos != end) return Corrupt("manifest has trailing bytes");
  return m;
}

Result<ManifestEntry> HashEncryptedFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  crypto_hash_sha256_state st;
  crypto_hash_sha256_init(&st);
  std::vector<uint8_t> buf(1 << 20);
  ManifestEntry e;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return ErrnoStatus("read " + path, err);
    }
    if (n == 0) break;
    crypto_hash_sha256_update(&st, buf.data(), size_t(n));
    e.encrypted_size += uint64_t(n);
  }
  ::close(fd);
  crypto_hash_sha256_final(&st, e.sha256.data());
  return e;
}

Result<Manifest> BuildManifest(const std::string& root, const std::vector<std::string>& encrypted_paths,
                               const std::map<std::string, uint64_t>& plain_sizes) {
  Manifest m;
  for (const auto& p : encrypted_paths) {
    COFFER_ASSIGN_OR_RETURN(ManifestEntry e, HashEncryptedFile(root + "/" + p));
    auto it = plain_sizes.find(p);
    e.plain_size = it == plain_sizes.end() ? 0 : it->second;
    m.files[p] = e;
  }
  return m;
}

std::vector<std::pair<std::string, Status>> CompareWithManifest(const Manifest& m, const std::string& root,
                                                                const std::vector<std::string>& encrypted_paths) {
  std::vector<std::pair<std::string, Status>> out;
  std::set<std::string> on_disk(encrypted_paths.begin(), encrypted_paths.end());
  for (auto& [path, want] : m.files) {
    if (!on_disk.count(path)) {
      out.push_back({path, DataLoss(path + ": listed in the manifest but missing (deleted or renamed)")});
      continue;
    }
    auto got = HashEncryptedFile(root + "/" + path);
    if (!got.ok()) { out.push_back({path, got.status()}); continue; }
    if (got->encrypted_size != want.encrypted_size)
      out.push_back({path, DataLoss(path + ": size differs from the manifest (" + std::to_string(got->encrypted_size) +
                                        " bytes, manifest says " + std::to_string(want.encrypted_size) +
                                        "): truncated, extended or replaced")});
    else if (!ConstantTimeEquals(got->sha256, want.sha256))
      out.push_back({path, DataLoss(path + ": content differs from the manifest (replaced, swapped or rolled back)")});
  }
  for (auto& p : encrypted_paths)
    if (!m.files.count(p)) out.push_back({p, DataLoss(p + ": not listed in the manifest (added outside coffer)")});
  return out;
}

AnchorStore::AnchorStore(std::string path) : path_(std::move(path)) {}

std::string AnchorStore::DefaultPath() {
  if (const char* d = std::getenv("COFFER_STATE_DIR"); d && *d) return std::string(d) + "/crypt-anchors.json";
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::string(x) + "/coffer/crypt-anchors.json";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.local/state/coffer/crypt-anchors.json";
}

Status AnchorStore::CheckAndAdvance(const std::string& root, const Manifest* m, ByteSpan manifest_bytes) {
  std::error_code ec;
  std::string canon = std::filesystem::weakly_canonical(root, ec).string();
  if (ec) canon = root;
  nlohmann::json state = {{"version", 1}, {"folders", nlohmann::json::object()}, {"paths", nlohmann::json::object()}};
  if (std::filesystem::exists(path_)) {
    auto bytes = ReadFileBytes(path_);
    if (!bytes.ok()) return bytes.status().WithContext("anchor state " + path_);
    state = nlohmann::json::parse(bytes->begin(), bytes->end(), nullptr, false);
    if (state.is_discarded() || !state.is_object() || state.value("version", 0) != 1)
      return Corrupt("anchor state file " + path_ + " is not valid (version 1 JSON expected)");
    if (!state.contains("folders")) state["folders"] = nlohmann::json::object();
    if (!state.contains("paths")) state["paths"] = nlohmann::json::object();
  }
  if (m == nullptr) {
    if (state["paths"].contains(canon))
      return DataLoss(root + ": the folder had a manifest (recorded in " + path_ + ") and it is gone");
    return Status::Ok();
  }
  std::string id = HexEncode(m->folder_id);
  uint8_t digest[32];
  crypto_hash_sha256(digest, manifest_bytes.data(), manifest_bytes.size());
  std::string hash = HexEncode(ByteSpan(digest, 32));
  if (state["folders"].contains(id)) {
    uint64_t anchored = state["folders"][id].value("counter", uint64_t(0));
    std::string anchored_hash = state["folders"][id].value("sha256", std::string());
    if (m->counter < anchored)
      return DataLoss(root + ": manifest counter " + std::to_string(m->counter) + " is older than the anchored " +
                      std::to_string(anchored) + ": the folder was rolled back");
    if (m->counter == anchored && anchored_hash != hash)
      return DataLoss(root + ": manifest differs from the anchored one with the same counter (forked or replayed)");
  }
  state["folders"][id] = {{"counter", m->counter}, {"sha256", hash}};
  state["paths"][canon] = id;
  std::filesystem::create_directories(std::filesystem::path(path_).parent_path(), ec);
  std::string text = state.dump(2) + "\n";
  return WriteFileAtomic(path_, AsBytes(text)).WithContext("anchor state " + path_);
}

}  // namespace coffer::rclone

#include "coffer/rclone/file_cipher.h"
#include "coffer/rclone/tree.h"

namespace coffer::rclone {
namespace {

struct Listing {
  std::vector<std::string> paths;
  std::map<std::string, uint64_t> plain_sizes;
  std::vector<TreeFileError> errors;
};

Listing ListFiles(const std::string& root, const NameCipher& names) {
  Listing l;
  for (auto& e : ListEncryptedTree(names, root, &l.errors)) {
    if (e.is_dir) continue;
    l.paths.push_back(e.encrypted_path);
    l.plain_sizes[e.encrypted_path] = e.plain_size;
  }
  return l;
}

}  // namespace

Status WriteFolderManifest(const std::string& root, const NameCipher& names, const RcloneKeys& keys,
                           AnchorStore& anchors) {
  std::string mpath = root + "/" + kManifestName;
  Manifest next;
  if (std::filesystem::exists(mpath)) {
    COFFER_ASSIGN_OR_RETURN(Bytes old_bytes, ReadFileBytes(mpath));
    auto old = ParseManifest(old_bytes, keys);
    if (!old.ok()) return old.status().WithContext(mpath + " (remove it to start a new manifest)");
    COFFER_RETURN_IF_ERROR(anchors.CheckAndAdvance(root, &*old, old_bytes));
    next.folder_id = old->folder_id;
    next.counter = old->counter + 1;
  } else {
    COFFER_RETURN_IF_ERROR(anchors.CheckAndAdvance(root, nullptr, {}));
    FillRandom(next.folder_id);
    next.counter = 1;
  }
  Listing l = ListFiles(root, names);
  if (!l.errors.empty()) return l.errors[0].status.WithContext("cannot write a manifest");
  COFFER_ASSIGN_OR_RETURN(Manifest built, BuildManifest(root, l.paths, l.plain_sizes));
  next.files = std::move(built.files);
  Bytes bytes = SerializeManifest(next, keys);
  COFFER_RETURN_IF_ERROR(WriteFileAtomic(mpath, bytes, AtomicWriteOptions{0644, true}));
  return anchors.CheckAndAdvance(root, &next, bytes);
}

std::vector<std::pair<std::string, Status>> CheckFolderManifest(const std::string& root, const NameCipher& names,
                                                                const RcloneKeys& keys, AnchorStore& anchors,
                                                                bool required, bool* present) {
  std::vector<std::pair<std::string, Status>> out;
  std::string mpath = root + "/" + kManifestName;
  bool exists = std::filesystem::exists(mpath);
  if (present) *present = exists;
  if (!exists) {
    Status s = anchors.CheckAndAdvance(root, nullptr, {});
    if (!s.ok()) out.push_back({kManifestName, s});
    else if (required) out.push_back({kManifestName, DataLoss(root + ": no manifest (.coffer-manifest) in the folder")});
    return out;
  }
  auto bytes = ReadFileBytes(mpath);
  if (!bytes.ok()) { out.push_back({kManifestName, bytes.status()}); return out; }
  auto m = ParseManifest(*bytes, keys);
  if (!m.ok()) { out.push_back({kManifestName, m.status().WithContext(mpath)}); return out; }
  Listing l = ListFiles(root, names);
  for (auto& e : l.errors) out.push_back({e.path, e.status});
  auto diffs = CompareWithManifest(*m, root, l.paths);
  out.insert(out.end(), diffs.begin(), diffs.end());
  if (out.empty()) {
    Status s = anchors.CheckAndAdvance(root, &*m, *bytes);
    if (!s.ok()) out.push_back({kManifestName, s});
  }
  return out;
}

}  // namespace coffer::rclone
