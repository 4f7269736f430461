// Reference images written by real littlefs (v2.4.0 disk 2.0, v2.11.2 disk 2.1) must mount and
// read back exactly as their manifests say: tree, sizes, contents (sha256) and user attributes.
#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "coffer/base/bytes.h"
#include "coffer/blockdev/memory_block_device.h"
#include "coffer/fs/filesystem.h"
#include "gtest/gtest.h"

namespace coffer::fs {
namespace {

std::string Sha256Hex(const std::vector<uint8_t>& data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; i++) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

std::string Hex(const std::vector<uint8_t>& data) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (uint8_t b : data) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

struct Vector {
  std::filesystem::path dir;
  nlohmann::json manifest;
  std::unique_ptr<MemoryBlockDevice> device;
};

std::filesystem::path VectorsDir() { return std::filesystem::path(COFFER_VECTORS_DIR) / "littlefs"; }

std::unique_ptr<MemoryBlockDevice> LoadImage(const std::filesystem::path& dir, const nlohmann::json& m) {
  std::ifstream in(dir / "image.bin", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto& g = m["geometry"];
  BlockGeometry geo;
  geo.block_size = g["block_size"];
  geo.block_count = uint32_t(bytes.size() / geo.block_size);
  geo.read_size = g["read_size"];
  geo.prog_size = g["prog_size"];
  geo.erase_value = std::string(g["erase"]).find("no-op") != std::string::npos ? -1 : 0xff;
  auto dev = std::make_unique<MemoryBlockDevice>(geo, 0);
  dev->raw() = bytes;
  return dev;
}

// Walks the whole tree with OpenDir/Read, returning path -> entry.
void Walk(Filesystem& fs, const std::string& dir, std::map<std::string, EntryInfo>* out) {
  auto d = fs.OpenDir(dir.empty() ? "/" : dir);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  int dots = 0;
  while (true) {
    auto e = d->Read();
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    if (!e->has_value()) break;
    const EntryInfo& info = **e;
    if (info.name == "." || info.name == "..") {
      dots++;
      continue;
    }
    std::string path = dir.empty() ? info.name : dir + "/" + info.name;
    (*out)[path] = info;
    if (info.type == EntryType::kDir) Walk(fs, path, out);
  }
  EXPECT_EQ(dots, 2);
}

class ReferenceImageTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceImageTest, MountsAndMatchesManifest) {
  std::filesystem::path dir = VectorsDir() / GetParam();
  if (!std::filesystem::exists(dir / "manifest.json")) GTEST_SKIP() << "vector missing: " << dir;
  nlohmann::json m = nlohmann::json::parse(std::ifstream(dir / "manifest.json"));
  auto dev = LoadImage(dir, m);
  auto before = dev->raw();

  // geometry discovery from the superblock alone
  auto probed = Filesystem::Probe(*dev);
  ASSERT_TRUE(probed.ok()) << probed.status().ToString();
  const auto& sb = m["superblock_as_read"][0];
  EXPECT_EQ(probed->block_size, uint32_t(sb["block_size"]));
  EXPECT_EQ(probed->block_count, uint32_t(sb["block_count"]));
  EXPECT_EQ(uint32_t(probed->disk_version), uint32_t(sb["version"]));
  EXPECT_EQ(probed->name_max, uint32_t(sb["name_max"]));

  Config cfg;
  cfg.cache_size = m["geometry"]["cache_size"];
  cfg.lookahead_size = m["geometry"]["lookahead_size"];
  auto fs = Filesystem::Mount(*dev, cfg);
  ASSERT_TRUE(fs.ok()) << fs.status().ToString();
  EXPECT_EQ(uint32_t((*fs)->info().disk_version), uint32_t(sb["version"]));

  std::map<std::string, EntryInfo> got;
  Walk(**fs, "", &got);
  std::map<std::string, nlohmann::json> want;
  for (const auto& e : m["tree"]) want[e["path"]] = e;
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [path, e] : want) {
    ASSERT_TRUE(got.count(path)) << path;
    const EntryInfo& info = got[path];
    auto st = (*fs)->Stat(path);
    ASSERT_TRUE(st.ok()) << path << ": " << st.status().ToString();
    if (e["type"] == "dir") {
      EXPECT_EQ(info.type, EntryType::kDir) << path;
      EXPECT_EQ(st->type, EntryType::kDir) << path;
    } else {
      EXPECT_EQ(info.type, EntryType::kFile) << path;
      EXPECT_EQ(info.size, uint32_t(e["size"])) << path;
      auto f = (*fs)->Open(path, kRdOnly);
      ASSERT_TRUE(f.ok()) << path << ": " << f.status().ToString();
      std::vector<uint8_t> data(e["size"].get<size_t>() + 7);
      auto n = f->Read(data);
      ASSERT_TRUE(n.ok()) << path << ": " << n.status().ToString();
      ASSERT_EQ(*n, size_t(e["size"])) << path;
      data.resize(*n);
      EXPECT_EQ(Sha256Hex(data), std::string(e["sha256"])) << path;
      EXPECT_TRUE(f->Close().ok());
    }
    // every attribute type: present exactly when the manifest lists it
    std::map<std::string, std::string> attrs;
    if (e.contains("attrs")) {
      for (auto& [k, v] : e["attrs"].items()) attrs[k] = v;
    }
    for (int type = 0; type < 256; type++) {
      char key[8];
      snprintf(key, sizeof(key), "0x%02x", type);
      auto a = (*fs)->GetAttr(path, uint8_t(type));
      if (attrs.count(key)) {
        ASSERT_TRUE(a.ok()) << path << " attr " << key << ": " << a.status().ToString();
        EXPECT_EQ(Hex(*a), attrs[key]) << path << " attr " << key;
      } else {
        ASSERT_FALSE(a.ok()) << path << " attr " << key;
        EXPECT_EQ(a.status().code(), StatusCode::kNotFound);
      }
    }
  }
  EXPECT_TRUE((*fs)->Stat("no/such").status().code() == StatusCode::kNotFound);

  // traversal sees every block exactly as the allocator would
  uint32_t blocks = 0;
  ASSERT_TRUE((*fs)->Traverse([&](uint32_t b) {
                 EXPECT_LT(b, (*fs)->info().block_count);
                 blocks++;
                 return Status::Ok();
               }).ok());
  auto used = (*fs)->BlocksInUse();
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, blocks);
  ASSERT_TRUE((*fs)->Unmount().ok());
  EXPECT_TRUE(dev->raw() == before) << "reading must not modify the image";
}

INSTANTIATE_TEST_SUITE_P(Vectors, ReferenceImageTest,
                         ::testing::Values("azure_v2.4.0_disk2.0", "esp_v2.11.2_disk2.1"));

}  // namespace
}  // namespace coffer::fs
