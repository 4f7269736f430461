// DiskHostBackingStore: coffer's records on a host speaking the original disk host protocol
// (GET /ReadBlock?block=N, POST /WriteBlock?block=N, 272 bytes each, one record per request).
// The protocol has no batches, so atomicity comes from an on-store redo journal in the last
// records (docs/format/blockhost_protocol.md section 5):
//   raw [0, D)                 records coffer sees (D = kDiskHostDataRecords)
//   raw [D, D+1024)            journal slots: the batch's record data, in batch order
//   raw [D+1024, D+1032)       journal index: uint16 LE home index per slot, 136 per record
//   raw 16383                  commit record: "CDHJ", version 1, count, sequence, SHA-256
// A batch writes slots, index, commit record; then the homes; then zeroes the commit record.
// Open replays a committed journal. A commit record that does not match its journal cannot come from
// a crash (each record was acknowledged before the commit was written): it is reported as DataLoss.
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>

#include "coffer/base/random.h"
#include "remote/transport.h"

namespace coffer::remote {
namespace {

constexpr uint64_t kRecordSize = kDiskHostRecordSize;
constexpr uint64_t kSlotBase = kDiskHostDataRecords;
constexpr uint64_t kIndexBase = kSlotBase + kDiskHostJournalSlots;
constexpr uint64_t kCommit = kDiskHostRawRecords - 1;
constexpr uint64_t kIndicesPerRecord = kRecordSize / 2;  // 136
constexpr char kCommitMagic[4] = {'C', 'D', 'H', 'J'};
constexpr uint16_t kJournalVersion = 1;
static_assert(kIndexBase + kDiskHostIndexRecords == kCommit);
static_assert(kDiskHostIndexRecords * kIndicesPerRecord >= kDiskHostJournalSlots);

}  // namespace

class DiskHostBackingStore : public BackingStore {
 public:
  DiskHostBackingStore(std::unique_ptr<HttpTransport> t, std::string describe)
      : transport_(std::move(t)), describe_(std::move(describe)) {}

  uint32_t record_size() const override { return kRecordSize; }
  uint64_t record_count() const override { return kDiskHostDataRecords; }
  std::string Describe() const override { return describe_; }

  Status Read(uint64_t first, uint32_t count, std::span<uint8_t> out) override {
    COFFER_RETURN_IF_ERROR(CheckRead(first, count, out.size()));
    for (uint32_t i = 0; i < count; ++i) {
      COFFER_RETURN_IF_ERROR(ReadRaw(first + i, out.subspan(i * kRecordSize, kRecordSize)));
    }
    return Status::Ok();
  }

  Status WriteBatch(std::span<const RecordWrite> writes) override {
    COFFER_RETURN_IF_ERROR(CheckBatch(writes));
    if (writes.empty()) return Status::Ok();
    if (writes.size() == 1) return WriteRaw(writes[0].index, writes[0].data);  // one request is atomic
    if (writes.size() > kDiskHostJournalSlots) {
      return InvalidArgument("batch of " + std::to_string(writes.size()) + " records exceeds the " +
                             std::to_string(kDiskHostJournalSlots) + "-record journal of " + describe_);
    }
    Bytes index_area(((writes.size() + kIndicesPerRecord - 1) / kIndicesPerRecord) * kRecordSize, 0);
    for (size_t i = 0; i < writes.size(); ++i) {
      COFFER_RETURN_IF_ERROR(WriteRaw(kSlotBase + i, writes[i].data));
      PutLe16(index_area.data() + 2 * i, uint16_t(writes[i].index));
    }
    for (size_t k = 0; k * kRecordSize < index_area.size(); ++k) {
      COFFER_RETURN_IF_ERROR(WriteRaw(kIndexBase + k, std::span<const uint8_t>(index_area).subspan(k * kRecordSize, kRecordSize)));
    }
    Bytes commit(kRecordSize, 0);
    std::memcpy(commit.data(), kCommitMagic, 4);
    PutLe16(commit.data() + 4, kJournalVersion);
    PutLe16(commit.data() + 6, uint16_t(writes.size()));
    PutLe64(commit.data() + 8, ++sequence_);
    auto digest = JournalDigest(commit, index_area, writes);
    std::memcpy(commit.data() + 16, digest.data(), 32);
    COFFER_RETURN_IF_ERROR(WriteRaw(kCommit, commit));
    for (const RecordWrite& w : writes) COFFER_RETURN_IF_ERROR(WriteRaw(w.index, w.data));
    return WriteRaw(kCommit, Bytes(kRecordSize, 0));
  }

  // Finishes a batch a crash interrupted after its commit record was written.
  Status Recover() {
    Bytes commit(kRecordSize);
    COFFER_RETURN_IF_ERROR(ReadRaw(kCommit, commit));
    if (std::all_of(commit.begin(), commit.end(), [](uint8_t b) { return b == 0; })) return Status::Ok();
    if (std::memcmp(commit.data(), kCommitMagic, 4) != 0) {
      return DataLoss(describe_ + ": journal commit record (record " + std::to_string(kCommit) +
                      ") holds foreign bytes: the host's records were altered");
    }
    if (GetLe16(commit.data() + 4) != kJournalVersion) {
      return Unsupported(describe_ + ": journal version " + std::to_string(GetLe16(commit.data() + 4)) + " (want 1)");
    }
    uint16_t count = GetLe16(commit.data() + 6);
    if (count < 2 || count > kDiskHostJournalSlots) return DataLoss(describe_ + ": journal commit record has a bad count");
    sequence_ = GetLe64(commit.data() + 8);
    Bytes index_area(((count + kIndicesPerRecord - 1) / kIndicesPerRecord) * kRecordSize);
    for (size_t k = 0; k * kRecordSize < index_area.size(); ++k) {
      COFFER_RETURN_IF_ERROR(ReadRaw(kIndexBase + k, std::span<uint8_t>(index_area).subspan(k * kRecordSize, kRecordSize)));
    }
    Bytes slots(count * kRecordSize);
    std::vector<RecordWrite> writes;
    for (uint16_t i = 0; i < count; ++i) {
      COFFER_RETURN_IF_ERROR(ReadRaw(kSlotBase + i, std::span<uint8_t>(slots).subspan(i * kRecordSize, kRecordSize)));
    }
    for (uint16_t i = 0; i < count; ++i) {
      uint16_t home = GetLe16(index_area.data() + 2 * i);
      if (home >= kDiskHostDataRecords) return DataLoss(describe_ + ": journal names record " + std::to_string(home) + " outside the data area");
      writes.push_back({home, std::span<const uint8_t>(slots).subspan(i * kRecordSize, kRecordSize)});
    }
    auto digest = JournalDigest(commit, index_area, writes);
    if (CRYPTO_memcmp(digest.data(), commit.data() + 16, 32) != 0) {
      return DataLoss(describe_ + ": journal does not match its commit record: the host's records were altered");
    }
    for (const RecordWrite& w : writes) COFFER_RETURN_IF_ERROR(WriteRaw(w.index, w.data));
    return WriteRaw(kCommit, Bytes(kRecordSize, 0));
  }

 private:
  static std::array<uint8_t, 32> JournalDigest(std::span<const uint8_t> commit, std::span<const uint8_t> index_area,
                                              std::span<const RecordWrite> writes) {
    std::array<uint8_t, 32> d{};
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    EVP_DigestUpdate(ctx, commit.data(), 16);
    EVP_DigestUpdate(ctx, index_area.data(), index_area.size());
    for (const RecordWrite& w : writes) EVP_DigestUpdate(ctx, w.data.data(), w.data.size());
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, d.data(), &n);
    EVP_MD_CTX_free(ctx);
    return d;
  }

  Status ReadRaw(uint64_t block, std::span<uint8_t> out) {
    COFFER_ASSIGN_OR_RETURN(HttpReply r, transport_->Send("GET", "/ReadBlock?block=" + std::to_string(block)));
    if (r.status != 200) return StatusFromReply(r, "read block " + std::to_string(block) + " of " + describe_);
    if (r.body.size() != kRecordSize) {
      return IoError(describe_ + ": block " + std::to_string(block) + " came back as " + std::to_string(r.body.size()) +
                     " bytes, not 272");
    }
    std::memcpy(out.data(), r.body.data(), kRecordSize);
    return Status::Ok();
  }

  Status WriteRaw(uint64_t block, std::span<const uint8_t> data) {
    COFFER_ASSIGN_OR_RETURN(HttpReply r, transport_->Send("POST", "/WriteBlock?block=" + std::to_string(block),
                                                          std::string(AsStringView(data))));
    if (r.status != 200) return StatusFromReply(r, "write block " + std::to_string(block) + " of " + describe_);
    return Status::Ok();
  }

  std::unique_ptr<HttpTransport> transport_;
  std::string describe_;
  uint64_t sequence_ = 0;
};

Result<std::unique_ptr<BackingStore>> OpenDiskHostStore(const std::string& spec, const RemoteOptions& options) {
  COFFER_ASSIGN_OR_RETURN(net::Url url, net::ParseUrl(spec));
  if (url.scheme != "diskhost" || (!url.path.empty() && url.path != "/")) {
    return InvalidArgument("'" + spec + "' should look like diskhost://HOST:PORT");
  }
  COFFER_ASSIGN_OR_RETURN(auto transport, HttpTransport::Create(url, options));
  auto store = std::make_unique<DiskHostBackingStore>(std::move(transport), "diskhost://" + url.HostPort());
  COFFER_RETURN_IF_ERROR(store->Recover());
  return std::unique_ptr<BackingStore>(std::move(store));
}

}  // namespace coffer::remote
