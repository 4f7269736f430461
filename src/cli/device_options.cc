#include "cli/device_options.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "coffer/blockdev/file_block_device.h"
#include "coffer/volume/open_volume.h"

namespace coffer::cli {
namespace {

// Sealed volumes come from the volume module. Read-only use still opens the volume normally: reads
// never commit, and Sync() without writes commits nothing.
Result<std::unique_ptr<BlockDevice>> OpenSealedVolume(const std::string& spec, const std::string& key,
                                                      const std::string& anchor, bool read_only) {
  (void)read_only;
  VolumeAccessOptions access;
  access.anchor_path = anchor;
  return OpenVolumeDevice(spec, key, access);
}

uint32_t RoundUp(uint32_t v, uint32_t unit) { return (v + unit - 1) / unit * unit; }

}  // namespace

Status CheckDeviceOptions(const DeviceOptions& o) {
  if (o.image.empty() == o.volume.empty()) {
    return InvalidArgument("name exactly one device: --image PATH or --volume SPEC --key KEYSPEC");
  }
  if (!o.volume.empty() && o.key.empty()) return InvalidArgument("--volume needs --key KEYSPEC");
  if (!o.image.empty() && !o.key.empty()) return InvalidArgument("--key applies to --volume, not --image");
  if (o.volume.empty() && !o.anchor.empty()) return InvalidArgument("--anchor applies to --volume");
  if (o.disk_version != "2.0" && o.disk_version != "2.1") {
    return InvalidArgument("--disk-version must be 2.0 or 2.1, not '" + o.disk_version + "'");
  }
  return Status::Ok();
}

namespace {

// Fills in cache/lookahead defaults and the littlefs tunables from the options.
void ApplyTunables(const DeviceOptions& o, const BlockGeometry& g, uint32_t block_count, fs::Config& c) {
  c.read_size = g.read_size;
  c.prog_size = g.prog_size;
  c.block_size = g.block_size;
  c.block_cycles = o.block_cycles;
  uint32_t unit = std::max(g.read_size, g.prog_size);
  if (o.cache_size) {
    c.cache_size = o.cache_size;
  } else {
    uint32_t cache = std::max<uint32_t>(unit, std::min<uint32_t>(g.block_size, 512));
    c.cache_size = (g.block_size % cache == 0 && cache % unit == 0) ? cache : unit;
  }
  uint32_t count = block_count ? block_count : g.block_count;
  c.lookahead_size = o.lookahead_size ? o.lookahead_size
                                      : std::min<uint32_t>(256, RoundUp((count + 7) / 8, 8));
  c.disk_version = o.disk_version == "2.0" ? fs::DiskVersion::k2_0 : fs::DiskVersion::k2_1;
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("image " + path, errno);
  if (!S_ISREG(st.st_mode)) return InvalidArgument("image " + path + " is not a regular file");
  return uint64_t(st.st_size);
}

// Finds the superblock of an existing image: tries --block-size, or every power of two the file size
// is a multiple of, and asks the filesystem to read the superblock at that size.
Result<fs::FsInfo> ProbeImage(const std::string& path, uint64_t size, uint32_t block_size) {
  if (size == 0) return Corrupt("image " + path + " is empty: not a littlefs image");
  Status first_error;
  for (uint64_t b = block_size ? block_size : 128; b <= (block_size ? block_size : 1u << 20); b *= 2) {
    if (size % b != 0 || size / b < 2 || size / b > UINT32_MAX) continue;
    BlockGeometry g{uint32_t(b), uint32_t(b), uint32_t(b), uint32_t(size / b), 0xff};
    auto dev = FileBlockDevice::Open(path, g, {.read_only = true});
    if (!dev.ok()) return dev.status();
    auto info = fs::Filesystem::Probe(**dev, uint32_t(b));
    if (info.ok() && info->block_size == b) return info;
    if (!info.ok() && info.status().code() == StatusCode::kDataLoss) return info.status();
    if (first_error.ok()) first_error = info.ok() ? Corrupt("superblock block size mismatch") : info.status();
  }
  std::string tried = block_size ? "block size " + std::to_string(block_size)
                                 : std::string("block sizes 128 to 1048576");
  return Corrupt("no littlefs superblock found in image " + path + " (" + std::to_string(size) +
                 " bytes; tried " + tried + ")" +
                 (first_error.ok() ? std::string() : ": " + first_error.message()));
}

Result<FsDevice> OpenImage(const DeviceOptions& o, DeviceUse use, const std::string& create_path) {
  FsDevice out;
  if (use == DeviceUse::kFormat) {
    const std::string& path = create_path.empty() ? o.image : create_path;
    if (o.block_size == 0) return InvalidArgument("--block-size is required to format an image");
    uint32_t count = o.block_count;
    if (count == 0 && create_path.empty()) {
      auto size = FileSize(o.image);
      if (!size.ok()) {
        return InvalidArgument("--block-count is required to create a new image (" +
                               size.status().message() + ")");
      }
      if (*size % o.block_size != 0) {
        return InvalidArgument("image " + o.image + " (" + std::to_string(*size) +
                               " bytes) is not a multiple of --block-size " + std::to_string(o.block_size));
      }
      count = uint32_t(*size / o.block_size);
    }
    if (count < 2) return InvalidArgument("--block-count must be at least 2 (littlefs needs a superblock pair)");
    uint32_t io = DefaultIoSize(o.block_size);
    BlockGeometry g{o.read_size ? o.read_size : io, o.prog_size ? o.prog_size : io, o.block_size, count, 0xff};
    COFFER_RETURN_IF_ERROR(g.Validate());
    COFFER_ASSIGN_OR_RETURN(auto dev, FileBlockDevice::Open(path, g, {.create = true, .fill = 0xff}));
    ApplyTunables(o, g, count, out.config);
    out.config.block_count = count;
    out.device = std::move(dev);
    out.description = "image " + o.image + " (" + std::to_string(g.block_size) + " x " + std::to_string(count) + ")";
    return out;
  }
  COFFER_ASSIGN_OR_RETURN(uint64_t size, FileSize(o.image));
  COFFER_ASSIGN_OR_RETURN(fs::FsInfo info, ProbeImage(o.image, size, o.block_size));
  uint32_t b = info.block_size;
  if (uint64_t(info.block_count) * b > size) {
    return Corrupt("image " + o.image + " is " + std::to_string(size) + " bytes but its superblock says " +
                   std::to_string(info.block_count) + " blocks of " + std::to_string(b) +
                   " (the image is truncated)");
  }
  if (o.block_count && o.block_count != info.block_count) {
    return InvalidArgument("--block-count " + std::to_string(o.block_count) + " disagrees with the superblock (" +
                           std::to_string(info.block_count) + ")");
  }
  uint32_t io = DefaultIoSize(b);
  // Plain images are treated as NOR flash (erase writes 0xff); images made with a no-op erase (the
  // remote-disk sample starts zero-filled) read the same, since littlefs never trusts erased bytes
  // without a checksum.
  BlockGeometry g{o.read_size ? o.read_size : io, o.prog_size ? o.prog_size : io, b, uint32_t(size / b), 0xff};
  COFFER_RETURN_IF_ERROR(g.Validate());
  COFFER_ASSIGN_OR_RETURN(auto dev, FileBlockDevice::Open(o.image, g, {.read_only = use == DeviceUse::kReadOnly}));
  ApplyTunables(o, g, info.block_count, out.config);
  out.config.block_count = info.block_count;
  out.device = std::move(dev);
  out.description = "image " + o.image + " (" + std::to_string(b) + " x " + std::to_string(info.block_count) + ")";
  return out;
}

}  // namespace

uint32_t DefaultIoSize(uint32_t block_size) { return block_size <= 512 ? block_size : 16; }

void AddDeviceOptions(CLI::App& cmd, DeviceOptions& o, DeviceUse use) {
  cmd.add_option("--image", o.image, "Plain littlefs image file")->group("Device");
  cmd.add_option("--volume", o.volume, "Sealed volume SPEC (file:PATH, https://HOST:PORT/v1/volumes/NAME, ...)")
      ->group("Device");
  cmd.add_option("--key", o.key,
                 "Key for --volume: a key file (file:PATH or PATH), pass:..., keyserver:CONFIG or tpm2:[pcrs=...]")
      ->group("Device");
  cmd.add_option("--anchor", o.anchor,
                 "Anchor for --volume: a file, tpm2:nv=HANDLE (TPM NV counter) or witness:CONFIG.json (key server); "
                 "default: the KEYSPEC's")
      ->group("Device");
  bool format = use == DeviceUse::kFormat;
  cmd.add_option("--block-size", o.block_size,
                 format ? "Erase block size in bytes (required for an image)"
                        : "Block size of the image (default: found from the superblock)")
      ->group("Geometry");
  cmd.add_option("--block-count", o.block_count,
                 format ? "Number of blocks (default: the existing image's size / block size)"
                        : "Expected block count (default: from the superblock)")
      ->group("Geometry");
  cmd.add_option("--read-size", o.read_size, "Read unit (default: block size up to 512, else 16)")->group("Geometry");
  cmd.add_option("--prog-size", o.prog_size, "Program unit (default: block size up to 512, else 16)")
      ->group("Geometry");
  cmd.add_option("--cache-size", o.cache_size, "littlefs cache size (default: min(block size, 512))")
      ->group("Geometry");
  cmd.add_option("--lookahead-size", o.lookahead_size, "littlefs lookahead bytes (default: block count / 8, at most 256)")
      ->group("Geometry");
  cmd.add_option("--block-cycles", o.block_cycles, "Erase cycles before wear levelling moves metadata (-1: off)")
      ->default_val(500)
      ->group("Geometry");
  if (format) {
    cmd.add_option("--disk-version", o.disk_version, "littlefs disk version to write: 2.0 or 2.1")
        ->default_val("2.1")
        ->check(CLI::IsMember({"2.0", "2.1"}))
        ->group("Geometry");
  }
}

Result<FsDevice> OpenFsDevice(const DeviceOptions& o, DeviceUse use, const std::string& create_path) {
  COFFER_RETURN_IF_ERROR(CheckDeviceOptions(o));
  if (!o.image.empty()) return OpenImage(o, use, create_path);
  FsDevice out;
  COFFER_ASSIGN_OR_RETURN(out.device, OpenSealedVolume(o.volume, o.key, o.anchor, use == DeviceUse::kReadOnly));
  const BlockGeometry& g = out.device->geometry();
  ApplyTunables(o, g, g.block_count, out.config);
  out.config.block_count = use == DeviceUse::kFormat ? g.block_count : 0;
  out.description = "volume " + o.volume;
  return out;
}

Result<std::unique_ptr<MountedFs>> MountFs(const DeviceOptions& o, DeviceUse use) {
  auto m = std::make_unique<MountedFs>();
  COFFER_ASSIGN_OR_RETURN(m->dev, OpenFsDevice(o, use));
  auto fs = fs::Filesystem::Mount(*m->dev.device, m->dev.config);
  if (!fs.ok()) return fs.status().WithContext("mount " + m->dev.description);
  m->fs = std::move(fs).value();
  return m;
}

std::string FsHint(const Status& status) {
  switch (status.code()) {
    case StatusCode::kCorrupt:
      return "the image is damaged or not a littlefs image; for an unusual geometry give --block-size "
             "(and --read-size/--prog-size)";
    case StatusCode::kNoSpace:
      return "the filesystem is full: remove files or pack into a larger image (--block-count)";
    case StatusCode::kUnsupported:
      return "";
    default:
      return "";
  }
}

}  // namespace coffer::cli
