// FileBlockDevice: a BlockDevice over a plain image file (a littlefs image as mklittlefs or a real
// device dump would hold it). Sync() is fdatasync. The file is opened read-write (or read-only)
// and must be exactly block_size * block_count bytes unless created. One thread at a time.
#pragma once

#include <memory>
#include <string>

#include "coffer/blockdev/block_device.h"

namespace coffer {

class FileBlockDevice : public BlockDevice {
 public:
  struct Options {
    bool read_only = false;
    bool create = false;           // create or resize the file to the geometry, filled with fill
    uint8_t fill = 0xff;           // fill byte when creating
  };
  static Result<std::unique_ptr<FileBlockDevice>> Open(const std::string& path,
                                                       BlockGeometry geometry, Options options);
  ~FileBlockDevice() override;

  const BlockGeometry& geometry() const override { return geometry_; }
  Status Read(uint32_t block, uint32_t offset, std::span<uint8_t> out) override;
  Status Prog(uint32_t block, uint32_t offset, std::span<const uint8_t> data) override;
  Status Erase(uint32_t block) override;
  Status Sync() override;

 private:
  FileBlockDevice(int fd, std::string path, BlockGeometry geometry, bool read_only);
  int fd_;
  std::string path_;
  BlockGeometry geometry_;
  bool read_only_;
};

}  // namespace coffer
