// The coffer crypt manifest: an optional file ".coffer-manifest" at the root of an rclone crypt
// folder that lists every encrypted file (encrypted path, plaintext size, encrypted size, SHA-256
// of the encrypted bytes) with a counter, MAC'ed (HMAC-SHA256) under a key derived from the
// folder's data key. With the counter anchor kept in a local state file, it detects what rclone's
// format cannot: swapped files, files cut at a chunk boundary, deleted or added files and a
// rolled-back folder. Byte layout: docs/format/crypt_manifest.md. Thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"
#include "coffer/rclone/keys.h"
#include "coffer/rclone/name_cipher.h"

namespace coffer::rclone {

inline constexpr char kManifestName[] = ".coffer-manifest";
inline constexpr char kManifestMagic[8] = {'C', 'O', 'F', 'F', 'C', 'M', 'F', '1'};
inline constexpr uint32_t kManifestVersion = 1;

struct ManifestEntry {
  uint64_t plain_size = 0;
  uint64_t encrypted_size = 0;
  std::array<uint8_t, 32> sha256{};  // of the whole encrypted file
};

struct Manifest {
  std::array<uint8_t, 16> folder_id{};
  uint64_t counter = 0;
  std::map<std::string, ManifestEntry> files;  // key: encrypted path relative to the root
};

// Serialises and MACs; Parse checks magic, version, structure (kCorrupt / kUnsupported) and the
// MAC (kDataLoss).
Bytes SerializeManifest(const Manifest& m, const RcloneKeys& keys);
Result<Manifest> ParseManifest(ByteSpan data, const RcloneKeys& keys);

// SHA-256 and size of a file.
Result<ManifestEntry> HashEncryptedFile(const std::string& path);

// Builds a manifest of every encrypted file under root (reserved names excluded).
Result<Manifest> BuildManifest(const std::string& root, const std::vector<std::string>& encrypted_paths,
                               const std::map<std::string, uint64_t>& plain_sizes);

// Local anchor: highest counter (and MAC) seen per folder, so a rolled-back folder is caught.
// The state file is JSON, written atomically with mode 0600.
class AnchorStore {
 public:
  explicit AnchorStore(std::string path);
  // Default: $COFFER_STATE_DIR, else $XDG_STATE_HOME/coffer, else ~/.local/state/coffer;
  // file crypt-anchors.json.
  static std::string DefaultPath();
  // Checks `m` (already MAC-verified) for `root` against the anchor: kDataLoss on rollback
  // (counter below the anchor), a fork (same counter, other content) or a manifest missing for a
  // folder that had one (m == nullptr). Records the new state on success.
  Status CheckAndAdvance(const std::string& root, const Manifest* m, ByteSpan manifest_bytes);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Compares the files on disk with the manifest: every listed file present with the same size and
// hash, no unlisted file. Returns one error per problem (kDataLoss), naming the file.
std::vector<std::pair<std::string, Status>> CompareWithManifest(const Manifest& m, const std::string& root,
                                                                const std::vector<std::string>& encrypted_paths);

// Folder-level operations used by the CLI and the mount.
// (Re)writes root/.coffer-manifest for the folder's current contents: an existing manifest must
// authenticate and pass the anchor (its counter + 1 is used); records the new anchor.
Status WriteFolderManifest(const std::string& root, const NameCipher& names, const RcloneKeys& keys,
                           AnchorStore& anchors);
// Checks root against its manifest and the anchor. With `required`, a missing manifest is an
// error. Returns one entry per problem (path, status); *present tells whether a manifest exists.
std::vector<std::pair<std::string, Status>> CheckFolderManifest(const std::string& root, const NameCipher& names,
                                                                const RcloneKeys& keys, AnchorStore& anchors,
                                                                bool required, bool* present = nullptr);

}  // namespace coffer::rclone
