#include "coffer/volume/open_volume.h"

#include <unistd.h>

#include "coffer/stores/open_store.h"
#include "volume/volume_format.h"

namespace coffer {

Result<std::shared_ptr<Anchor>> AnchorFor(UnlockMethod& method, const std::string& anchor_path) {
  std::string path = anchor_path.empty() ? method.DefaultAnchorPath() : anchor_path;
  if (path.empty()) return InvalidArgument("no anchor location for " + method.Describe() + "; pass --anchor PATH");
  return OpenAnchorSpec(path);  // a file path, or a registered scheme such as tpm2:nv=...
}

Result<std::unique_ptr<SealedVolume>> OpenVolume(std::string_view spec, std::string_view keyspec,
                                                 const VolumeAccessOptions& options) {
  COFFER_ASSIGN_OR_RETURN(auto method, ParseKeySpec(keyspec, options.keyspec_context));
  COFFER_ASSIGN_OR_RETURN(auto store, OpenStore(spec));
  COFFER_ASSIGN_OR_RETURN(auto anchor, AnchorFor(*method, options.anchor_path));
  return SealedVolume::Open(std::move(store), *method, std::move(anchor), options.open);
}

Result<std::unique_ptr<BlockDevice>> OpenVolumeDevice(std::string_view spec, std::string_view keyspec,
                                                      const VolumeAccessOptions& options) {
  COFFER_ASSIGN_OR_RETURN(auto volume, OpenVolume(spec, keyspec, options));
  return std::unique_ptr<BlockDevice>(std::move(volume));
}

Result<std::unique_ptr<SealedVolume>> CreateVolume(std::string_view spec, std::string_view keyspec,
                                                   const VolumeCreateOptions& create,
                                                   const VolumeAccessOptions& options) {
  KeySpecContext ctx = options.keyspec_context;
  ctx.creating = true;
  COFFER_ASSIGN_OR_RETURN(auto method, ParseKeySpec(keyspec, ctx));
  // Unlock material first: a missing key file or a mistyped passphrase must not leave a store behind.
  COFFER_ASSIGN_OR_RETURN(Bytes params, method->NewSlotParams());
  COFFER_RETURN_IF_ERROR(method->UnlockSecret(params).status());
  VolumeCreateOptions c = create;
  if (c.size_bytes == 0) c.size_bytes = 4 << 20;
  COFFER_RETURN_IF_ERROR(volume_format::MakeLayout(c.sector_size, volume_format::PreferredRecordSize(c.sector_size), 2)
                             .status());
  uint64_t sectors = c.size_bytes / c.sector_size;
  if (sectors < 2) {
    return InvalidArgument("volume size " + std::to_string(c.size_bytes) + " is less than two " +
                           std::to_string(c.sector_size) + "-byte sectors");
  }
  COFFER_ASSIGN_OR_RETURN(auto layout, volume_format::MakeLayout(c.sector_size,
                                                                 volume_format::PreferredRecordSize(c.sector_size),
                                                                 sectors));
  // The anchor before the store: a bad --anchor must not leave a store behind either.
  COFFER_ASSIGN_OR_RETURN(auto anchor, AnchorFor(*method, options.anchor_path));
  COFFER_ASSIGN_OR_RETURN(auto store, CreateStore(spec, {.record_size = layout.record_size,
                                                         .record_count = layout.records_used}));
  std::string file_to_remove;
  if (StoreScheme(spec) == "file") file_to_remove = std::string(spec.substr(5));
  auto volume = SealedVolume::Create(std::move(store), *method, std::move(anchor), c, options.open);
  if (!volume.ok() && !file_to_remove.empty()) {
    ::unlink(file_to_remove.c_str());
    ::unlink((file_to_remove + ".journal").c_str());
  }
  return volume;
}

}  // namespace coffer
