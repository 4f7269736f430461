// The tamper suite with the block host as the attacker: a sealed volume lives on a real block host
// on 127.0.0.1 (protocol v1 over HTTP), and between sessions the host's own volume file is changed
// behind the server's back: bit flips in sealed sectors, tree nodes and the header, swapped
// sectors, a replayed older sector, a sector spliced in from another volume, a whole older copy
// restored (which is also what a host that acknowledges a batch and then loses it looks like), and
// a truncated file. Each must be an integrity failure (kDataLoss) or an error, and no read may
// ever return bytes other than the ones committed.
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "blockhost/test_host.h"
#include "coffer/remote/remote_store.h"
#include "volume/volume_test_util.h"

namespace coffer::remote {
namespace {

using blockhost::testing::TestHost;

constexpr uint32_t kSector = 256;
constexpr uint64_t kSectors = 64;

class HostileHost : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(host_.status().ok()) << host_.status().ToString();
    layout_ = volume_format::MakeLayout(kSector, volume_format::PreferredRecordSize(kSector), kSectors).value();
    options_.retry = net::BackoffPolicy{2, std::chrono::milliseconds(10), std::chrono::milliseconds(20), 2.0};
    options_.io_timeout = std::chrono::seconds(5);
    ASSERT_TRUE(CreateVolume("victim").ok());
  }

  std::string Url(const std::string& name) const { return host_.origin() + "/v1/volumes/" + name; }
  std::string HostFile(const std::string& name) const { return host_.data_dir() + "/" + name + ".vol"; }

  Status CreateVolume(const std::string& name) {
    COFFER_ASSIGN_OR_RETURN(auto store, CreateHttpStore(Url(name), layout_.record_size, layout_.records_used, options_));
    return SealedVolume::Create(std::move(store), key_, anchor_,
                                {.size_bytes = kSector * kSectors, .sector_size = kSector})
        .status();
  }
  Result<std::unique_ptr<SealedVolume>> Open(const std::string& name = "victim") {
    COFFER_ASSIGN_OR_RETURN(auto store, OpenHttpStore(Url(name), options_));
    return SealedVolume::Open(std::move(store), key_, anchor_);
  }

  // Writes sectors 0..count-1 with known patterns, in two commits (so versions differ).
  void Fill(uint64_t count, const std::string& name = "victim") {
    auto v = Open(name);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    for (uint32_t i = 0; i < count; ++i) {
      ASSERT_TRUE((*v)->Erase(i).ok());
      ASSERT_TRUE((*v)->Prog(i, 0, Pattern(kSector, uint8_t(i))).ok());
      if (i == count / 2) ASSERT_TRUE((*v)->Sync().ok());
    }
    ASSERT_TRUE((*v)->Sync().ok());
  }

  // The host's file: 4096-byte host header, then records (docs/format/blockhost_protocol.md).
  static constexpr off_t kHostHeader = 4096;
  off_t RecordOffset(uint64_t record) const { return kHostHeader + off_t(record) * layout_.record_size; }
  Bytes ReadHost(off_t off, size_t n, const std::string& name = "victim") {
    Bytes b(n);
    int fd = ::open(HostFile(name).c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(::pread(fd, b.data(), n, off), ssize_t(n));
    ::close(fd);
    return b;
  }
  void WriteHost(off_t off, ByteSpan b) {
    int fd = ::open(HostFile("victim").c_str(), O_WRONLY);  // in place: the server keeps its descriptor
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, b.data(), b.size(), off), ssize_t(b.size()));
    ::close(fd);
  }
  void FlipHostByte(off_t off, uint8_t mask) {
    Bytes b = ReadHost(off, 1);
    b[0] ^= mask;
    WriteHost(off, b);
  }
  Bytes WholeHostFile() { return ReadHost(0, std::filesystem::file_size(HostFile("victim"))); }

  TestHost host_;
  volume_format::Layout layout_;
  RemoteOptions options_;
  TestKey key_{7};
  std::shared_ptr<MemoryAnchor> anchor_ = std::make_shared<MemoryAnchor>();  // the device's, not the host's
};

TEST_F(HostileHost, FlipsInASealedSectorAreDetected) {
  Fill(10);
  off_t base = RecordOffset(layout_.first_sector_record + 4);
  for (size_t off = 0; off < kSector + volume_format::kSectorOverhead; off += (off < 40 || off > 250) ? 1 : 9) {
    FlipHostByte(base + off, 0x10);
    auto v = Open();
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    Bytes out(kSector);
    Status s = (*v)->Read(4, 0, out);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << "byte " << off << " of sector 4 changed by the host undetected";
    EXPECT_NE(s.message().find("sector 4"), std::string::npos) << s.message();
    EXPECT_EQ(ReadAllChecked(**v, kSector, 10), 1);
    FlipHostByte(base + off, 0x10);
  }
}

TEST_F(HostileHost, FlipsInTreeNodesAreDetected) {
  Fill(20);
  size_t node_bytes = size_t(layout_.records_per_node) * layout_.record_size;
  // Level-1 node 0 (leaves of sectors 0..F-1) and the top node: both populated.
  for (uint64_t node : {uint64_t(0), layout_.total_nodes - 1}) {
    off_t base = RecordOffset(layout_.first_tree_record) + off_t(node * node_bytes);
    for (size_t off = 0; off < layout_.fanout * 32; off += 11) {
      Bytes before = ReadHost(base + off, 1);
      FlipHostByte(base + off, 0x01);
      auto v = Open();
      ASSERT_TRUE(v.ok()) << v.status().ToString();
      ReadAllChecked(**v, kSector, 20);  // never wrong data
      auto report = (*v)->Verify();
      ASSERT_TRUE(report.ok()) << report.status().ToString();
      // A flip inside an entry of a populated child must be caught (entries past the last child are
      // zero and the flip makes them non-zero, which changes the node hash too).
      EXPECT_FALSE(report->ok()) << "tree node " << node << " byte " << off << " changed undetected";
      FlipHostByte(base + off, 0x01);
    }
  }
}

TEST_F(HostileHost, FlipsInTheVolumeHeaderAreDataLoss) {
  Fill(4);
  off_t base = RecordOffset(0);
  for (size_t off = 0; off < volume_format::kHeaderSize; off += 61) {
    FlipHostByte(base + off, 0x04);
    auto v = Open();
    EXPECT_EQ(v.status().code(), StatusCode::kDataLoss) << "header byte " << off << ": " << v.status().ToString();
    FlipHostByte(base + off, 0x04);
  }
  EXPECT_TRUE(Open().ok());
}

TEST_F(HostileHost, SwappedSectorsAreDetected) {
  Fill(8);
  off_t a = RecordOffset(layout_.first_sector_record + 2), b = RecordOffset(layout_.first_sector_record + 6);
  Bytes ra = ReadHost(a, layout_.record_size), rb = ReadHost(b, layout_.record_size);
  WriteHost(a, rb);
  WriteHost(b, ra);
  auto v = Open();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(ReadAllChecked(**v, kSector, 8), 2);
}

TEST_F(HostileHost, ReplayedOlderSectorIsDetected) {
  Fill(8);
  off_t off = RecordOffset(layout_.first_sector_record + 3);
  Bytes old = ReadHost(off, layout_.record_size);
  {
    auto v = Open();
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE((*v)->Erase(3).ok());
    ASSERT_TRUE((*v)->Prog(3, 0, Pattern(kSector, 99)).ok());
    ASSERT_TRUE((*v)->Sync().ok());
  }
  WriteHost(off, old);
  auto v = Open();
  ASSERT_TRUE(v.ok());
  Bytes out(kSector);
  EXPECT_EQ((*v)->Read(3, 0, out).code(), StatusCode::kDataLoss);
  EXPECT_EQ(ReadAllChecked(**v, kSector, 8), 1);
}

TEST_F(HostileHost, SectorSplicedFromAnotherVolumeIsDetected) {
  // Same key, same index, another volume on the same host: the AD binds the volume id.
  ASSERT_TRUE(CreateVolume("other").ok());
  Fill(4, "other");
  Fill(4);
  off_t off = RecordOffset(layout_.first_sector_record + 1);
  WriteHost(off, ReadHost(off, layout_.record_size, "other"));
  auto v = Open();
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(ReadAllChecked(**v, kSector, 4), 1);
}

TEST_F(HostileHost, RestoredOlderVolumeOrALostBatchIsRollback) {
  Fill(4);
  Bytes old = WholeHostFile();
  {
    auto v = Open();
    ASSERT_TRUE(v.ok());
    ASSERT_TRUE((*v)->Erase(1).ok());
    ASSERT_TRUE((*v)->Prog(1, 0, Pattern(kSector, 42)).ok());
    ASSERT_TRUE((*v)->Sync().ok());  // acknowledged by the host...
  }
  WriteHost(0, old);  // ...and then lost (or an old copy restored)
  auto v = Open();
  EXPECT_EQ(v.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(v.status().message().find("rolled back"), std::string::npos) << v.status().message();
}

TEST_F(HostileHost, TruncatedVolumeFileNeverYieldsData) {
  Fill(10);
  ASSERT_EQ(::truncate(HostFile("victim").c_str(), RecordOffset(layout_.first_sector_record + 5)), 0);
  // Reads past the cut fail on the host; the client's read-ahead may make the open itself fail.
  auto v = Open();
  if (!v.ok()) {
    std::cout << "open refused: " << v.status().ToString() << "\n";
    EXPECT_FALSE(v.status().message().empty());
    return;
  }
  Bytes out(kSector);
  for (uint32_t i = 0; i < 10; ++i) {
    Status s = (*v)->Read(i, 0, out);
    if (s.ok()) {
      EXPECT_EQ(out, Pattern(kSector, uint8_t(i))) << "WRONG DATA in sector " << i;
    } else {
      std::cout << "sector " << i << ": " << s.ToString() << "\n";
    }
  }
  Status past = (*v)->Read(9, 0, out);  // past the cut: an error, never a zero-fill
  EXPECT_FALSE(past.ok());
}

}  // namespace
}  // namespace coffer::remote
