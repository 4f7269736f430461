// ObjectStore semantics, run on every backend (memory here; littlefs when built).
#include "coffer/objects/store.h"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

#include "objects/store_test_backends.h"

namespace coffer::objects {
namespace {

constexpr uint32_t kRW = kAccessRead | kAccessWrite | kAccessWriteMeta;

std::string Str(const Bytes& b) { return std::string(b.begin(), b.end()); }

class StoreTest : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override { Reopen({}); }
  void Reopen(StoreOptions options) {
    store_.reset();
    holder_ = GetParam().make();
    auto backend = holder_->TakeBackend();
    ASSERT_NE(backend, nullptr) << "backend setup failed";
    auto s = ObjectStore::Open(std::move(backend), std::move(options));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s).value();
  }
  // Creates and commits id with data.
  Status Put(Session& s, const std::string& id, const std::string& data, uint32_t extra = kOverwrite) {
    auto h = s.Create("", id, kRW | extra, {}, AsBytes(data));
    if (!h.ok()) return h.status();
    return s.Close(*h);
  }
  Result<std::string> GetAll(Session& s, const std::string& id) {
    COFFER_ASSIGN_OR_RETURN(uint32_t h, s.Open("", id, kAccessRead | kShareRead));
    std::string out;
    uint8_t buf[7];  // odd size: exercises partial reads
    while (true) {
      auto n = s.Read(h, buf);
      if (!n.ok()) return n.status();
      if (*n == 0) break;
      out.append(reinterpret_cast<char*>(buf), *n);
    }
    COFFER_RETURN_IF_ERROR(s.Close(h));
    return out;
  }
  std::unique_ptr<BackendHolder> holder_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_P(StoreTest, CreateWriteReadBack) {
  auto s = store_->NewSession(1000);
  auto h = s->Create("", "object#1", kRW, {});
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_TRUE(s->Write(*h, AsBytes("hello ")).ok());
  ASSERT_TRUE(s->Write(*h, AsBytes("world")).ok());
  ASSERT_TRUE(s->Close(*h).ok());
  auto back = GetAll(*s, "object#1");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, "hello world");
  EXPECT_EQ(s->open_handles(), 0u);
}

TEST_P(StoreTest, CreateIsInvisibleUntilClosed) {
  auto s = store_->NewSession(1);
  auto h = s->Create("", "x", kRW, {}, AsBytes("abc"));
  ASSERT_TRUE(h.ok());
  auto page = s->Enumerate("", "", 100);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->ids.empty());
  auto other = store_->NewSession(1);
  EXPECT_EQ(other->Open("", "x", kAccessRead).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(s->Close(*h).ok());
  EXPECT_EQ(*GetAll(*other, "x"), "abc");
}

TEST_P(StoreTest, ExistingIdWithoutOverwriteConflicts) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "one").ok());
  auto h = s->Create("", "a", kRW, {}, AsBytes("two"));
  EXPECT_EQ(h.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(h.status().message().find("access conflict"), std::string::npos);
  EXPECT_EQ(*GetAll(*s, "a"), "one");
}

TEST_P(StoreTest, OverwriteReplacesAtCloseAndReadersSeeOldUntilThen) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "old contents").ok());
  auto h = s->Create("", "a", kRW | kOverwrite, {}, AsBytes("new"));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  // While the replacement is being written the id is reserved: opens conflict, nothing mixes.
  auto reader = store_->NewSession(1);
  EXPECT_EQ(reader->Open("", "a", kAccessRead | kShareRead).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->Close(*h).ok());
  EXPECT_EQ(*GetAll(*reader, "a"), "new");
}

TEST_P(StoreTest, AbandonedOverwriteKeepsOld) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "keep me").ok());
  {
    auto w = store_->NewSession(1);
    auto h = w->Create("", "a", kRW | kOverwrite, {}, AsBytes("half"));
    ASSERT_TRUE(h.ok());
    // the client dies: its session ends without Close
  }
  EXPECT_EQ(*GetAll(*s, "a"), "keep me");
  auto ids = s->Enumerate("", "", 10);
  ASSERT_EQ(ids->ids.size(), 1u);
}

TEST_P(StoreTest, OverwriteOfAnOpenObjectConflicts) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "x").ok());
  auto r = s->Open("", "a", kAccessRead | kShareRead | kShareWrite);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(s->Create("", "a", kRW | kOverwrite, {}).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->Close(*r).ok());
  EXPECT_TRUE(s->Create("", "a", kRW | kOverwrite, {}).ok());
}

TEST_P(StoreTest, ShareFlagsDecideConcurrentOpens) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "x").ok());
  auto r1 = s->Open("", "a", kAccessRead | kShareRead);
  ASSERT_TRUE(r1.ok());
  // Another reader that also shares reading: fine.
  auto r2 = s->Open("", "a", kAccessRead | kShareRead);
  EXPECT_TRUE(r2.ok());
  // A writer: r1 did not allow SHARE_WRITE.
  EXPECT_EQ(s->Open("", "a", kAccessWrite | kShareRead | kShareWrite).status().code(),
            StatusCode::kFailedPrecondition);
  // A reader that does not share reading conflicts with the existing readers.
  EXPECT_EQ(s->Open("", "a", kAccessRead).status().code(), StatusCode::kFailedPrecondition);
  // WRITE_META is exclusive.
  EXPECT_EQ(s->Open("", "a", kAccessWriteMeta | kShareRead | kShareWrite).status().code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->Close(*r1).ok());
  ASSERT_TRUE(s->Close(*r2).ok());
  auto w1 = s->Open("", "a", kAccessWrite | kShareWrite | kShareRead);
  ASSERT_TRUE(w1.ok());
  EXPECT_TRUE(s->Open("", "a", kAccessWrite | kShareWrite | kShareRead).ok());
}

TEST_P(StoreTest, HandleAccessIsEnforced) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "abc").ok());
  auto r = s->Open("", "a", kAccessRead);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(s->Write(*r, AsBytes("z")).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s->Truncate(*r, 0).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s->Rename(*r, "b").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s->CloseAndDelete(*r).code(), StatusCode::kPermissionDenied);
  ASSERT_TRUE(s->Close(*r).ok());
  auto w = s->Open("", "a", kAccessWrite);
  uint8_t b[1];
  EXPECT_EQ(s->Read(*w, b).status().code(), StatusCode::kPermissionDenied);
  // Handles are per session: another session cannot use this number.
  auto other = store_->NewSession(1);
  EXPECT_EQ(other->Close(*w).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Close(12345).code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, SeekWriteTruncate) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "0123456789").ok());
  auto h = s->Open("", "a", kRW);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(*s->Seek(*h, 3, Whence::kSet), 3u);
  ASSERT_TRUE(s->Write(*h, AsBytes("xy")).ok());
  EXPECT_EQ(*s->Seek(*h, -2, Whence::kEnd), 8u);
  EXPECT_EQ(*s->Seek(*h, -100, Whence::kCur), 0u);  // clamps at 0 (GP)
  EXPECT_EQ(*s->Seek(*h, 12, Whence::kSet), 12u);   // past the end: a gap of zeros on write
  ASSERT_TRUE(s->Write(*h, AsBytes("!")).ok());
  ASSERT_TRUE(s->Truncate(*h, 14).ok());
  ASSERT_TRUE(s->Close(*h).ok());
  EXPECT_EQ(*GetAll(*s, "a"), std::string("012xy56789\0\0!\0", 14));
  h = s->Open("", "a", kRW);
  ASSERT_TRUE(s->Truncate(*h, 4).ok());
  auto info = s->Info(*h);
  EXPECT_EQ(info->meta.size, 4u);
  ASSERT_TRUE(s->Close(*h).ok());
  EXPECT_EQ(*GetAll(*s, "a"), "012x");
}

TEST_P(StoreTest, RenameOntoAnExistingIdConflicts) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "A").ok());
  ASSERT_TRUE(Put(*s, "b", "B").ok());
  auto h = s->Open("", "a", kAccessWriteMeta);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(s->Rename(*h, "b").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(s->Rename(*h, std::string(65, 'c')).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(s->Rename(*h, "c").ok());
  ASSERT_TRUE(s->Close(*h).ok());
  EXPECT_EQ(s->Open("", "a", kAccessRead).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*GetAll(*s, "b"), "B");
  EXPECT_EQ(*GetAll(*s, "c"), "A");
}

TEST_P(StoreTest, DeleteNeedsExclusiveAccessAndWorks) {
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", "A").ok());
  auto r = s->Open("", "a", kAccessRead | kShareRead | kShareWrite);
  ASSERT_TRUE(r.ok());
  // Delete while open elsewhere: refused, object intact.
  EXPECT_EQ(s->Open("", "a", kAccessWriteMeta).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->Close(*r).ok());
  auto d = s->Open("", "a", kAccessWriteMeta);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(s->CloseAndDelete(*d).ok());
  EXPECT_EQ(s->Open("", "a", kAccessRead).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->Usage(1), 0u);
}

TEST_P(StoreTest, HostileIdsAreRefusedOrStoredVerbatim) {
  auto s = store_->NewSession(1);
  EXPECT_EQ(s->Create("", "", kRW, {}).status().code(), StatusCode::kInvalidArgument);
  auto too_long = s->Create("", std::string(65, 'a'), kRW, {});
  EXPECT_EQ(too_long.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(too_long.status().message().find("1 to 64"), std::string::npos);
  std::vector<std::string> hostile = {"../x", "/etc/passwd", "..", ".", std::string("a\0b", 3),
                                      std::string(1, '\0'), std::string(64, '/'), "\xff\xfe", "t", "u0"};
  for (const auto& id : hostile) {
    ASSERT_TRUE(Put(*s, id, "v:" + id).ok()) << HexEncode(AsBytes(id));
  }
  for (const auto& id : hostile) EXPECT_EQ(*GetAll(*s, id), "v:" + id);
  auto page = s->Enumerate("", "", 100);
  EXPECT_EQ(page->ids.size(), hostile.size());
  // None of them escaped into another namespace.
  auto other = store_->NewSession(0);
  EXPECT_TRUE(other->Enumerate("", "", 100)->ids.empty());
}

TEST_P(StoreTest, NamespacesArePrivatePerUid) {
  auto alice = store_->NewSession(1000);
  auto bob = store_->NewSession(1001);
  ASSERT_TRUE(Put(*alice, "secret", "alice's").ok());
  EXPECT_EQ(bob->Open("", "secret", kAccessRead).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(bob->Enumerate("", "", 10)->ids.empty());
  ASSERT_TRUE(Put(*bob, "secret", "bob's").ok());
  EXPECT_EQ(*GetAll(*alice, "secret"), "alice's");
  EXPECT_EQ(*GetAll(*bob, "secret"), "bob's");
  EXPECT_EQ(bob->Enumerate("nosuchshare", "", 10).status().code(), StatusCode::kPermissionDenied);
}

TEST_P(StoreTest, SharedNamespacesOnlyByConfiguration) {
  StoreOptions options;
  options.shares["fleet"] = {1000, 1001};
  Reopen(options);
  auto alice = store_->NewSession(1000);
  auto bob = store_->NewSession(1001);
  auto eve = store_->NewSession(1002);
  auto h = alice->Create("fleet", "cfg", kRW, {}, AsBytes("shared"));
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_TRUE(alice->Close(*h).ok());
  auto r = bob->Open("fleet", "cfg", kAccessRead);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(bob->Close(*r).ok());
  EXPECT_EQ(eve->Open("fleet", "cfg", kAccessRead).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(eve->Enumerate("fleet", "", 10).status().code(), StatusCode::kPermissionDenied);
  // The share is not the private namespace.
  EXPECT_EQ(alice->Open("", "cfg", kAccessRead).status().code(), StatusCode::kNotFound);
}

TEST_P(StoreTest, EnumerateWhileModifyingSeesStableObjectsOnce) {
  auto s = store_->NewSession(1);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(Put(*s, "k" + std::to_string(100 + i), "v").ok());
  std::set<std::string> seen;
  std::string cursor;
  int step = 0;
  while (true) {
    auto page = s->Enumerate("", cursor, 7);
    ASSERT_TRUE(page.ok());
    for (const auto& id : page->ids) EXPECT_TRUE(seen.insert(id).second) << id;
    // Modify between pages: add new ids, delete some not yet seen ones' neighbours.
    ASSERT_TRUE(Put(*s, "n" + std::to_string(step), "new").ok());
    auto d = s->Open("", "k" + std::to_string(149 - step), kAccessWriteMeta);
    if (d.ok()) ASSERT_TRUE(s->CloseAndDelete(*d).ok());
    ++step;
    if (!page->more) break;
    cursor = page->ids.back();
  }
  // Every k-id never deleted before the scan reached it was seen exactly once.
  for (int i = 0; i < 50; ++i) {
    std::string id = "k" + std::to_string(100 + i);
    if (49 - i >= step) EXPECT_TRUE(seen.count(id)) << id;
  }
}

TEST_P(StoreTest, QuotaLimitsANamespace) {
  StoreOptions options;
  options.quota_bytes = 1000;
  Reopen(options);
  auto s = store_->NewSession(1);
  ASSERT_TRUE(Put(*s, "a", std::string(600, 'a')).ok());
  EXPECT_EQ(Put(*s, "b", std::string(600, 'b')).code(), StatusCode::kNoSpace);
  // The failed create left nothing behind and charged nothing.
  EXPECT_EQ(*store_->Usage(1), 600u);
  EXPECT_EQ(s->Open("", "b", kAccessRead).status().code(), StatusCode::kNotFound);
  // Another uid has its own quota.
  auto t = store_->NewSession(2);
  EXPECT_TRUE(Put(*t, "b", std::string(600, 'b')).ok());
  // Streaming writes are charged as they grow.
  auto h = s->Create("", "c", kRW, {});
  ASSERT_TRUE(s->Write(*h, AsBytes(std::string(300, 'c'))).ok());
  EXPECT_EQ(s->Write(*h, AsBytes(std::string(300, 'c'))).code(), StatusCode::kNoSpace);
  ASSERT_TRUE(s->CloseAndDelete(*h).ok());
  EXPECT_EQ(*store_->Usage(1), 600u);
}

TEST_P(StoreTest, ImmutableObjectsCannotChange) {
  auto s = store_->NewSession(1);
  CreateAttrs attrs;
  attrs.object_flags = kObjectImmutable;
  auto h = s->Create("", "once", kRW, attrs, AsBytes("fixed"));
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(s->Close(*h).ok());
  EXPECT_EQ(s->Open("", "once", kAccessWrite).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s->Open("", "once", kAccessWriteMeta).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s->Create("", "once", kRW | kOverwrite, {}).status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(*GetAll(*s, "once"), "fixed");
}

TEST_P(StoreTest, ManyThreadsManySessions) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto s = store_->NewSession(100 + t % 2);
      for (int i = 0; i < 40; ++i) {
        std::string id = "t" + std::to_string(t) + "-" + std::to_string(i % 5);
        std::string data(100 + i, char('a' + t));
        if (!Put(*s, id, data).ok()) ++failures;
        auto back = GetAll(*s, id);
        if (!back.ok() || *back != data) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::ValuesIn(AllBackendFactories()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace coffer::objects
