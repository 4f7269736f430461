// End-to-end tests of `coffer fs ...`: the built binary on plain littlefs images (and sealed volumes
// once the volume module is in the build). Reference images made by real littlefs come from
// ../shared/vectors/littlefs.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "e2e_util.h"

namespace coffer::e2e {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

std::string RandomData(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = char(rng());
  return s;
}

std::string Sha256(const std::string& path) {
  RunResult r = Run("sha256sum", {path});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out.substr(0, 64);
}

// Every regular file below root, as relative path -> contents.
std::map<std::string, std::string> ReadTree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (auto& e : stdfs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) out[stdfs::relative(e.path(), root).string()] = ReadFile(e.path().string());
  }
  return out;
}

void MakeSourceTree(const std::string& root) {
  stdfs::create_directories(root + "/d1/d2");
  stdfs::create_directories(root + "/empty");
  WriteFile(root + "/big", RandomData(200000, 1));
  WriteFile(root + "/d1/d2/small", "hi\n");
  WriteFile(root + "/d1/k", RandomData(1000, 2));
  WriteFile(root + "/zero", "");
  WriteFile(root + "/d1/exact", RandomData(4096, 3));
}

bool SameDirs(const std::string& a, const std::string& b) {
  return Run("diff", {"-r", a, b}).exit_code == 0;
}

struct Geometry {
  const char* block_size;
  const char* block_count;
  const char* disk_version;
};

void PrintTo(const Geometry& g, std::ostream* os) {
  *os << g.block_size << "x" << g.block_count << " disk " << g.disk_version;
}

class FsPackRoundTrip : public ::testing::TestWithParam<Geometry> {};

TEST_P(FsPackRoundTrip, PackThenUnpackGivesTheSameTree) {
  TempDir t;
  MakeSourceTree(t / "src");
  Geometry g = GetParam();
  RunResult p = RunCoffer({"fs", "pack", t / "src", "--image", t / "img", "--block-size", g.block_size,
                           "--block-count", g.block_count, "--disk-version", g.disk_version});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(stdfs::file_size(t / "img"), std::stoull(g.block_size) * std::stoull(g.block_count));
  RunResult u = RunCoffer({"fs", "unpack", "--image", t / "img", t / "out"});
  ASSERT_EQ(u.exit_code, 0) << u.err;
  EXPECT_TRUE(SameDirs(t / "src", t / "out"));
  EXPECT_TRUE(stdfs::is_directory(t / "out/empty"));
  // The superblock says what pack was asked for (no silent upgrade of 2.0).
  RunResult i = RunCoffer({"fs", "info", "--image", t / "img", "--json"});
  ASSERT_EQ(i.exit_code, 0) << i.err;
  json info = json::parse(i.out);
  EXPECT_EQ(info["disk_version"], g.disk_version);
  EXPECT_EQ(std::to_string(info["block_size"].get<uint32_t>()), g.block_size);
  EXPECT_EQ(std::to_string(info["block_count"].get<uint32_t>()), g.block_count);
  RunResult c = RunCoffer({"fs", "check", "--image", t / "img"});
  EXPECT_EQ(c.exit_code, 0) << c.err;
  // Unpacking again leaves the image unchanged (read-only mount).
  std::string before = ReadFile(t / "img");
  ASSERT_EQ(RunCoffer({"fs", "unpack", "--image", t / "img", t / "out2"}).exit_code, 0);
  EXPECT_EQ(ReadFile(t / "img"), before);
}

INSTANTIATE_TEST_SUITE_P(Geometries, FsPackRoundTrip,
                         ::testing::Values(Geometry{"256", "16384", "2.0"}, Geometry{"4096", "256", "2.1"},
                                           Geometry{"512", "1024", "2.1"}),
                         [](const auto& info) {
                           return std::string(info.param.block_size) + "x" + info.param.block_count + "_disk" +
                                  (std::string(info.param.disk_version) == "2.0" ? "20" : "21");
                         });

TEST(FsReference, EveryReferenceImageUnpacksToItsManifest) {
  std::string vectors = VectorsDir();
  if (vectors.empty() || !stdfs::is_directory(vectors + "/littlefs")) {
    GTEST_SKIP() << "no ../shared/vectors/littlefs to test against";
  }
  int n = 0;
  for (auto& d : stdfs::directory_iterator(vectors + "/littlefs")) {
    std::string image = d.path().string() + "/image.bin";
    if (!stdfs::exists(image)) continue;
    SCOPED_TRACE(d.path().filename().string());
    n++;
    TempDir t;
    RunResult u = RunCoffer({"fs", "unpack", "--image", image, t / "out"});
    ASSERT_EQ(u.exit_code, 0) << u.err;
    json m = json::parse(ReadFile(d.path().string() + "/manifest.json"));
    std::map<std::string, std::string> want;
    std::set<std::string> want_dirs;
    for (auto& e : m["tree"]) {
      std::string p = e["path"].get<std::string>();
      while (!p.empty() && p[0] == '/') p.erase(0, 1);
      std::string type = e.value("type", "file");
      if (type == "dir" || type == "directory") {
        want_dirs.insert(p);
      } else {
        want[p] = e["sha256"].get<std::string>();
      }
    }
    std::map<std::string, std::string> got;
    for (auto& e : stdfs::recursive_directory_iterator(t / "out")) {
      std::string rel = stdfs::relative(e.path(), t / "out").string();
      if (e.is_regular_file()) got[rel] = Sha256(e.path().string());
      if (e.is_directory()) EXPECT_TRUE(want_dirs.count(rel)) << "unexpected directory " << rel;
    }
    EXPECT_EQ(got, want);
    for (const auto& dir : want_dirs) EXPECT_TRUE(stdfs::is_directory(t / "out/" + dir)) << dir;
    // info reports the disk version the image was written with.
    RunResult i = RunCoffer({"fs", "info", "--image", image, "--json"});
    ASSERT_EQ(i.exit_code, 0) << i.err;
    uint32_t version = m["superblock_as_read"][0]["version"];
    EXPECT_EQ(json::parse(i.out)["disk_version_raw"].get<uint32_t>(), version);
    // cat of every file matches too (same bytes on stdout).
    for (auto& [rel, sha] : want) {
      RunResult c = RunCoffer({"fs", "cat", "--image", image, "/" + rel});
      ASSERT_EQ(c.exit_code, 0) << c.err;
      WriteFile(t / "cat.out", c.out);
      EXPECT_EQ(Sha256(t / "cat.out"), sha) << rel;
    }
  }
  EXPECT_GT(n, 0);
}

// A freshly formatted image to play with.
class FsImage : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = t_ / "img";
    RunResult r = RunCoffer({"fs", "format", "--image", image_, "--block-size", "512", "--block-count", "256"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  RunResult Fs(std::vector<std::string> args) {
    args.insert(args.begin() + 1, {"--image", image_});
    args.insert(args.begin(), "fs");
    return RunCoffer(args);
  }
  TempDir t_;
  std::string image_;
};

TEST_F(FsImage, PutGetCatStatLsMvRmMkdir) {
  std::string data = RandomData(70000, 9);
  WriteFile(t_ / "a.bin", data);
  ASSERT_EQ(Fs({"mkdir", "/dir"}).exit_code, 0);
  RunResult put = Fs({"put", t_ / "a.bin", "/dir/a.bin"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  EXPECT_TRUE(put.err.empty()) << "no progress bar when stderr is not a terminal: " << put.err;

  RunResult cat = Fs({"cat", "/dir/a.bin"});
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, data);

  ASSERT_EQ(Fs({"get", "/dir/a.bin", t_ / "back.bin"}).exit_code, 0);
  EXPECT_EQ(ReadFile(t_ / "back.bin"), data);

  RunResult st = Fs({"stat", "/dir/a.bin", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  json sj = json::parse(st.out);
  EXPECT_EQ(sj["type"], "file");
  EXPECT_EQ(sj["size"], 70000);
  EXPECT_EQ(sj["path"], "/dir/a.bin");

  // put onto an existing file replaces it; put into a directory keeps the local name.
  WriteFile(t_ / "b.txt", "second\n");
  ASSERT_EQ(Fs({"put", t_ / "b.txt", "/dir/a.bin"}).exit_code, 0);
  EXPECT_EQ(Fs({"cat", "/dir/a.bin"}).out, "second\n");
  ASSERT_EQ(Fs({"put", t_ / "b.txt", "/dir"}).exit_code, 0);
  EXPECT_EQ(Fs({"cat", "/dir/b.txt"}).out, "second\n");

  RunResult ls = Fs({"ls", "/dir", "--json"});
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  json lj = json::parse(ls.out);
  ASSERT_EQ(lj.size(), 2u) << ls.out << " (no temporary entries left behind)";
  std::set<std::string> names;
  for (auto& e : lj) names.insert(e["name"].get<std::string>());
  EXPECT_EQ(names, (std::set<std::string>{"a.bin", "b.txt"}));

  ASSERT_EQ(Fs({"mv", "/dir/a.bin", "/moved"}).exit_code, 0);
  EXPECT_EQ(Fs({"stat", "/dir/a.bin"}).exit_code, 1);
  EXPECT_EQ(Fs({"cat", "/moved"}).out, "second\n");
  ASSERT_EQ(Fs({"mkdir", "-p", "/x/y/z"}).exit_code, 0);
  ASSERT_EQ(Fs({"mv", "/moved", "/x/y"}).exit_code, 0) << "mv onto a directory moves into it";
  EXPECT_EQ(Fs({"cat", "/x/y/moved"}).out, "second\n");

  RunResult tree = Fs({"tree", "--json"});
  ASSERT_EQ(tree.exit_code, 0);
  std::set<std::string> paths;
  for (auto& e : json::parse(tree.out)) paths.insert(e["path"].get<std::string>());
  EXPECT_EQ(paths, (std::set<std::string>{"/dir", "/dir/b.txt", "/x", "/x/y", "/x/y/moved", "/x/y/z"}));

  RunResult rm_dir = Fs({"rm", "/x"});
  EXPECT_EQ(rm_dir.exit_code, 1);
  EXPECT_NE(rm_dir.err.find("not empty"), std::string::npos) << rm_dir.err;
  ASSERT_EQ(Fs({"rm", "-r", "/x"}).exit_code, 0);
  ASSERT_EQ(Fs({"rm", "/dir/b.txt"}).exit_code, 0);
  EXPECT_EQ(json::parse(Fs({"ls", "/", "--json"}).out).size(), 1u);

  RunResult df = Fs({"df", "--json"});
  ASSERT_EQ(df.exit_code, 0) << df.err;
  json dj = json::parse(df.out);
  EXPECT_EQ(dj["block_size"], 512);
  EXPECT_EQ(dj["block_count"], 256);
  EXPECT_GE(dj["blocks_used"].get<int>(), 2);
  EXPECT_LT(dj["blocks_used"].get<int>(), 20);
  EXPECT_EQ(Fs({"check"}).exit_code, 0);
}

TEST_F(FsImage, MissingThingsAreClearErrors) {
  RunResult cat = Fs({"cat", "/nope"});
  EXPECT_EQ(cat.exit_code, 1);
  EXPECT_EQ(cat.err.rfind("coffer: error: ", 0), 0u) << cat.err;
  EXPECT_TRUE(cat.out.empty());
  RunResult get = Fs({"get", "/nope", t_ / "out"});
  EXPECT_EQ(get.exit_code, 1);
  EXPECT_FALSE(stdfs::exists(t_ / "out"));
  RunResult put = Fs({"put", t_ / "no-local-file", "/x"});
  EXPECT_EQ(put.exit_code, 1);
  WriteFile(t_ / "f", "x");
  RunResult put2 = Fs({"put", t_ / "f", "/no/such/dir/f"});
  EXPECT_EQ(put2.exit_code, 1);
  EXPECT_NE(put2.err.find("does not exist"), std::string::npos) << put2.err;
  EXPECT_EQ(Fs({"mkdir", "/a/b"}).exit_code, 1);
  EXPECT_EQ(Fs({"cat", "/"}).exit_code, 1);
}

TEST_F(FsImage, HostilePathsAreRefusedAndChangeNothing) {
  WriteFile(t_ / "f", "data");
  std::string before = ReadFile(image_);
  std::string long_name(300, 'n');
  for (const std::string& p : {std::string(".."), std::string("/../x"), std::string("/a/../../b"),
                               std::string(""), std::string("/./x"), "/" + long_name}) {
    SCOPED_TRACE("path '" + p + "'");
    RunResult put = Fs({"put", t_ / "f", p});
    EXPECT_NE(put.exit_code, 0);
    EXPECT_EQ(put.err.rfind("coffer: error: ", 0), 0u) << put.err;
    EXPECT_NE(Fs({"mkdir", p}).exit_code, 0);
    EXPECT_NE(Fs({"cat", p}).exit_code, 0);
  }
  RunResult too_long = Fs({"mkdir", "/" + long_name});
  EXPECT_NE(too_long.err.find("at most 255"), std::string::npos) << too_long.err;
  EXPECT_EQ(ReadFile(image_), before) << "refused commands must not touch the image";
}

TEST_F(FsImage, GetNeverLeavesAPartialFile) {
  WriteFile(t_ / "keep", "old contents");
  RunResult r = Fs({"get", "/missing", t_ / "keep"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(ReadFile(t_ / "keep"), "old contents");
  for (auto& e : stdfs::directory_iterator(t_.path())) {
    EXPECT_EQ(e.path().filename().string().find(".coffer-tmp"), std::string::npos) << e.path();
  }
}

TEST(FsUsage, DeviceOptionsAreRequiredAndExclusive) {
  RunResult none = RunCoffer({"fs", "ls"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("--image"), std::string::npos) << none.err;
  RunResult both = RunCoffer({"fs", "ls", "--image", "/tmp/x", "--volume", "file:/tmp/y", "--key", "/tmp/k"});
  EXPECT_EQ(both.exit_code, 2);
  RunResult nokey = RunCoffer({"fs", "ls", "--volume", "file:/tmp/y"});
  EXPECT_EQ(nokey.exit_code, 2);
  EXPECT_NE(nokey.err.find("--key"), std::string::npos);
  EXPECT_EQ(RunCoffer({"fs", "pack", "/tmp", "--image", "/tmp/x", "--disk-version", "3.0"}).exit_code, 2);
}

TEST(FsUsage, EverySubcommandHasHelpWithExamplesAndExitCodes) {
  for (const char* cmd : {"format", "ls", "tree", "cat", "put", "get", "rm", "mkdir", "mv", "stat", "df", "check",
                          "info", "pack", "unpack"}) {
    SCOPED_TRACE(cmd);
    RunResult r = RunCoffer({"fs", cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("Examples"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Exit status"), std::string::npos);
    EXPECT_NE(r.out.find("--image"), std::string::npos);
  }
}

class FsDamagedImage : public ::testing::Test {
 protected:
  void SetUp() override {
    stdfs::create_directories(t_ / "src/d");
    WriteFile(t_ / "src/d/f", RandomData(20000, 4));
    RunResult p = RunCoffer({"fs", "pack", t_ / "src", "--image", t_ / "good", "--block-size", "4096",
                             "--block-count", "64"});
    ASSERT_EQ(p.exit_code, 0) << p.err;
  }
  void ExpectRefused(const std::string& image, const std::string& what) {
    SCOPED_TRACE(what);
    std::string before = ReadFile(image);
    RunResult u = RunCoffer({"fs", "unpack", "--image", image, t_ / "out"});
    EXPECT_NE(u.exit_code, 0);
    EXPECT_EQ(u.exit_code == 0 ? "" : u.err.substr(0, 15), "coffer: error: ") << u.err;
    EXPECT_FALSE(stdfs::exists(t_ / "out")) << "unpack left output behind";
    RunResult g = RunCoffer({"fs", "get", "--image", image, "/d/f", t_ / "got"});
    if (g.exit_code == 0) {
      EXPECT_EQ(ReadFile(t_ / "got"), ReadFile(t_ / "src/d/f")) << "get returned wrong bytes";
      stdfs::remove(t_ / "got");
    }
    for (auto& e : stdfs::directory_iterator(t_.path())) {
      EXPECT_EQ(e.path().filename().string().find(".coffer-tmp"), std::string::npos) << e.path();
    }
    EXPECT_EQ(ReadFile(image), before) << "reading must not modify the image";
  }
  TempDir t_;
};

TEST_F(FsDamagedImage, GarbageIsNotALittlefsImage) {
  WriteFile(t_ / "bad", RandomData(4096 * 64, 5));
  ExpectRefused(t_ / "bad", "random bytes");
  RunResult r = RunCoffer({"fs", "ls", "--image", t_ / "bad"});
  EXPECT_NE(r.err.find("no littlefs superblock"), std::string::npos) << r.err;
}

TEST_F(FsDamagedImage, TruncatedImagesAreRefused) {
  std::string good = ReadFile(t_ / "good");
  WriteFile(t_ / "half", good.substr(0, good.size() / 2));
  ExpectRefused(t_ / "half", "half image");
  WriteFile(t_ / "odd", good.substr(0, good.size() - 100));
  ExpectRefused(t_ / "odd", "not a whole number of blocks");
  WriteFile(t_ / "empty", "");
  ExpectRefused(t_ / "empty", "empty file");
}

TEST_F(FsDamagedImage, DestroyedSuperblockPairIsRefused) {
  std::string img = ReadFile(t_ / "good");
  for (size_t i = 0; i < 2 * 4096; ++i) img[i] = char(~img[i]);
  WriteFile(t_ / "nosb", img);
  ExpectRefused(t_ / "nosb", "both superblock blocks inverted");
}

TEST_F(FsDamagedImage, FlippedMetadataBytesFailCleanlyOrReadBack) {
  std::string good = ReadFile(t_ / "good");
  std::mt19937 rng(11);
  for (int i = 0; i < 12; ++i) {
    std::string img = good;
    for (int k = 0; k < 8; ++k) img[rng() % (8 * 4096)] ^= char(1 + rng() % 255);
    WriteFile(t_ / "flip", img);
    RunResult g = RunCoffer({"fs", "get", "--image", t_ / "flip", "/d/f", t_ / "got"});
    // littlefs has no checksums over file data, but metadata damage must be a clean error, never a crash.
    EXPECT_TRUE(g.exit_code == 0 || g.exit_code == 1) << g.exit_code << " " << g.err;
    if (g.exit_code != 0) EXPECT_FALSE(stdfs::exists(t_ / "got"));
    stdfs::remove(t_ / "got");
  }
}

TEST(FsPack, TooSmallImageFailsAndLeavesNoFile) {
  TempDir t;
  stdfs::create_directories(t / "src");
  WriteFile(t / "src/big", RandomData(100000, 6));
  RunResult p = RunCoffer({"fs", "pack", t / "src", "--image", t / "img", "--block-size", "512",
                           "--block-count", "16"});
  EXPECT_EQ(p.exit_code, 1);
  EXPECT_NE(p.err.find("do not fit"), std::string::npos) << p.err;
  EXPECT_FALSE(stdfs::exists(t / "img"));
  for (auto& e : stdfs::directory_iterator(t.path())) {
    EXPECT_EQ(e.path().filename().string().find(".coffer-tmp"), std::string::npos) << e.path();
  }
}

TEST(FsPack, UnpackRefusesANonEmptyTarget) {
  TempDir t;
  stdfs::create_directories(t / "src");
  WriteFile(t / "src/a", "a");
  ASSERT_EQ(RunCoffer({"fs", "pack", t / "src", "--image", t / "img", "--block-size", "512", "--block-count", "64"})
                .exit_code,
            0);
  stdfs::create_directories(t / "out");
  WriteFile(t / "out/existing", "keep");
  RunResult u = RunCoffer({"fs", "unpack", "--image", t / "img", t / "out"});
  EXPECT_EQ(u.exit_code, 1);
  EXPECT_EQ(ReadFile(t / "out/existing"), "keep");
  stdfs::create_directories(t / "empty");
  EXPECT_EQ(RunCoffer({"fs", "unpack", "--image", t / "img", t / "empty"}).exit_code, 0);
  EXPECT_EQ(ReadFile(t / "empty/a"), "a");
}

}  // namespace
}  // namespace coffer::e2e

namespace coffer::e2e {
namespace {

// The same commands on a sealed volume: the filesystem never sees tampered or rolled-back bytes.
class FsVolume : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(RunCoffer({"key", "new", t_ / "k"}).exit_code, 0);
    ASSERT_EQ(RunCoffer({"key", "new", t_ / "wrong"}).exit_code, 0);
    RunResult c = RunCoffer({"volume", "create", "file:" + (t_ / "v"), "--key", t_ / "k", "--size", "1M"});
    if (c.exit_code != 0) GTEST_SKIP() << "volume create is not available: " << c.err;
    RunResult f = Fs({"format"});
    ASSERT_EQ(f.exit_code, 0) << f.err;
  }
  RunResult Fs(std::vector<std::string> args, const std::string& volume = "", const std::string& key = "") {
    std::vector<std::string> full = {"fs", args[0], "--volume", "file:" + (volume.empty() ? t_ / "v" : volume),
                                     "--key", key.empty() ? t_ / "k" : key};
    full.insert(full.end(), args.begin() + 1, args.end());
    return RunCoffer(full);
  }
  TempDir t_;
};

TEST_F(FsVolume, CommandsWorkOnASealedVolume) {
  std::string data = RandomData(60000, 21);
  WriteFile(t_ / "a", data);
  ASSERT_EQ(Fs({"mkdir", "/d"}).exit_code, 0);
  RunResult put = Fs({"put", t_ / "a", "/d/a.bin"});
  ASSERT_EQ(put.exit_code, 0) << put.err;
  RunResult cat = Fs({"cat", "/d/a.bin"});
  ASSERT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_EQ(cat.out, data);
  RunResult ls = Fs({"ls", "/d", "--json"});
  ASSERT_EQ(ls.exit_code, 0);
  EXPECT_EQ(json::parse(ls.out)[0]["size"], 60000);
  RunResult info = Fs({"info", "--json"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_EQ(json::parse(info.out)["disk_version"], "2.1");
  EXPECT_EQ(Fs({"check"}).exit_code, 0);
  EXPECT_EQ(Fs({"unpack", t_ / "out"}).exit_code, 0);
  EXPECT_EQ(ReadFile(t_ / "out/d/a.bin"), data);
  // The backing file never holds the plaintext.
  EXPECT_EQ(ReadFile(t_ / "v").find(data.substr(1000, 64)), std::string::npos);
}

TEST_F(FsVolume, PackIntoAVolume) {
  stdfs::create_directories(t_ / "src/x");
  WriteFile(t_ / "src/x/y", "why\n");
  RunResult p = Fs({"pack", t_ / "src", "--disk-version", "2.0"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(Fs({"cat", "/x/y"}).out, "why\n");
  EXPECT_EQ(json::parse(Fs({"info", "--json"}).out)["disk_version"], "2.0");
}

TEST_F(FsVolume, WrongKeyIsExit4AndChangesNothing) {
  std::string before = ReadFile(t_ / "v");
  RunResult r = Fs({"ls"}, "", t_ / "wrong");
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_EQ(r.err.rfind("coffer: error: ", 0), 0u);
  WriteFile(t_ / "f", "x");
  EXPECT_EQ(Fs({"put", t_ / "f", "/f"}, "", t_ / "wrong").exit_code, 4);
  EXPECT_EQ(ReadFile(t_ / "v"), before);
}

TEST_F(FsVolume, RollbackIsExit3) {
  WriteFile(t_ / "a1", RandomData(30000, 1));
  WriteFile(t_ / "a2", RandomData(30000, 2));
  ASSERT_EQ(Fs({"put", t_ / "a1", "/a"}).exit_code, 0);
  std::string old = ReadFile(t_ / "v");
  ASSERT_EQ(Fs({"put", t_ / "a2", "/a"}).exit_code, 0);
  WriteFile(t_ / "v", old);
  RunResult r = Fs({"cat", "/a"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(Fs({"get", "/a", t_ / "got"}).exit_code, 3);
  EXPECT_FALSE(stdfs::exists(t_ / "got"));
  EXPECT_EQ(Fs({"unpack", t_ / "out"}).exit_code, 3);
  EXPECT_FALSE(stdfs::exists(t_ / "out"));
}

TEST_F(FsVolume, FlippedBytesAreExit3OrHarmlessNeverWrongData) {
  std::string data = RandomData(60000, 3);
  WriteFile(t_ / "a", data);
  ASSERT_EQ(Fs({"put", t_ / "a", "/a"}).exit_code, 0);
  std::string good = ReadFile(t_ / "v");
  int detected = 0;
  for (int i = 1; i <= 24; ++i) {
    std::string img = good;
    size_t off = (img.size() / 25) * size_t(i) + size_t(i * 7919 % 97);
    img[off] = char(img[off] ^ (1 + (i * 37) % 255));
    WriteFile(t_ / "f", img);
    RunResult r = Fs({"cat", "/a"}, t_ / "f");
    SCOPED_TRACE("flip at " + std::to_string(off));
    if (r.exit_code == 0) {
      EXPECT_EQ(r.out, data) << "exit 0 with wrong bytes";
    } else {
      EXPECT_EQ(r.exit_code, 3) << r.err;
      detected++;
    }
  }
  EXPECT_GT(detected, 0);
}

}  // namespace
}  // namespace coffer::e2e
