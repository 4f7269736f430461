// The object store's persistent backend: objects as files in coffer's littlefs (layout in
// docs/format/object_store.md). The backend borrows the Filesystem (which must outlive it) and,
// like littlefs, is used by one thread at a time (ObjectStore serialises its calls).
#pragma once

#include <memory>

#include "coffer/base/status.h"
#include "coffer/blockdev/block_device.h"
#include "coffer/fs/filesystem.h"
#include "coffer/objects/store.h"

namespace coffer::objects {

Result<std::unique_ptr<ObjectBackend>> NewFsBackend(fs::Filesystem& fs);

// Formats littlefs on `device` only when its first two blocks are blank (all 0x00 or all 0xff):
// a device holding anything else is left for Mount to accept or refuse. Never formats over data.
Status FormatIfBlank(BlockDevice& device);

}  // namespace coffer::objects
