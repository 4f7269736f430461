// The coffer crypt manifest: serialisation, MAC, version check, and the anchor's rollback, fork
// and deletion detection.
#include "coffer/rclone/manifest.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"

namespace coffer::rclone {
namespace {

struct TmpDir {
  std::string path = std::filesystem::temp_directory_path() / ("coffer-manifest-" + HexEncode(RandomBytes(6)));
  TmpDir() { std::filesystem::create_directories(path); }
  ~TmpDir() { std::filesystem::remove_all(path); }
};

Manifest Sample() {
  Manifest m;
  m.folder_id.fill(7);
  m.counter = 5;
  m.files["abc/def"] = ManifestEntry{10, 58, {}};
  m.files["x.bin"] = ManifestEntry{0, 32, {}};
  m.files["x.bin"].sha256.fill(9);
  return m;
}

TEST(CryptManifest, RoundTripsAndIsMacProtected) {
  auto keys = DeriveKeys("pw", "");
  Bytes b = SerializeManifest(Sample(), *keys);
  auto m = ParseManifest(b, *keys);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->counter, 5u);
  EXPECT_EQ(m->files.size(), 2u);
  EXPECT_EQ(m->files["abc/def"].encrypted_size, 58u);
  for (size_t i = 0; i < b.size(); i += 7) {
    Bytes t = b;
    t[i] ^= 1;
    auto r = ParseManifest(t, *keys);
    EXPECT_FALSE(r.ok()) << i;
  }
  auto other = DeriveKeys("other", "");
  EXPECT_EQ(ParseManifest(b, *other).status().code(), StatusCode::kDataLoss);
  Bytes v2 = b;
  v2[8] = 2;
  EXPECT_EQ(ParseManifest(v2, *keys).status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(ParseManifest(ByteSpan(b.data(), 20), *keys).status().code(), StatusCode::kCorrupt);
}

TEST(CryptManifest, AnchorDetectsRollbackForkAndDeletion) {
  TmpDir d;
  auto keys = DeriveKeys("pw", "");
  AnchorStore anchors(d.path + "/state/anchors.json");
  Manifest m = Sample();
  Bytes b5 = SerializeManifest(m, *keys);
  ASSERT_TRUE(anchors.CheckAndAdvance(d.path, &m, b5).ok());
  m.counter = 6;
  Bytes b6 = SerializeManifest(m, *keys);
  ASSERT_TRUE(anchors.CheckAndAdvance(d.path, &m, b6).ok());
  Manifest old = Sample();
  EXPECT_EQ(anchors.CheckAndAdvance(d.path, &old, b5).code(), StatusCode::kDataLoss);  // rollback
  m.files.erase("x.bin");
  Bytes fork = SerializeManifest(m, *keys);
  EXPECT_EQ(anchors.CheckAndAdvance(d.path, &m, fork).code(), StatusCode::kDataLoss);  // same counter, other bytes
  EXPECT_EQ(anchors.CheckAndAdvance(d.path, nullptr, {}).code(), StatusCode::kDataLoss);  // manifest deleted
  struct stat st;
  ASSERT_EQ(::stat((d.path + "/state/anchors.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(CryptManifest, CompareFindsMissingAddedCutAndSwapped) {
  TmpDir d;
  WriteFileAtomic(d.path + "/a", AsBytes("aaaa"));
  WriteFileAtomic(d.path + "/b", AsBytes("bbbbbbbb"));
  auto m = BuildManifest(d.path, {"a", "b"}, {});
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(CompareWithManifest(*m, d.path, {"a", "b"}).empty());
  WriteFileAtomic(d.path + "/a", AsBytes("bbbb"));  // same size, other content
  WriteFileAtomic(d.path + "/b", AsBytes("bbbb"));  // cut
  WriteFileAtomic(d.path + "/c", AsBytes("new"));
  auto diffs = CompareWithManifest(*m, d.path, {"a", "b", "c"});
  ASSERT_EQ(diffs.size(), 3u);
  for (auto& [p, s] : diffs) EXPECT_EQ(s.code(), StatusCode::kDataLoss) << p;
  diffs = CompareWithManifest(*m, d.path, {"b"});
  EXPECT_EQ(diffs.size(), 2u);  // a missing, b cut
}

}  // namespace
}  // namespace coffer::rclone
