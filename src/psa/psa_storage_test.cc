// The PSA PS/ITS C API: semantics from the PSA Secure Storage API 1.0, in-process and through the
// daemon, plus the environment binding.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "coffer/objectd/server.h"
#include "coffer/objects/local_store.h"
#include "coffer/psa/psa_store.h"
#include "psa/internal_trusted_storage.h"
#include "psa/protected_storage.h"

namespace coffer::psa {
namespace {

enum class Mode { kInProcess, kDaemon, kDaemonSharedMemory };

class PsaTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override { Bind(0); }
  void TearDown() override {
    SetBindingForTesting(nullptr);
    binding_.reset();
    server_.reset();
    local_.reset();
  }
  void Bind(uint64_t quota) {
    SetBindingForTesting(nullptr);
    binding_.reset();
    server_.reset();
    local_.reset();
    objects::StoreOptions options;
    options.quota_bytes = quota;
    local_ = std::move(objects::OpenMemoryStore(options)).value();
    if (GetParam() == Mode::kInProcess) {
      binding_ = std::make_unique<PsaBinding>(objects::NewLocalConnection(local_->store(), getuid(), quota));
    } else {
      socket_ = "/tmp/coffer-psa-test-" + std::to_string(getpid()) + ".sock";
      objectd::ServerOptions so;
      so.socket_path = socket_;
      so.quota_bytes = quota;
      server_ = std::move(objectd::ObjectServer::Start(local_->store(), so)).value();
      objects::ConnectOptions co{.shared_memory = GetParam() == Mode::kDaemonSharedMemory};
      auto conn = std::move(objects::ConnectObjectDaemon(socket_, co)).value();
      EXPECT_STREQ(conn->transport(), co.shared_memory ? "shared-memory" : "socket");
      binding_ = std::make_unique<PsaBinding>(std::move(conn));
    }
    SetBindingForTesting(binding_.get());
  }
  std::string socket_;
  std::unique_ptr<objects::LocalStore> local_;
  std::unique_ptr<objectd::ObjectServer> server_;
  std::unique_ptr<PsaBinding> binding_;
};

TEST_P(PsaTest, ItsSetGetInfoRemove) {
  const char data[] = "its payload";
  ASSERT_EQ(psa_its_set(7, sizeof data, data, PSA_STORAGE_FLAG_NONE), PSA_SUCCESS);
  char out[64] = {};
  size_t n = 99;
  ASSERT_EQ(psa_its_get(7, 0, sizeof out, out, &n), PSA_SUCCESS);
  EXPECT_EQ(n, sizeof data);
  EXPECT_STREQ(out, data);
  ASSERT_EQ(psa_its_get(7, 4, 3, out, &n), PSA_SUCCESS);
  EXPECT_EQ(n, 3u);
  EXPECT_EQ(std::string(out, 3), "pay");
  psa_storage_info_t info{};
  ASSERT_EQ(psa_its_get_info(7, &info), PSA_SUCCESS);
  EXPECT_EQ(info.size, sizeof data);
  EXPECT_EQ(info.capacity, sizeof data);
  EXPECT_EQ(info.flags, PSA_STORAGE_FLAG_NONE);
  // PS and ITS are separate spaces.
  EXPECT_EQ(psa_ps_get_info(7, &info), PSA_ERROR_DOES_NOT_EXIST);
  ASSERT_EQ(psa_its_remove(7), PSA_SUCCESS);
  EXPECT_EQ(psa_its_remove(7), PSA_ERROR_DOES_NOT_EXIST);
  EXPECT_EQ(psa_its_get(7, 0, sizeof out, out, &n), PSA_ERROR_DOES_NOT_EXIST);
  EXPECT_EQ(n, 0u);
}

TEST_P(PsaTest, OverwriteReplacesData) {
  ASSERT_EQ(psa_ps_set(1, 10, "0123456789", 0), PSA_SUCCESS);
  ASSERT_EQ(psa_ps_set(1, 3, "abc", PSA_STORAGE_FLAG_NO_CONFIDENTIALITY), PSA_SUCCESS);
  char out[16];
  size_t n;
  ASSERT_EQ(psa_ps_get(1, 0, sizeof out, out, &n), PSA_SUCCESS);
  EXPECT_EQ(std::string(out, n), "abc");
  psa_storage_info_t info{};
  ASSERT_EQ(psa_ps_get_info(1, &info), PSA_SUCCESS);
  EXPECT_EQ(info.flags, PSA_STORAGE_FLAG_NO_CONFIDENTIALITY);
  // Zero-length data is a valid entry.
  ASSERT_EQ(psa_ps_set(2, 0, nullptr, 0), PSA_SUCCESS);
  ASSERT_EQ(psa_ps_get_info(2, &info), PSA_SUCCESS);
  EXPECT_EQ(info.size, 0u);
}

TEST_P(PsaTest, UidZeroAndBadArgumentsAreRefused) {
  char out[4];
  size_t n;
  psa_storage_info_t info;
  EXPECT_EQ(psa_its_set(0, 1, "x", 0), PSA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(psa_ps_set(0, 1, "x", 0), PSA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(psa_its_get(0, 0, 1, out, &n), PSA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(psa_its_get_info(0, &info), PSA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(psa_its_remove(0), PSA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(psa_ps_create(0, 10, 0), PSA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(psa_its_set(3, 1, "x", 0x80), PSA_ERROR_NOT_SUPPORTED);
  EXPECT_EQ(psa_its_set(3, 4, nullptr, 0), PSA_ERROR_INVALID_ARGUMENT);
  ASSERT_EQ(psa_its_set(3, 4, "abcd", 0), PSA_SUCCESS);
  // Offsets: past the end is invalid; at the end reads nothing; long reads are short.
  EXPECT_EQ(psa_its_get(3, 5, 1, out, &n), PSA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(psa_its_get(3, 4, 1, out, &n), PSA_SUCCESS);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(psa_its_get(3, 2, 100, out, &n), PSA_SUCCESS);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(psa_its_get(3, SIZE_MAX, 1, out, &n), PSA_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(psa_its_get(3, 2, UINT32_MAX, out, &n), PSA_ERROR_INVALID_ARGUMENT);  // no buffer is that large
}

TEST_P(PsaTest, WriteOnceCannotBeChangedOrRemoved) {
  ASSERT_EQ(psa_its_set(9, 4, "once", PSA_STORAGE_FLAG_WRITE_ONCE), PSA_SUCCESS);
  EXPECT_EQ(psa_its_set(9, 4, "twic", 0), PSA_ERROR_NOT_PERMITTED);
  EXPECT_EQ(psa_its_set(9, 4, "twic", PSA_STORAGE_FLAG_WRITE_ONCE), PSA_ERROR_NOT_PERMITTED);
  EXPECT_EQ(psa_its_remove(9), PSA_ERROR_NOT_PERMITTED);
  char out[4];
  size_t n;
  ASSERT_EQ(psa_its_get(9, 0, 4, out, &n), PSA_SUCCESS);
  EXPECT_EQ(std::string(out, n), "once");
  psa_storage_info_t info;
  ASSERT_EQ(psa_its_get_info(9, &info), PSA_SUCCESS);
  EXPECT_EQ(info.flags, PSA_STORAGE_FLAG_WRITE_ONCE);
  ASSERT_EQ(psa_ps_set(9, 4, "once", PSA_STORAGE_FLAG_WRITE_ONCE), PSA_SUCCESS);
  EXPECT_EQ(psa_ps_set_extended(9, 0, 1, "x"), PSA_ERROR_NOT_PERMITTED);
  EXPECT_EQ(psa_ps_remove(9), PSA_ERROR_NOT_PERMITTED);
}

TEST_P(PsaTest, CreateAndSetExtended) {
  EXPECT_EQ(psa_ps_get_support(), PSA_STORAGE_SUPPORT_SET_EXTENDED);
  EXPECT_EQ(psa_ps_set_extended(5, 0, 1, "x"), PSA_ERROR_DOES_NOT_EXIST);
  ASSERT_EQ(psa_ps_create(5, 16, 0), PSA_SUCCESS);
  psa_storage_info_t info;
  ASSERT_EQ(psa_ps_get_info(5, &info), PSA_SUCCESS);
  EXPECT_EQ(info.capacity, 16u);
  EXPECT_EQ(info.size, 0u);
  EXPECT_EQ(psa_ps_create(5, 16, 0), PSA_ERROR_ALREADY_EXISTS);  // even identical
  EXPECT_EQ(psa_ps_create(5, 8, 0), PSA_ERROR_ALREADY_EXISTS);
  EXPECT_EQ(psa_ps_create(6, 8, PSA_STORAGE_FLAG_WRITE_ONCE), PSA_ERROR_NOT_SUPPORTED);
  ASSERT_EQ(psa_ps_set_extended(5, 0, 4, "abcd"), PSA_SUCCESS);
  ASSERT_EQ(psa_ps_set_extended(5, 4, 4, "efgh"), PSA_SUCCESS);
  ASSERT_EQ(psa_ps_set_extended(5, 2, 2, "CD"), PSA_SUCCESS);
  EXPECT_EQ(psa_ps_set_extended(5, 9, 1, "x"), PSA_ERROR_INVALID_ARGUMENT);   // would leave a hole
  EXPECT_EQ(psa_ps_set_extended(5, 8, 9, "123456789"), PSA_ERROR_INVALID_ARGUMENT);  // beyond capacity
  EXPECT_EQ(psa_ps_set_extended(5, 8, SIZE_MAX, "x"), PSA_ERROR_INVALID_ARGUMENT);
  char out[16];
  size_t n;
  ASSERT_EQ(psa_ps_get(5, 0, sizeof out, out, &n), PSA_SUCCESS);
  EXPECT_EQ(std::string(out, n), "abCDefgh");
  ASSERT_EQ(psa_ps_get_info(5, &info), PSA_SUCCESS);
  EXPECT_EQ(info.size, 8u);
  EXPECT_EQ(info.capacity, 16u);
  ASSERT_EQ(psa_ps_remove(5), PSA_SUCCESS);
}

TEST_P(PsaTest, CapacityGivesInsufficientStorage) {
  Bind(4096);
  std::string big(3000, 'x');
  ASSERT_EQ(psa_ps_set(1, big.size(), big.data(), 0), PSA_SUCCESS);
  EXPECT_EQ(psa_ps_set(2, big.size(), big.data(), 0), PSA_ERROR_INSUFFICIENT_STORAGE);
  EXPECT_EQ(psa_ps_create(3, 2000, 0), PSA_ERROR_INSUFFICIENT_STORAGE);
  // Replacing an entry with one of the same size fits.
  EXPECT_EQ(psa_ps_set(1, big.size(), big.data(), 0), PSA_SUCCESS);
  psa_storage_info_t info;
  EXPECT_EQ(psa_ps_get_info(2, &info), PSA_ERROR_DOES_NOT_EXIST);
}

TEST_P(PsaTest, LargeEntryRoundTrip) {
  std::vector<uint8_t> big(objects::kMaxChunk * 2 + 77);
  for (size_t i = 0; i < big.size(); ++i) big[i] = uint8_t(i * 7);
  ASSERT_EQ(psa_its_set(11, big.size(), big.data(), 0), PSA_SUCCESS);
  std::vector<uint8_t> out(big.size());
  size_t n;
  ASSERT_EQ(psa_its_get(11, 0, out.size(), out.data(), &n), PSA_SUCCESS);
  EXPECT_EQ(n, big.size());
  EXPECT_EQ(out, big);
}

INSTANTIATE_TEST_SUITE_P(Modes, PsaTest, ::testing::Values(Mode::kInProcess, Mode::kDaemon, Mode::kDaemonSharedMemory),
                         [](const auto& info) {
                           return info.param == Mode::kInProcess ? "InProcess"
                                  : info.param == Mode::kDaemon  ? "Daemon"
                                                                 : "DaemonSharedMemory";
                         });

TEST(PsaEnvironment, MemoryStoreAndMissingConfiguration) {
  SetBindingForTesting(nullptr);
  ResetBinding();
  unsetenv("COFFER_PSA_SOCKET");
  unsetenv("COFFER_PSA_VOLUME");
  unsetenv("COFFER_PSA_STORE");
  // Nothing configured: a storage failure (and a message on stderr), never a silent store.
  EXPECT_EQ(psa_its_set(1, 1, "x", 0), PSA_ERROR_STORAGE_FAILURE);
  setenv("COFFER_PSA_STORE", "memory", 1);
  setenv("COFFER_PSA_CAPACITY", "1k", 1);
  EXPECT_EQ(psa_its_set(1, 1, "x", 0), PSA_SUCCESS);
  std::string big(2000, 'y');
  EXPECT_EQ(psa_its_set(2, big.size(), big.data(), 0), PSA_ERROR_INSUFFICIENT_STORAGE);
  ResetBinding();
  setenv("COFFER_PSA_CAPACITY", "12q", 1);
  EXPECT_EQ(psa_its_set(1, 1, "x", 0), PSA_ERROR_STORAGE_FAILURE);
  unsetenv("COFFER_PSA_CAPACITY");
  unsetenv("COFFER_PSA_STORE");
  ResetBinding();
}

}  // namespace
}  // namespace coffer::psa
