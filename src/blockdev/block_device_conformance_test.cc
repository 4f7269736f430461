#include "blockdev/block_device_conformance.h"

#include <unistd.h>

#include <cstdlib>

#include "coffer/blockdev/fault_block_device.h"
#include "coffer/blockdev/file_block_device.h"
#include "coffer/blockdev/memory_block_device.h"

namespace coffer::testing {
namespace {

std::unique_ptr<BlockDevice> MakeFileDevice(BlockGeometry g) {
  char path[] = "/tmp/coffer-bd-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return nullptr;
  close(fd);
  auto dev = FileBlockDevice::Open(path, g, {.create = true});
  unlink(path);  // the open descriptor keeps it alive
  return dev.ok() ? std::move(dev).value() : nullptr;
}

INSTANTIATE_TEST_SUITE_P(
    Implementations, BlockDeviceConformance,
    ::testing::Values(
        BlockDeviceFactory{"Memory256",
                           [] { return std::make_unique<MemoryBlockDevice>(BlockGeometry{256, 256, 256, 64}); }},
        BlockDeviceFactory{"Memory4096x16",
                           [] { return std::make_unique<MemoryBlockDevice>(BlockGeometry{16, 16, 4096, 16}); }},
        BlockDeviceFactory{"MemoryNoEraseValue",
                           [] {
                             return std::make_unique<MemoryBlockDevice>(BlockGeometry{256, 256, 256, 8, -1}, 0);
                           }},
        BlockDeviceFactory{"File512", [] { return MakeFileDevice(BlockGeometry{512, 512, 512, 32}); }},
        // The fault device with nothing armed must behave exactly like the device below.
        BlockDeviceFactory{"FaultOverMemory256",
                           [] {
                             return std::make_unique<FaultBlockDevice>(
                                 std::make_unique<MemoryBlockDevice>(BlockGeometry{256, 256, 256, 64}));
                           }},
        BlockDeviceFactory{"FaultOverMemoryNoEraseValue",
                           [] {
                             return std::make_unique<FaultBlockDevice>(std::make_unique<MemoryBlockDevice>(
                                 BlockGeometry{256, 256, 256, 8, -1}, 0));
                           }}),
    [](const auto& info) { return info.param.name; });

TEST(MemoryBlockDevice, ProgOverProgrammedBytesIsRefused) {
  MemoryBlockDevice dev(BlockGeometry{16, 16, 256, 4});
  std::vector<uint8_t> data(16, 0x11);
  ASSERT_TRUE(dev.Prog(0, 0, data).ok());
  EXPECT_EQ(dev.Prog(0, 0, data).code(), StatusCode::kFailedPrecondition);
}

TEST(FileBlockDevice, TruncatedImageIsACorruptError) {
  char path[] = "/tmp/coffer-bd-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "abc", 3), 3);
  close(fd);
  auto dev = FileBlockDevice::Open(path, BlockGeometry{256, 256, 256, 4}, {});
  unlink(path);
  ASSERT_FALSE(dev.ok());
  EXPECT_EQ(dev.status().code(), StatusCode::kCorrupt);
}

}  // namespace
}  // namespace coffer::testing
