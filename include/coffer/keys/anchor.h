// Anchor: trusted storage for each sealed volume's freshness state (a monotonic commit counter and
// the hash-tree root), which an attacker who controls the backing store cannot roll back.
// Implementations: FileAnchor (a local file next to the key file, written atomically), and later
// TPM 2.0 NV indices and a network witness behind the same interface. FaultAnchor is the crash-test
// decorator. Load/Commit are durable and atomic: power loss during Commit leaves the old or the new
// entry. Objects are used by one thread at a time; FileAnchor also locks across processes.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"

namespace coffer {

using VolumeId = std::array<uint8_t, 16>;

struct AnchorEntry {
  uint64_t counter = 0;
  std::array<uint8_t, 32> root{};
  bool operator==(const AnchorEntry&) const = default;
};

class Anchor {
 public:
  virtual ~Anchor() = default;
  // The entry for the volume, or nullopt if this anchor has never seen it. kDataLoss if the anchor's
  // own storage is corrupt (freshness cannot be established).
  virtual Result<std::optional<AnchorEntry>> Load(const VolumeId& id) = 0;
  // Durably records entry. Refuses (kFailedPrecondition) to move the counter backwards.
  virtual Status Commit(const VolumeId& id, const AnchorEntry& entry) = 0;
  // Drops the volume's entry (after a crypto-erase).
  virtual Status Forget(const VolumeId& id) = 0;
  virtual std::string Describe() const = 0;
};

// Entries for many volumes in one file (docs/format/anchor.md), replaced atomically
// (WriteFileAtomic, 0600) under an flock on PATH.lock. The parent directory is created (0700).
class FileAnchor : public Anchor {
 public:
  explicit FileAnchor(std::string path) : path_(std::move(path)) {}
  Result<std::optional<AnchorEntry>> Load(const VolumeId& id) override;
  Status Commit(const VolumeId& id, const AnchorEntry& entry) override;
  Status Forget(const VolumeId& id) override;
  std::string Describe() const override { return "anchor file " + path_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Crash-test decorator: power is cut at the n-th Commit (0-based), which either lands durably and
// then reports failure (lands = true) or never lands. Afterwards every call fails with kIoError.
class FaultAnchor : public Anchor {
 public:
  explicit FaultAnchor(std::shared_ptr<Anchor> base) : base_(std::move(base)) {}
  void CutPowerAtCommit(uint64_t n, bool lands) {
    cut_at_ = int64_t(n);
    lands_ = lands;
  }
  bool power_cut() const { return dead_; }
  uint64_t commits() const { return commits_; }

  Result<std::optional<AnchorEntry>> Load(const VolumeId& id) override;
  Status Commit(const VolumeId& id, const AnchorEntry& entry) override;
  Status Forget(const VolumeId& id) override;
  std::string Describe() const override { return "fault(" + base_->Describe() + ")"; }

 private:
  std::shared_ptr<Anchor> base_;
  int64_t cut_at_ = -1;
  bool lands_ = false;
  bool dead_ = false;
  uint64_t commits_ = 0;
};

// In-memory anchor for tests and `mem:` volumes.
class MemoryAnchor : public Anchor {
 public:
  Result<std::optional<AnchorEntry>> Load(const VolumeId& id) override;
  Status Commit(const VolumeId& id, const AnchorEntry& entry) override;
  Status Forget(const VolumeId& id) override;
  std::string Describe() const override { return "memory anchor"; }

 private:
  std::vector<std::pair<VolumeId, AnchorEntry>> entries_;
};

// Anchor specs (`--anchor`): "SCHEME:REST" for a registered scheme (e.g. `tpm2:nv=0x01800c00`,
// registered by the tpm module) opens that anchor; anything else is a FileAnchor path (so existing
// paths keep working; write ./tpm2:x for a file whose name starts with a scheme).
using AnchorFactory = std::function<Result<std::shared_ptr<Anchor>>(std::string_view rest)>;
void RegisterAnchorScheme(const std::string& scheme, AnchorFactory factory);
Result<std::shared_ptr<Anchor>> OpenAnchorSpec(const std::string& spec);

// $XDG_STATE_HOME/coffer/anchors (default ~/.local/state/coffer/anchors): the anchor for unlock
// methods that have no file of their own (passphrases).
std::string DefaultStateAnchorPath();

}  // namespace coffer
