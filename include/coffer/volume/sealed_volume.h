// SealedVolume: makes an untrusted BackingStore confidential, tamper-evident, fresh and crash-safe,
// and presents it as a flash-like BlockDevice (erase value 0xff; block = one sector).
// - Each sector is sealed with an AEAD (XChaCha20-Poly1305 by default, AES-256-GCM optional) under
//   a nonce never used before (random per commit, counted per sector); the AD binds volume id, sector index and the
//   commit counter that wrote it.
// - A hash tree over all sectors; its root and a monotonic commit counter are in the MAC'ed header
//   and in a trusted Anchor. Sync() is the commit point: one atomic store batch (dirty sectors,
//   changed tree nodes, new header), then the anchor. Older state than the anchor is kDataLoss.
// - The master key is random and stored only wrapped in key slots (UnlockMethod, keys/unlock.h).
// Reads of committed data that fail authentication are kDataLoss, never zeros. Prog/Erase are
// buffered in memory until Sync (read-your-writes); a crash before Sync loses them, like flash.
// Not thread-safe: one thread at a time. Format: docs/format/volume.md; argument: docs/security.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coffer/blockdev/backing_store.h"
#include "coffer/blockdev/block_device.h"
#include "coffer/crypt/aead.h"
#include "coffer/keys/anchor.h"
#include "coffer/keys/unlock.h"

namespace coffer {

enum class CipherSuite : uint16_t {
  kXChaCha20Poly1305 = 1,
  kAes256Gcm = 2,
};
std::string_view CipherSuiteName(CipherSuite suite);
Result<CipherSuite> ParseCipherSuite(std::string_view name);

struct VolumeCreateOptions {
  uint64_t size_bytes = 4 << 20;  // usable bytes (rounded down to whole sectors; the store may cap it)
  uint32_t sector_size = 4096;    // power of two, 256..65536
  CipherSuite suite = CipherSuite::kXChaCha20Poly1305;
};

struct VolumeOpenOptions {
  // Memory for clean tree nodes before they are dropped (dirty ones stay until Sync).
  size_t tree_cache_bytes = 16 << 20;
  // Verified plaintext kept for re-reads (at least 16 sectors, at most the volume's size); a sector
  // is cached when it is read a second time, or read in part, or programmed in part and committed.
  // Memory is taken only as the cache fills. Filesystems on small sectors re-read the same blocks
  // many times (littlefs on 256-byte blocks: ~800 reads per block in the fs benchmark), so a cache
  // that holds the working set is what keeps them near plain-device speed.
  size_t plain_cache_bytes = 32 << 20;
  // Buffered (unsynced) sectors beyond this are committed early by an implicit Sync.
  size_t max_dirty_bytes = 32 << 20;
};

struct KeySlotInfo {
  int index = 0;
  KeySlotType type = KeySlotType::kEmpty;
};

struct VolumeInfo {
  std::string store;
  std::string anchor;
  std::string volume_id;  // hex
  uint16_t format_version = 0;
  CipherSuite suite = CipherSuite::kXChaCha20Poly1305;
  uint32_t sector_size = 0;
  uint64_t sector_count = 0;
  uint32_t record_size = 0;
  uint64_t record_count = 0;
  uint32_t tree_fanout = 0;
  uint32_t tree_levels = 0;
  uint64_t counter = 0;
  std::string root;  // hex
  uint64_t sealed_writes = 0;
  std::vector<KeySlotInfo> slots;
  int unlocked_slot = -1;
};

struct VerifyReport {
  uint64_t sectors = 0;
  uint64_t written_sectors = 0;
  std::vector<std::string> failures;  // "sector 12: ..." (capped at 100)
  bool ok() const { return failures.empty(); }
};

class SealedVolume : public BlockDevice {
 public:
  // Writes a new volume's header (one key slot for `method`) to store and records it in anchor.
  static Result<std::unique_ptr<SealedVolume>> Create(std::unique_ptr<BackingStore> store, UnlockMethod& method,
                                                      std::shared_ptr<Anchor> anchor,
                                                      const VolumeCreateOptions& options,
                                                      const VolumeOpenOptions& open_options = {});
  // Opens: header checksum (kDataLoss), key slot (kUnauthenticated if none opens with method),
  // header MAC (kDataLoss), freshness against anchor (kDataLoss for rollback).
  static Result<std::unique_ptr<SealedVolume>> Open(std::unique_ptr<BackingStore> store, UnlockMethod& method,
                                                    std::shared_ptr<Anchor> anchor,
                                                    const VolumeOpenOptions& options = {});
  ~SealedVolume() override;

  // BlockDevice.
  const BlockGeometry& geometry() const override { return geometry_; }
  Status Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) override;
  Status Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) override;
  Status Erase(uint32_t block) override;
  Status Sync() override;

  VolumeInfo Info() const;
  // Reads and authenticates every written sector and every tree node. The report lists failures.
  Result<VerifyReport> Verify();
  // Adds a key slot for method (wraps the master key); returns the slot index. Commits.
  Result<int> AddKeySlot(UnlockMethod& method);
  // The slot that method opens, or kNotFound.
  Result<int> FindKeySlot(UnlockMethod& method);
  // Removes a slot and commits. Removing the last slot crypto-erases the volume (needs
  // allow_crypto_erase, else kFailedPrecondition); the volume is then closed for use.
  Status RemoveKeySlot(int index, bool allow_crypto_erase);
  // Removes every slot (crypto-erase): the data can never be decrypted again.
  Status CryptoErase();

 private:
  struct State;
  explicit SealedVolume(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
  BlockGeometry geometry_;
};

}  // namespace coffer
