#include "coffer/volume/sealed_volume.h"

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "coffer/base/random.h"
#include "coffer/crypt/hash.h"
#include "volume/plain_cache.h"
#include "volume/sector_index.h"
#include "volume/volume_format.h"

namespace coffer {

using volume_format::Header;
using volume_format::Layout;
using volume_format::Slot;
using volume_internal::SectorIndex;

std::string_view CipherSuiteName(CipherSuite suite) {
  switch (suite) {
    case CipherSuite::kXChaCha20Poly1305: return "xchacha20-poly1305";
    case CipherSuite::kAes256Gcm: return "aes-256-gcm";
  }
  return "unknown";
}

Result<CipherSuite> ParseCipherSuite(std::string_view name) {
  if (name == "xchacha20-poly1305") return CipherSuite::kXChaCha20Poly1305;
  if (name == "aes-256-gcm") return CipherSuite::kAes256Gcm;
  return InvalidArgument("unknown cipher '" + std::string(name) + "': use xchacha20-poly1305 or aes-256-gcm");
}

namespace {

// Whole-sector progs of sectors at least this large are sealed at once (see SealedVolume::Prog).
constexpr uint32_t kSealAtProgMinSector = 2048;
constexpr uint64_t kGcmWriteLimit = uint64_t(1) << 32;  // random 96-bit nonces: NIST SP 800-38D bound
const Hash256 kZeroHash{};

bool IsZero(ByteSpan b) {
  return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}
// All bytes 0xff: the first is, and every byte equals its successor (memcmp is vectorised).
bool IsErased(ByteSpan b) {
  return b.empty() || (b[0] == 0xff && std::memcmp(b.data(), b.data() + 1, b.size() - 1) == 0);
}

// Sector nonces (24-byte field). AES-256-GCM: 12 random bytes from the OS CSPRNG, the GCM nonce,
// then 12 zero bytes. Random bytes are fetched in bulk (one getrandom per 5460 sectors, not per sector:
// in a VM each system call costs about as much as sealing a small sector). XChaCha20-Poly1305: a
// fresh random 16-byte prefix per epoch (the sealings of one commit) followed by a 64-bit
// little-endian counter, so that every nonce of an epoch shares one HChaCha20 subkey (derived and
// keyed once per epoch, not per sector) and nonces within an epoch differ by their counter
// (uniqueness argument in docs/security.md).
class NonceSource {
 public:
  void Init(CipherSuite suite) { epoch_prefix_ = suite == CipherSuite::kXChaCha20Poly1305; }

  void Take(uint8_t out[volume_format::kNonceSize]) {
    if (!epoch_prefix_) {
      TakeRandom(out, 12);
      std::memset(out + 12, 0, volume_format::kNonceSize - 12);
      return;
    }
    if (counter_ == 0) TakeRandom(prefix_, sizeof prefix_);
    std::memcpy(out, prefix_, sizeof prefix_);
    PutLe64(out + sizeof prefix_, counter_);
    // Wraps to 0 only after 2^64 nonces, and 0 draws a new prefix: never the same pair twice.
    counter_++;
  }
  // The next nonce starts a new epoch (called after each commit).
  void NewEpoch() { counter_ = 0; }

 private:
  void TakeRandom(uint8_t* out, size_t n) {
    if (pos_ + n > buf_.size()) {
      FillRandom(buf_);
      pos_ = 0;
    }
    std::memcpy(out, buf_.data() + pos_, n);
    std::memset(buf_.data() + pos_, 0, n);  // never hand out the same bytes twice
    pos_ += n;
  }

  bool epoch_prefix_ = false;
  uint8_t prefix_[16] = {};
  uint64_t counter_ = 0;
  Bytes buf_ = Bytes(65520);
  size_t pos_ = 65520;
};

struct SlotKeys {
  SecretBytes kek;
  std::array<uint8_t, 16> key_id{};
};

Result<SlotKeys> DeriveSlotKeys(const SecretBytes& unlock_secret, const VolumeId& id) {
  COFFER_ASSIGN_OR_RETURN(SecretBytes okm, HkdfSha256(unlock_secret.reveal(), id, "coffer volume v1 key slot", 48));
  SlotKeys k;
  k.kek = SecretBytes::CopyOf(okm.reveal().subspan(0, 32));
  std::memcpy(k.key_id.data(), okm.reveal().data() + 32, 16);
  return k;
}

Bytes SlotAd(const VolumeId& id, size_t index, KeySlotType type, ByteSpan params) {
  Bytes ad = ToBytes("coffer-slot-v1");
  Append(ad, id);
  ad.push_back(uint8_t(index));
  ad.push_back(uint8_t(type));
  Append(ad, params);
  return ad;
}

}  // namespace

struct SealedVolume::State {
  std::unique_ptr<BackingStore> store;
  std::shared_ptr<Anchor> anchor;
  VolumeOpenOptions options;
  Header header;
  SecretBytes master, mac_key;
  std::unique_ptr<Aead> aead;
  int unlocked_slot = -1;

  struct Node {
    Bytes content;
    bool dirty = false;
  };
  std::unordered_map<uint64_t, Node> nodes;  // by global node index
  // A sector changed since the last commit. A whole-sector prog is sealed at once (for the coming
  // commit's version), so the plaintext is never copied; partial progs keep plaintext until Sync.
  struct DirtySector {
    enum Kind : uint8_t { kErased, kPlain, kSealed } kind = kErased;
    Bytes buf;    // kPlain: the plaintext; kSealed: the sealed record image; kErased: unused
    Bytes plain;  // kSealed: its plaintext once read back before the commit (else empty)
  };
  // The dirty sectors in the order first changed, found by sector through a SectorIndex: every
  // erase, prog and read looks here first, so no hashing and no allocation per operation.
  class DirtySet {
   public:
    using Entry = std::pair<uint64_t, DirtySector>;
    void Init(uint64_t sector_count) { index_.Init(sector_count); }
    DirtySector* Find(uint64_t sector) {
      uint32_t i = index_.Get(sector);
      return i == SectorIndex::kNone ? nullptr : &entries_[i].second;
    }
    bool contains(uint64_t sector) const { return index_.Get(sector) != SectorIndex::kNone; }
    // The entry for `sector`, added (erased) if absent. Valid until the next insertion.
    DirtySector& operator[](uint64_t sector) {
      if (DirtySector* d = Find(sector)) return *d;
      index_.Set(sector, uint32_t(entries_.size()));
      return entries_.emplace_back(sector, DirtySector{}).second;
    }
    void erase(uint64_t sector) {
      uint32_t i = index_.Get(sector);
      if (i == SectorIndex::kNone) return;
      index_.Set(sector, SectorIndex::kNone);
      if (i + 1 != entries_.size()) {
        entries_[i] = std::move(entries_.back());
        index_.Set(entries_[i].first, i);
      }
      entries_.pop_back();
    }
    void clear() {
      for (const Entry& e : entries_) index_.Set(e.first, SectorIndex::kNone);
      entries_.clear();  // keeps its capacity for the next commit's sectors
    }
    size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }
    auto begin() { return entries_.begin(); }
    auto end() { return entries_.end(); }

   private:
    std::vector<Entry> entries_;
    SectorIndex index_;
  };
  DirtySet dirty;  // until Sync
  std::vector<Bytes> spare_plain, spare_sealed;     // buffers for reuse (no allocation per write)
  uint64_t pending_seals = 0;                       // AEAD calls since the last commit (GCM budget)
  Bytes erased_sector;                              // sector_size bytes of 0xff
  volume_internal::PlainCache cache;  // verified plaintext of committed sectors
  Status broken;  // set after a failed commit or a crypto-erase
  NonceSource nonces;
  Bytes read_scratch;    // sealed sector bytes being verified
  Bytes commit_scratch;  // sealed sectors and header of the commit being built (reused: no page faults)

  const Layout& layout() const { return header.layout; }
  size_t node_bytes() const { return size_t(layout().fanout) * 32; }
  size_t sealed_bytes() const { return layout().sector_size + volume_format::kSectorOverhead; }

  // Version 2 hashes nodes with SHA-256 (SHA-NI), version 1 with BLAKE2b-256.
  Hash256 NodeHash(uint32_t level, uint64_t index, ByteSpan content) const {
    if (IsZero(content)) return kZeroHash;
    uint8_t meta[9];
    meta[0] = uint8_t(level);
    PutLe64(meta + 1, index);
    if (header.version >= 2) return Sha256({AsBytes("coffer-node-v2"), meta, content});
    return Blake2b256({AsBytes("coffer-node-v1"), meta, content});
  }
  // A sealed sector's leaf. Version 2: its version and nonce bytes as they are (the nonce is never
  // reused and the AEAD binds the ciphertext to it, so they identify the content; docs/security.md).
  // Version 1 hashed them with the index and tag.
  Hash256 Leaf(uint64_t sector, const uint8_t* sealed) const {
    Hash256 leaf;
    if (header.version >= 2) {
      std::memcpy(leaf.data(), sealed, 32);
      return leaf;
    }
    uint8_t idx[8];
    PutLe64(idx, sector);
    return Blake2b256({AsBytes("coffer-leaf-v1"), idx, {sealed, 32}, {sealed + 32 + layout().sector_size, 16}});
  }
  size_t record_image_bytes() const { return size_t(layout().records_per_sector) * layout().record_size; }
  Bytes TakeBuffer(std::vector<Bytes>& spare, size_t size) {
    if (spare.empty()) return Bytes(size);
    Bytes b = std::move(spare.back());
    spare.pop_back();
    return b;
  }
  Bytes TakePlain() { return TakeBuffer(spare_plain, layout().sector_size); }
  Bytes TakeSealed() { return TakeBuffer(spare_sealed, record_image_bytes()); }
  void Recycle(DirtySector& d) {
    if (d.kind == DirtySector::kPlain) spare_plain.push_back(std::move(d.buf));
    if (d.kind == DirtySector::kSealed) spare_sealed.push_back(std::move(d.buf));
    if (!d.plain.empty()) spare_plain.push_back(std::move(d.plain));
    d.buf = Bytes();
    d.plain = Bytes();
  }

  // Seals plaintext for `sector` into a record image `out` (record_image_bytes(): version, fresh
  // nonce, ciphertext, tag, zero padding) as of commit `version`.
  Status SealSector(uint64_t sector, uint64_t version, ByteSpan plain, uint8_t* out) {
    const Layout& l = layout();
    if (header.suite == CipherSuite::kAes256Gcm && header.sealed_writes + pending_seals >= kGcmWriteLimit) {
      return FailedPrecondition("this AES-256-GCM volume has sealed 2^32 sectors, the limit for random 96-bit "
                                "nonces; copy the data to a new volume (xchacha20-poly1305 has no such limit)");
    }
    size_t sealed_end = 32 + size_t(l.sector_size) + 16;
    std::memset(out + sealed_end, 0, record_image_bytes() - sealed_end);
    PutLe64(out, version);
    nonces.Take(out + 8);
    uint8_t ad[32];
    SectorAd(sector, version, ad);
    pending_seals++;
    return aead->Seal({out + 8, aead->nonce_size()}, ad, plain, {out + 32, l.sector_size + 16});
  }

  // The plaintext of a kSealed dirty sector (read back before its commit): decrypted once and kept
  // beside the sealed record, which stays valid, so the commit does not seal it again.
  Result<const uint8_t*> SealedPlain(uint64_t sector, DirtySector& d) {
    if (!d.plain.empty()) return d.plain.data();
    const Layout& l = layout();
    Bytes plain = TakePlain();
    uint8_t ad[32];
    SectorAd(sector, GetLe64(d.buf.data()), ad);
    Status s = aead->Open({d.buf.data() + 8, aead->nonce_size()}, ad, {d.buf.data() + 32, l.sector_size + 16}, plain);
    if (!s.ok()) {
      spare_plain.push_back(std::move(plain));
      return s.WithContext("sector " + std::to_string(sector) + " buffered in memory");
    }
    d.plain = std::move(plain);
    return d.plain.data();
  }
  void SectorAd(uint64_t sector, uint64_t version, uint8_t ad[32]) const {
    std::memcpy(ad, header.id.data(), 16);
    PutLe64(ad + 16, sector);
    PutLe64(ad + 24, version);
  }

  void MaybeEvict() {
    if (nodes.size() * node_bytes() <= options.tree_cache_bytes) return;
    std::erase_if(nodes, [](const auto& kv) { return !kv.second.dirty; });
  }

  // Loads (and verifies against its parent, up to the root) tree node `index` of `level` (1-based).
  Result<Node*> LoadNode(uint32_t level, uint64_t index) {
    const Layout& l = layout();
    uint64_t global = l.level_start[level - 1] + index;
    auto it = nodes.find(global);
    if (it != nodes.end()) return &it->second;
    Hash256 expected;
    if (level == l.tree_levels()) {
      expected = header.root;
    } else {
      COFFER_ASSIGN_OR_RETURN(Node * parent, LoadNode(level + 1, index / l.fanout));
      std::memcpy(expected.data(), parent->content.data() + (index % l.fanout) * 32, 32);
    }
    Node node;
    node.content.assign(node_bytes(), 0);
    if (expected != kZeroHash) {
      Bytes raw(size_t(l.records_per_node) * l.record_size);
      COFFER_RETURN_IF_ERROR(store->Read(l.first_tree_record + global * l.records_per_node,
                                         l.records_per_node, raw));
      std::memcpy(node.content.data(), raw.data(), node_bytes());
      if (NodeHash(level, index, node.content) != expected) {
        return DataLoss("hash tree node " + std::to_string(level) + "/" + std::to_string(index) + " on " +
                        store->Describe() + " does not match its parent: the volume was tampered with or "
                        "partly rolled back");
      }
    }
    return &nodes.emplace(global, std::move(node)).first->second;
  }

  Result<Hash256> CommittedLeaf(uint64_t sector) {
    COFFER_ASSIGN_OR_RETURN(Node * n, LoadNode(1, sector / layout().fanout));
    Hash256 h;
    std::memcpy(h.data(), n->content.data() + (sector % layout().fanout) * 32, 32);
    return h;
  }

  // Committed plaintext of a sector, verified against the tree and its AEAD tag.
  Status LoadCommitted(uint64_t sector, uint8_t* out) {
    const Layout& l = layout();
    COFFER_ASSIGN_OR_RETURN(Hash256 leaf, CommittedLeaf(sector));
    if (leaf == kZeroHash) {
      std::memset(out, 0xff, l.sector_size);
      return Status::Ok();
    }
    Bytes& raw = read_scratch;
    raw.resize(size_t(l.records_per_sector) * l.record_size);
    COFFER_RETURN_IF_ERROR(
        store->Read(l.first_sector_record + sector * l.records_per_sector, l.records_per_sector, raw));
    if (Leaf(sector, raw.data()) != leaf) {
      return DataLoss("sector " + std::to_string(sector) + " of " + store->Describe() +
                      " does not match the hash tree: it was modified, swapped with another sector or replayed "
                      "from an older state");
    }
    uint8_t ad[32];
    SectorAd(sector, GetLe64(raw.data()), ad);
    Status s = aead->Open({raw.data() + 8, aead->nonce_size()}, ad, {raw.data() + 32, l.sector_size + 16},
                          {out, l.sector_size});
    if (!s.ok()) {
      if (s.code() == StatusCode::kDataLoss) {
        return DataLoss("sector " + std::to_string(sector) + " of " + store->Describe() +
                        " failed authentication: it was tampered with");
      }
      return s;
    }
    return Status::Ok();
  }

  // Plaintext for reading: dirty buffer, clean cache, or verified load into the cache.
  Result<const uint8_t*> SectorForRead(uint64_t sector) {
    if (DirtySector* found = dirty.Find(sector)) {
      DirtySector& d = *found;
      if (d.kind == DirtySector::kErased) return erased_sector.data();
      if (d.kind == DirtySector::kSealed) return SealedPlain(sector, d);
      return d.buf.data();
    }
    if (const uint8_t* p = cache.Find(sector)) return p;
    return LoadIntoCache(sector);
  }

  // Verifies and decrypts a committed sector into a cache slot (dropped again on failure).
  Result<const uint8_t*> LoadIntoCache(uint64_t sector) {
    uint8_t* slot = cache.Insert(sector);
    Status s = LoadCommitted(sector, slot);
    if (!s.ok()) {
      cache.Drop(sector);
      return s;
    }
    return slot;
  }

  void DropClean(uint64_t sector) { cache.Drop(sector); }

  // Plaintext to prog into (read-modify-write of a partial prog).
  Result<Bytes*> SectorForWrite(uint64_t sector) {
    if (DirtySector* found = dirty.Find(sector)) {
      DirtySector& d = *found;
      if (d.kind == DirtySector::kErased) {
        d.buf = TakePlain();
        std::memset(d.buf.data(), 0xff, d.buf.size());
        d.kind = DirtySector::kPlain;
      } else if (d.kind == DirtySector::kSealed) {
        // A partial prog after a whole-sector one: back to plaintext, sealed again at the commit.
        COFFER_RETURN_IF_ERROR(SealedPlain(sector, d).status());
        spare_sealed.push_back(std::move(d.buf));
        d.buf = std::move(d.plain);
        d.plain = Bytes();
        d.kind = DirtySector::kPlain;
      }
      return &d.buf;
    }
    Bytes data = TakePlain();
    if (const uint8_t* p = cache.Find(sector)) {
      std::memcpy(data.data(), p, data.size());
    } else {
      Status s = LoadCommitted(sector, data.data());
      if (!s.ok()) {
        spare_plain.push_back(std::move(data));
        return s;
      }
    }
    DropClean(sector);
    DirtySector& d = dirty[sector];
    d.kind = DirtySector::kPlain;
    d.buf = std::move(data);
    return &d.buf;
  }

  // The sector's dirty entry with its buffers recycled, to be overwritten whole.
  DirtySector& ResetDirty(uint64_t sector) {
    DropClean(sector);
    DirtySector& d = dirty[sector];
    Recycle(d);
    d.kind = DirtySector::kErased;
    return d;
  }

  Bytes EncodeHeader(const Header& h) const {
    Bytes b = volume_format::EncodeHeaderBody(h);
    volume_format::SealHeader(b, mac_key.reveal());
    return b;
  }

  // The commit: dirty sectors + changed tree nodes + header (counter+1) in one atomic batch, then
  // the anchor. new_slots replaces the key slots when set.
  Status Commit(const std::array<Slot, volume_format::kSlotCount>* new_slots) {
    if (!broken.ok()) return broken;
    const Layout& l = layout();
    // Sectors in ascending order: record indices then strictly increase, and consecutive sectors
    // share their level-1 node, which is looked up once per run.
    std::vector<std::pair<uint64_t, DirtySector*>> order;
    order.reserve(dirty.size());
    for (auto& [sector, d] : dirty) order.emplace_back(sector, &d);
    auto by_sector = [](const auto& a, const auto& b) { return a.first < b.first; };
    if (!std::is_sorted(order.begin(), order.end(), by_sector)) std::sort(order.begin(), order.end(), by_sector);
    // Phase 1: load (and verify) every tree path we will change; nothing is modified yet.
    std::vector<Node*> leaf_node(order.size());
    for (size_t k = 0; k < order.size(); ++k) {
      uint64_t j = order[k].first / l.fanout;
      if (k > 0 && order[k - 1].first / l.fanout == j) {
        leaf_node[k] = leaf_node[k - 1];
      } else {
        COFFER_ASSIGN_OR_RETURN(leaf_node[k], LoadNode(1, j));
      }
    }
    Header next = header;
    next.counter = header.counter + 1;
    if (new_slots) next.slots = *new_slots;

    // Phase 2: seal the plaintext sectors, set leaves. Erased content needs no record.
    size_t rps = l.records_per_sector, rpn = l.records_per_node;
    size_t plain_count = 0, sealed_count = 0;
    for (auto& [sector, d] : order) {
      if (d->kind == DirtySector::kPlain && IsErased(d->buf)) {
        Recycle(*d);
        d->kind = DirtySector::kErased;
      }
      plain_count += d->kind == DirtySector::kPlain;
      sealed_count += d->kind != DirtySector::kErased;
    }
    std::vector<uint64_t> touched;  // level-1 node indices, ascending
    Bytes& buffer = commit_scratch;
    buffer.resize((plain_count * rps + l.header_records) * size_t(l.record_size));
    std::vector<RecordWrite> batch;
    batch.reserve(l.header_records + sealed_count * rps + 64);
    // Header first, then sectors, then tree nodes: record indices strictly increase, which lets
    // stores check "distinct indices" without a hash set.
    uint8_t* hout = buffer.data() + plain_count * rps * l.record_size;
    for (size_t r = 0; r < l.header_records; ++r) batch.push_back({r, {hout + r * l.record_size, l.record_size}});
    size_t used = 0;
    for (size_t k = 0; k < order.size(); ++k) {
      uint64_t sector = order[k].first;
      DirtySector& d = *order[k].second;
      Hash256 leaf = kZeroHash;
      if (d.kind != DirtySector::kErased) {
        uint8_t* out;
        if (d.kind == DirtySector::kPlain) {
          out = buffer.data() + used;
          used += rps * l.record_size;
          COFFER_RETURN_IF_ERROR(SealSector(sector, next.counter, d.buf, out));
        } else {
          out = d.buf.data();
          if (GetLe64(out) != next.counter) return Internal("a buffered sector was sealed for another commit");
        }
        leaf = Leaf(sector, out);
        for (size_t r = 0; r < rps; ++r) {
          batch.push_back({l.first_sector_record + sector * rps + r, {out + r * l.record_size, l.record_size}});
        }
      }
      Node* n = leaf_node[k];
      std::memcpy(n->content.data() + (sector % l.fanout) * 32, leaf.data(), 32);
      n->dirty = true;
      if (touched.empty() || touched.back() != sector / l.fanout) touched.push_back(sector / l.fanout);
    }
    // Phase 3: rehash upwards (each level's indices stay ascending).
    for (uint32_t level = 1; level < l.tree_levels(); ++level) {
      std::vector<uint64_t> parents;
      for (uint64_t j : touched) {
        Node& n = nodes.at(l.level_start[level - 1] + j);
        Hash256 h = NodeHash(level, j, n.content);
        Node& p = nodes.at(l.level_start[level] + j / l.fanout);
        std::memcpy(p.content.data() + (j % l.fanout) * 32, h.data(), 32);
        p.dirty = true;
        if (parents.empty() || parents.back() != j / l.fanout) parents.push_back(j / l.fanout);
      }
      touched = std::move(parents);
    }
    if (!order.empty()) {
      next.root = NodeHash(l.tree_levels(), 0, nodes.at(l.level_start.back()).content);
    }
    next.sealed_writes = header.sealed_writes + pending_seals;  // every AEAD call, kept or not
    // Phase 4: one atomic batch.
    std::vector<uint64_t> dirty_nodes;
    for (auto& [global, n] : nodes) {
      if (n.dirty) dirty_nodes.push_back(global);
    }
    std::sort(dirty_nodes.begin(), dirty_nodes.end());
    std::vector<Bytes> node_images(dirty_nodes.size());
    for (size_t d = 0; d < dirty_nodes.size(); ++d) {
      uint64_t global = dirty_nodes[d];
      Bytes& img = node_images[d];
      img.assign(rpn * l.record_size, 0);
      const Bytes& content = nodes.at(global).content;
      std::memcpy(img.data(), content.data(), content.size());
      for (size_t r = 0; r < rpn; ++r) {
        batch.push_back({l.first_tree_record + global * rpn + r, {img.data() + r * l.record_size, l.record_size}});
      }
    }
    Bytes hdr = EncodeHeader(next);
    std::memset(hout, 0, l.header_records * size_t(l.record_size));
    std::memcpy(hout, hdr.data(), hdr.size());
    Status s = store->WriteBatch(batch);
    if (s.ok()) s = store->Flush();
    if (!s.ok()) {
      broken = s.WithContext("commit to " + store->Describe() + " failed; reopen the volume to continue");
      return broken;
    }
    // Phase 5: the anchor. A crash before this lands leaves the store one commit ahead of the
    // anchor, which Open() accepts (the header MAC proves it is ours).
    s = anchor->Commit(next.id, {next.counter, next.root});
    if (!s.ok()) {
      broken = s.WithContext("the store committed but the anchor (" + anchor->Describe() +
                             ") did not; reopen the volume to continue");
      return broken;
    }
    nonces.NewEpoch();
    for (auto& [g, n] : nodes) n.dirty = false;
    for (auto& [sector, d] : dirty) {
      // Partly programmed sectors (metadata, mostly) are likely to be read again soon.
      // So are whole sectors that were read back before the commit.
      if (d.kind == DirtySector::kPlain) std::memcpy(cache.Insert(sector), d.buf.data(), l.sector_size);
      if (d.kind == DirtySector::kSealed && !d.plain.empty()) {
        std::memcpy(cache.Insert(sector), d.plain.data(), l.sector_size);
      }
      Recycle(d);
    }
    dirty.clear();
    pending_seals = 0;
    size_t keep = options.max_dirty_bytes / l.sector_size + 1;
    if (spare_plain.size() > keep) spare_plain.resize(keep);
    if (spare_sealed.size() > keep) spare_sealed.resize(keep);
    header = std::move(next);
    return Status::Ok();
  }
};

SealedVolume::SealedVolume(std::unique_ptr<State> state) : s_(std::move(state)) {
  const Layout& l = s_->layout();
  uint32_t unit = std::min<uint32_t>(256, l.sector_size);
  geometry_ = BlockGeometry{unit, unit, l.sector_size, uint32_t(l.sector_count), 0xff};
  s_->erased_sector.assign(l.sector_size, 0xff);
  uint64_t cache_sectors = std::min<uint64_t>(s_->options.plain_cache_bytes / l.sector_size, l.sector_count);
  s_->cache.Init(std::max<size_t>(16, size_t(cache_sectors)), l.sector_size, l.sector_count);
  s_->dirty.Init(l.sector_count);
  s_->nonces.Init(s_->header.suite);
}

SealedVolume::~SealedVolume() = default;

namespace {

Result<std::unique_ptr<Aead>> SectorAead(CipherSuite suite, const SecretBytes& master, const VolumeId& id) {
  COFFER_ASSIGN_OR_RETURN(SecretBytes key, HkdfSha256(master.reveal(), id, "coffer volume v1 sector key", 32));
  return NewAead(suite == CipherSuite::kAes256Gcm ? AeadAlgorithm::kAes256Gcm : AeadAlgorithm::kXChaCha20Poly1305,
                 key);
}

Result<SecretBytes> MacKey(const SecretBytes& master, const VolumeId& id) {
  return HkdfSha256(master.reveal(), id, "coffer volume v1 header mac", 32);
}

Result<Slot> MakeSlot(UnlockMethod& method, const VolumeId& id, size_t index, const SecretBytes& master) {
  Slot slot;
  slot.type = method.slot_type();
  COFFER_ASSIGN_OR_RETURN(slot.params, method.NewSlotParams());
  if (slot.params.size() > kMaxSlotParams) return InvalidArgument("unlock method parameters are too large");
  COFFER_ASSIGN_OR_RETURN(SecretBytes secret, method.UnlockSecret(slot.params));
  COFFER_ASSIGN_OR_RETURN(SlotKeys keys, DeriveSlotKeys(secret, id));
  slot.key_id = keys.key_id;
  FillRandom(slot.wrap_nonce);
  COFFER_ASSIGN_OR_RETURN(auto wrap, NewAead(AeadAlgorithm::kXChaCha20Poly1305, keys.kek));
  COFFER_RETURN_IF_ERROR(wrap->Seal(slot.wrap_nonce, SlotAd(id, index, slot.type, slot.params), master.reveal(),
                                    slot.wrapped));
  return slot;
}

// Which slot `method` opens: its index (or -1) and the master key.
Result<std::pair<int, SecretBytes>> Unwrap(const Header& h, UnlockMethod& method, const std::string& where) {
  size_t used = 0;
  Status refused;
  for (size_t k = 0; k < h.slots.size(); ++k) {
    const Slot& slot = h.slots[k];
    if (slot.type == KeySlotType::kEmpty) continue;
    used++;
    if (slot.type != method.slot_type()) continue;
    auto secret = method.UnlockSecret(slot.params);
    if (!secret.ok()) {
      if (secret.status().code() == StatusCode::kInvalidArgument) {
        return DataLoss("key slot " + std::to_string(k) + " on " + where + " has malformed parameters (" +
                        secret.status().message() + "): the header was tampered with");
      }
      // A refusal for this slot (e.g. a tpm2: slot sealed by another machine's TPM) may not apply to
      // a later slot of the same type: try the others, and report the refusal if none opens.
      if (secret.status().code() == StatusCode::kUnauthenticated) {
        if (refused.ok()) refused = secret.status();
        continue;
      }
      return secret.status();
    }
    COFFER_ASSIGN_OR_RETURN(SlotKeys keys, DeriveSlotKeys(*secret, h.id));
    if (!ConstantTimeEquals(keys.key_id, slot.key_id)) continue;
    COFFER_ASSIGN_OR_RETURN(auto wrap, NewAead(AeadAlgorithm::kXChaCha20Poly1305, keys.kek));
    SecretBytes master(32);
    Status s = wrap->Open(slot.wrap_nonce, SlotAd(h.id, k, slot.type, slot.params), slot.wrapped, master.reveal());
    if (!s.ok()) {
      return DataLoss("key slot " + std::to_string(k) + " on " + where + " belongs to " + method.Describe() +
                      " but its wrapped key does not authenticate: the header was tampered with");
    }
    return std::make_pair(int(k), std::move(master));
  }
  if (used == 0) {
    return Unauthenticated("the volume on " + where + " has no key slots left: it was crypto-erased and its data "
                           "can never be decrypted");
  }
  if (!refused.ok()) return refused;
  return Unauthenticated("no key slot of the volume on " + where + " opens with " + method.Describe() +
                         " (wrong key or passphrase)");
}

}  // namespace

Result<std::unique_ptr<SealedVolume>> SealedVolume::Create(std::unique_ptr<BackingStore> store,
                                                           UnlockMethod& method, std::shared_ptr<Anchor> anchor,
                                                           const VolumeCreateOptions& options,
                                                           const VolumeOpenOptions& open_options) {
  uint32_t S = options.sector_size;
  COFFER_RETURN_IF_ERROR(volume_format::MakeLayout(S, store->record_size(), 2).status());
  uint64_t want = options.size_bytes == 0 ? UINT64_MAX / S : options.size_bytes / S;
  if (want < 2) {
    return InvalidArgument("volume size " + std::to_string(options.size_bytes) + " is less than two " +
                           std::to_string(S) + "-byte sectors");
  }
  COFFER_ASSIGN_OR_RETURN(Layout layout, volume_format::FitLayout(S, store->record_size(), store->record_count(), want));
  if (options.size_bytes != 0 && layout.sector_count < want) {
    return NoSpace(store->Describe() + " holds at most " + std::to_string(layout.sector_count * S) +
                   " usable bytes at sector size " + std::to_string(S) + " (asked for " +
                   std::to_string(options.size_bytes) + ")");
  }
  auto st = std::make_unique<State>();
  st->store = std::move(store);
  st->anchor = std::move(anchor);
  st->options = open_options;
  Header& h = st->header;
  h.suite = options.suite;
  FillRandom(h.id);
  h.layout = layout;
  st->master = SecretBytes::Random(32);
  COFFER_ASSIGN_OR_RETURN(h.slots[0], MakeSlot(method, h.id, 0, st->master));
  st->unlocked_slot = 0;
  COFFER_ASSIGN_OR_RETURN(st->mac_key, MacKey(st->master, h.id));
  COFFER_ASSIGN_OR_RETURN(st->aead, SectorAead(h.suite, st->master, h.id));
  Bytes hdr = st->EncodeHeader(h);
  Bytes padded(size_t(layout.header_records) * layout.record_size, 0);
  std::memcpy(padded.data(), hdr.data(), hdr.size());
  std::vector<RecordWrite> batch;
  for (uint32_t r = 0; r < layout.header_records; ++r) {
    batch.push_back({r, {padded.data() + size_t(r) * layout.record_size, layout.record_size}});
  }
  COFFER_RETURN_IF_ERROR(st->store->WriteBatch(batch));
  COFFER_RETURN_IF_ERROR(st->store->Flush());
  COFFER_RETURN_IF_ERROR(st->anchor->Commit(h.id, {h.counter, h.root}));
  return std::unique_ptr<SealedVolume>(new SealedVolume(std::move(st)));
}

Result<std::unique_ptr<SealedVolume>> SealedVolume::Open(std::unique_ptr<BackingStore> store, UnlockMethod& method,
                                                         std::shared_ptr<Anchor> anchor,
                                                         const VolumeOpenOptions& options) {
  std::string where = store->Describe();
  uint32_t R = store->record_size();
  uint32_t hr = (volume_format::kHeaderSize + R - 1) / R;
  if (store->record_count() < hr) return DataLoss(where + " is too small to hold a volume header");
  Bytes raw(size_t(hr) * R);
  COFFER_RETURN_IF_ERROR(store->Read(0, hr, raw));
  COFFER_ASSIGN_OR_RETURN(Header h, volume_format::ParseHeader(raw, where));
  if (h.layout.record_size != R || h.layout.records_used > store->record_count()) {
    return DataLoss("the volume header on " + where + " does not match the store's geometry (" +
                    std::to_string(store->record_count()) + " records of " + std::to_string(R) +
                    " bytes): the store was truncated or tampered with");
  }
  COFFER_ASSIGN_OR_RETURN(auto unwrapped, Unwrap(h, method, where));
  auto st = std::make_unique<State>();
  st->store = std::move(store);
  st->anchor = std::move(anchor);
  st->options = options;
  st->unlocked_slot = unwrapped.first;
  st->master = std::move(unwrapped.second);
  COFFER_ASSIGN_OR_RETURN(st->mac_key, MacKey(st->master, h.id));
  if (!volume_format::VerifyHeaderMac(ByteSpan(raw.data(), volume_format::kHeaderSize), st->mac_key.reveal())) {
    return DataLoss("the volume header on " + where + " fails its MAC: it was tampered with");
  }
  COFFER_ASSIGN_OR_RETURN(st->aead, SectorAead(h.suite, st->master, h.id));
  // Freshness: never older than what the anchor has seen.
  COFFER_ASSIGN_OR_RETURN(std::optional<AnchorEntry> seen, st->anchor->Load(h.id));
  AnchorEntry now{h.counter, h.root};
  if (seen && h.counter < seen->counter) {
    return DataLoss("the volume on " + where + " was rolled back: it is at commit " + std::to_string(h.counter) +
                    " but " + st->anchor->Describe() + " has seen commit " + std::to_string(seen->counter) +
                    " (an older copy of the store was restored, or the store replayed old data)");
  }
  if (seen && h.counter == seen->counter && h.root != seen->root) {
    return DataLoss("the volume on " + where + " does not match " + st->anchor->Describe() + " at commit " +
                    std::to_string(h.counter) + ": its contents were replaced (forked or tampered with)");
  }
  if (!seen || h.counter > seen->counter) {
    // First use with this anchor, or the store committed and the anchor did not (crash): catch up.
    COFFER_RETURN_IF_ERROR(st->anchor->Commit(h.id, now));
  }
  st->header = std::move(h);
  return std::unique_ptr<SealedVolume>(new SealedVolume(std::move(st)));
}

Status SealedVolume::Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) {
  COFFER_RETURN_IF_ERROR(CheckRange(block, offset, out.size(), geometry_.read_size, "read"));
  if (!s_->broken.ok()) return s_->broken;
  s_->MaybeEvict();
  if (out.size() == geometry_.block_size && !s_->dirty.contains(block)) {
    const uint8_t* cached = s_->cache.Find(block);
    if (!cached && !s_->cache.Admit(block)) {
      return s_->LoadCommitted(block, out.data());  // first miss: decrypt straight into the caller's buffer
    }
    if (!cached) {
      COFFER_ASSIGN_OR_RETURN(cached, s_->LoadIntoCache(block));
    }
    std::memcpy(out.data(), cached, out.size());
    return Status::Ok();
  }
  COFFER_ASSIGN_OR_RETURN(const uint8_t* data, s_->SectorForRead(block));
  if (!out.empty()) std::memcpy(out.data(), data + offset, out.size());
  return Status::Ok();
}

Status SealedVolume::Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) {
  COFFER_RETURN_IF_ERROR(CheckRange(block, offset, data.size(), geometry_.prog_size, "prog"));
  if (!s_->broken.ok()) return s_->broken;
  s_->MaybeEvict();
  if (data.size() == geometry_.block_size) {
    State::DirtySector& d = s_->ResetDirty(block);
    if (IsErased(data)) {
      // Nothing to store: an erased sector has a zero leaf.
    } else if (geometry_.block_size < kSealAtProgMinSector) {
      // Small sectors: a copy costs far less than the AEAD open a read-back before the commit
      // would need (filesystems read back what they just wrote, e.g. littlefs's CTZ pointers).
      d.kind = State::DirtySector::kPlain;
      d.buf = s_->TakePlain();
      std::memcpy(d.buf.data(), data.data(), data.size());
    } else {
      // Large sectors: seal now, straight from the caller's buffer (no plaintext copy).
      Bytes sealed = s_->TakeSealed();
      Status st = s_->SealSector(block, s_->header.counter + 1, data, sealed.data());
      if (!st.ok()) {
        s_->dirty.erase(block);  // the sector is unchanged since the last commit
        return st;
      }
      d.kind = State::DirtySector::kSealed;
      d.buf = std::move(sealed);
    }
  } else {
    COFFER_ASSIGN_OR_RETURN(Bytes * sector, s_->SectorForWrite(block));
    if (!data.empty()) std::memcpy(sector->data() + offset, data.data(), data.size());
  }
  if (s_->dirty.size() * geometry_.block_size > s_->options.max_dirty_bytes) return s_->Commit(nullptr);
  return Status::Ok();
}

Status SealedVolume::Erase(uint32_t block) {
  COFFER_RETURN_IF_ERROR(CheckRange(block, 0, 0, 1, "erase"));
  if (!s_->broken.ok()) return s_->broken;
  s_->ResetDirty(block);
  if (s_->dirty.size() * geometry_.block_size > s_->options.max_dirty_bytes) return s_->Commit(nullptr);
  return Status::Ok();
}

Status SealedVolume::Sync() {
  if (!s_->broken.ok()) return s_->broken;
  if (s_->dirty.empty()) return Status::Ok();
  s_->MaybeEvict();
  return s_->Commit(nullptr);
}

VolumeInfo SealedVolume::Info() const {
  const Header& h = s_->header;
  VolumeInfo info;
  info.store = s_->store->Describe();
  info.anchor = s_->anchor->Describe();
  info.volume_id = HexEncode(h.id);
  info.format_version = h.version;
  info.suite = h.suite;
  info.sector_size = h.layout.sector_size;
  info.sector_count = h.layout.sector_count;
  info.record_size = h.layout.record_size;
  info.record_count = s_->store->record_count();
  info.tree_fanout = h.layout.fanout;
  info.tree_levels = h.layout.tree_levels();
  info.counter = h.counter;
  info.root = HexEncode(h.root);
  info.sealed_writes = h.sealed_writes;
  for (size_t k = 0; k < h.slots.size(); ++k) {
    if (h.slots[k].type != KeySlotType::kEmpty) info.slots.push_back({int(k), h.slots[k].type});
  }
  info.unlocked_slot = s_->unlocked_slot;
  return info;
}

Result<VerifyReport> SealedVolume::Verify() {
  if (!s_->broken.ok()) return s_->broken;
  VerifyReport report;
  const Layout& l = s_->layout();
  report.sectors = l.sector_count;
  Bytes data(l.sector_size);
  uint64_t bad_node = UINT64_MAX;
  for (uint64_t i = 0; i < l.sector_count; ++i) {
    if (i % l.fanout == 0) s_->MaybeEvict();
    if (i / l.fanout == bad_node) continue;
    auto leaf = s_->CommittedLeaf(i);
    if (!leaf.ok()) {
      if (leaf.status().code() != StatusCode::kDataLoss) return leaf.status();
      bad_node = i / l.fanout;
      uint64_t last = std::min<uint64_t>(l.sector_count, (bad_node + 1) * l.fanout) - 1;
      report.failures.push_back("sectors " + std::to_string(i) + ".." + std::to_string(last) + ": " +
                                leaf.status().message());
    } else if (*leaf != kZeroHash) {
      report.written_sectors++;
      Status s = s_->LoadCommitted(i, data.data());
      if (!s.ok()) {
        if (s.code() != StatusCode::kDataLoss) return s;
        report.failures.push_back("sector " + std::to_string(i) + ": " + s.message());
      }
    }
    if (report.failures.size() >= 100) break;
  }
  return report;
}

Result<int> SealedVolume::FindKeySlot(UnlockMethod& method) {
  auto r = Unwrap(s_->header, method, s_->store->Describe());
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kUnauthenticated) {
      return NotFound("no key slot of this volume opens with " + method.Describe());
    }
    return r.status();
  }
  if (!r->second.Equals(s_->master)) return Internal("a key slot wraps a different master key");
  return r->first;
}

Result<int> SealedVolume::AddKeySlot(UnlockMethod& method) {
  if (!s_->broken.ok()) return s_->broken;
  auto existing = FindKeySlot(method);
  if (existing.ok()) {
    return AlreadyExists("key slot " + std::to_string(*existing) + " already opens with " + method.Describe());
  }
  auto slots = s_->header.slots;
  for (size_t k = 0; k < slots.size(); ++k) {
    if (slots[k].type != KeySlotType::kEmpty) continue;
    COFFER_ASSIGN_OR_RETURN(slots[k], MakeSlot(method, s_->header.id, k, s_->master));
    COFFER_RETURN_IF_ERROR(s_->Commit(&slots));
    return int(k);
  }
  return NoSpace("all " + std::to_string(slots.size()) + " key slots are in use; remove one first");
}

Status SealedVolume::RemoveKeySlot(int index, bool allow_crypto_erase) {
  if (!s_->broken.ok()) return s_->broken;
  auto slots = s_->header.slots;
  if (index < 0 || size_t(index) >= slots.size() || slots[index].type == KeySlotType::kEmpty) {
    return NotFound("key slot " + std::to_string(index) + " is empty or does not exist");
  }
  size_t used = std::count_if(slots.begin(), slots.end(), [](const Slot& s) { return s.type != KeySlotType::kEmpty; });
  if (used == 1 && !allow_crypto_erase) {
    return FailedPrecondition("slot " + std::to_string(index) +
                              " is the last key slot: removing it destroys the volume's data for good "
                              "(crypto-erase)");
  }
  if (used == 1) return CryptoErase();
  slots[index] = Slot{};
  return s_->Commit(&slots);
}

Status SealedVolume::CryptoErase() {
  if (!s_->broken.ok()) return s_->broken;
  std::array<Slot, volume_format::kSlotCount> none{};
  s_->dirty.clear();  // nothing unsynced is worth sealing now
  COFFER_RETURN_IF_ERROR(s_->Commit(&none));
  (void)s_->anchor->Forget(s_->header.id);
  s_->master = SecretBytes();
  s_->mac_key = SecretBytes();
  s_->aead.reset();
  s_->cache.Clear();
  s_->nodes.clear();
  s_->broken = FailedPrecondition("the volume was crypto-erased");
  return Status::Ok();
}

}  // namespace coffer
