// The littlefs backend: persistence across remounts, power loss during an overwrite (old or new,
// never a mix), leftovers of interrupted creates, damaged object files.
#include "coffer/objects/fs_backend.h"

#include <vector>

#include <gtest/gtest.h>

#include "coffer/blockdev/fault_block_device.h"
#include "coffer/blockdev/memory_block_device.h"

namespace coffer::objects {
namespace {

constexpr uint32_t kRW = kAccessRead | kAccessWrite | kAccessWriteMeta;
const BlockGeometry kGeometry{16, 16, 512, 1024, 0xff};

// device -> littlefs -> backend -> store, rebuilt on demand over the same device.
struct Stack {
  explicit Stack(BlockDevice& device) : device_(device) {}
  ~Stack() { Close(); }
  Status Open() {
    COFFER_RETURN_IF_ERROR(FormatIfBlank(device_));
    COFFER_ASSIGN_OR_RETURN(fs_, fs::Filesystem::Mount(device_, {}));
    COFFER_ASSIGN_OR_RETURN(auto backend, NewFsBackend(*fs_));
    COFFER_ASSIGN_OR_RETURN(store_, ObjectStore::Open(std::move(backend)));
    return Status::Ok();
  }
  void Close() {
    store_.reset();
    if (fs_) (void)fs_->Unmount();
    fs_.reset();
  }
  // Drop everything without unmounting (what a crash leaves).
  void Abandon() {
    store_.reset();
    fs_.reset();
  }
  BlockDevice& device_;
  std::unique_ptr<fs::Filesystem> fs_;
  std::unique_ptr<ObjectStore> store_;
};

Status Put(ObjectStore& store, const std::string& id, const std::string& data) {
  auto s = store.NewSession(7);
  COFFER_ASSIGN_OR_RETURN(uint32_t h, s->Create("", id, kRW | kOverwrite, {}));
  COFFER_RETURN_IF_ERROR(s->Write(h, AsBytes(data)));
  return s->Close(h);
}

Result<std::string> Get(ObjectStore& store, const std::string& id) {
  auto s = store.NewSession(7);
  COFFER_ASSIGN_OR_RETURN(uint32_t h, s->Open("", id, kAccessRead));
  COFFER_ASSIGN_OR_RETURN(auto info, s->Info(h));
  std::string out(info.meta.size, '\0');
  COFFER_ASSIGN_OR_RETURN(size_t n, s->Read(h, MutableByteSpan(reinterpret_cast<uint8_t*>(out.data()), out.size())));
  out.resize(n);
  COFFER_RETURN_IF_ERROR(s->Close(h));
  return out;
}

TEST(FsBackend, ObjectsSurviveRemount) {
  MemoryBlockDevice dev(kGeometry);
  {
    Stack st(dev);
    ASSERT_TRUE(st.Open().ok());
    ASSERT_TRUE(Put(*st.store_, "../x", "path-like").ok());
    ASSERT_TRUE(Put(*st.store_, std::string("\0\0", 2), "nul").ok());
    ASSERT_TRUE(Put(*st.store_, "big", std::string(20000, 'b')).ok());
  }
  Stack st(dev);
  ASSERT_TRUE(st.Open().ok());
  EXPECT_EQ(*Get(*st.store_, "../x"), "path-like");
  EXPECT_EQ(*Get(*st.store_, std::string("\0\0", 2)), "nul");
  EXPECT_EQ(*Get(*st.store_, "big"), std::string(20000, 'b'));
  // The id never reached the path syntax: the files are hex names under the namespace dir.
  auto dir = st.fs_->OpenDir("/objects/u7");
  ASSERT_TRUE(dir.ok());
  std::set<std::string> names;
  while (true) {
    auto e = dir->Read();
    if (!e.ok() || !*e) break;
    names.insert((*e)->name);
  }
  EXPECT_TRUE(names.count("2e2e2f78")) << "../x is stored as hex";
  EXPECT_TRUE(names.count("0000"));
  EXPECT_EQ(*st.store_->Usage(7), 9u + 3u + 20000u);
}

TEST(FsBackend, FormatIfBlankNeverFormatsOverData) {
  MemoryBlockDevice dev(kGeometry);
  ASSERT_TRUE(FormatIfBlank(dev).ok());
  ASSERT_TRUE(fs::Filesystem::Mount(dev, {}).ok());
  {
    Stack st(dev);
    ASSERT_TRUE(st.Open().ok());
    ASSERT_TRUE(Put(*st.store_, "keep", "data").ok());
  }
  ASSERT_TRUE(FormatIfBlank(dev).ok());
  Stack st(dev);
  ASSERT_TRUE(st.Open().ok());
  EXPECT_EQ(*Get(*st.store_, "keep"), "data");
}

TEST(FsBackend, InterruptedCreatesAreClearedAtOpen) {
  MemoryBlockDevice dev(kGeometry);
  {
    Stack st(dev);
    ASSERT_TRUE(st.Open().ok());
    auto s = st.store_->NewSession(7);
    auto h = s->Create("", "never", kRW, {});
    ASSERT_TRUE(s->Write(*h, AsBytes(std::string(3000, 'x'))).ok());
    ASSERT_TRUE(st.fs_->Stat("/objects/t/~1").ok());
    // The daemon dies without ending the session: keep it reachable (not destroyed, not a leak).
    static auto* abandoned = new std::vector<decltype(s)>();
    abandoned->push_back(std::move(s));
    static auto* abandoned_store = new std::vector<decltype(st.store_)>();
    abandoned_store->push_back(std::move(st.store_));
    (void)st.fs_->Unmount();
    st.fs_.reset();
  }
  Stack st(dev);
  ASSERT_TRUE(st.Open().ok());
  EXPECT_EQ(st.fs_->Stat("/objects/t/~1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Get(*st.store_, "never").status().code(), StatusCode::kNotFound);
}

TEST(FsBackend, DamagedHeaderIsCorruptNotData) {
  MemoryBlockDevice dev(kGeometry);
  Stack st(dev);
  ASSERT_TRUE(st.Open().ok());
  ASSERT_TRUE(st.fs_->Mkdir("/objects/u7").ok());
  {
    auto f = st.fs_->Open("/objects/u7/" + HexEncode(AsBytes("bad")), fs::kRdWr | fs::kCreat);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(f->Write(AsBytes(std::string(40, 'z'))).ok());
    ASSERT_TRUE(f->Close().ok());
  }
  EXPECT_EQ(Get(*st.store_, "bad").status().code(), StatusCode::kCorrupt);
}

// Cuts the power at every prog/erase of an overwrite in turn: after remount the object is the old
// or the new contents, whole.
TEST(FsBackend, PowerLossDuringOverwriteLeavesOldOrNew) {
  const std::string old_data(1500, 'o'), new_data(2600, 'n');
  int saw_old = 0, saw_new = 0;
  for (uint64_t cut = 0;; ++cut) {
    auto fault = std::make_unique<FaultBlockDevice>(std::make_unique<MemoryBlockDevice>(kGeometry), cut + 1);
    FaultBlockDevice& dev = *fault;
    {
      Stack st(dev);
      ASSERT_TRUE(st.Open().ok());
      ASSERT_TRUE(Put(*st.store_, "obj", old_data).ok());
      st.Close();
    }
    Stack st(dev);
    ASSERT_TRUE(st.Open().ok());
    dev.ArmPowerCut(cut, cut % 2 ? PowerCutMode::kTorn : PowerCutMode::kAtomic);
    Status put = Put(*st.store_, "obj", new_data);
    bool finished = !dev.powered_off();
    st.Abandon();
    dev.DisarmPowerCut();
    dev.Reset();
    Stack after(dev);
    ASSERT_TRUE(after.Open().ok()) << "cut " << cut;
    auto got = Get(*after.store_, "obj");
    ASSERT_TRUE(got.ok()) << "cut " << cut << ": " << got.status().ToString();
    if (*got == old_data) {
      ++saw_old;
      EXPECT_FALSE(finished && put.ok()) << "a completed overwrite was lost (cut " << cut << ")";
    } else {
      ASSERT_EQ(*got, new_data) << "cut " << cut << " left a mix";
      ++saw_new;
    }
    if (finished) break;
    ASSERT_LT(cut, 5000u);
  }
  EXPECT_GT(saw_old, 0);
  EXPECT_GT(saw_new, 0);
}

}  // namespace
}  // namespace coffer::objects
