// Spec-level entry points for the CLI and other modules: open or create a sealed volume from a
// store SPEC (stores/open_store.h) and a KEYSPEC (keys/unlock.h), with the anchor chosen by the
// KEYSPEC (key file: <keyfile>.anchor; passphrase: $XDG_STATE_HOME/coffer/anchors) unless
// anchor_path overrides it. The filesystem CLI calls OpenVolumeDevice for `--volume SPEC --key KEYSPEC`.
// Thread-safe (no shared state); the returned objects are used by one thread at a time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "coffer/blockdev/block_device.h"
#include "coffer/keys/unlock.h"
#include "coffer/volume/sealed_volume.h"

namespace coffer {

struct VolumeAccessOptions {
  std::string anchor_path;         // empty: the KEYSPEC's default
  KeySpecContext keyspec_context;  // passphrase prompt, Argon2 costs for new slots
  VolumeOpenOptions open;
};

// The sealed volume as a BlockDevice (read/prog/erase/sync; Sync commits).
Result<std::unique_ptr<BlockDevice>> OpenVolumeDevice(std::string_view spec, std::string_view keyspec,
                                                      const VolumeAccessOptions& options = {});
Result<std::unique_ptr<SealedVolume>> OpenVolume(std::string_view spec, std::string_view keyspec,
                                                 const VolumeAccessOptions& options = {});
// Creates the store (refusing to overwrite an existing file) and a new volume on it.
Result<std::unique_ptr<SealedVolume>> CreateVolume(std::string_view spec, std::string_view keyspec,
                                                   const VolumeCreateOptions& create,
                                                   const VolumeAccessOptions& options = {});
// The anchor a KEYSPEC uses by default (or anchor_path).
Result<std::shared_ptr<Anchor>> AnchorFor(UnlockMethod& method, const std::string& anchor_path);

}  // namespace coffer
