// Factory images, inspection and per-slot OTA variants. See flash_image.h and docs/flash.md.
#include "coffer/flash/flash_image.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>

namespace coffer::flash {
namespace {

std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(ByteSpan d) { EVP_DigestUpdate(ctx_, d.data(), d.size()); }
  std::string HexDigest() {
    uint8_t h[32];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx_, h, &n);
    return HexEncode(ByteSpan(h, 32));
  }

 private:
  EVP_MD_CTX* ctx_;
};

constexpr size_t kChunk = 1 << 20;

// Sequential writer that hashes everything it writes (the whole-image SHA-256).
struct HashedOutput {
  AtomicOutput& out;
  Sha256 sha;
  Status Write(ByteSpan d) {
    sha.Update(d);
    return out.Write(d);
  }
  Status FillTo(uint64_t end) {
    Bytes ff(std::min<uint64_t>(kChunk, end > out.size() ? end - out.size() : 0), 0xFF);
    while (out.size() < end) {
      size_t n = size_t(std::min<uint64_t>(ff.size(), end - out.size()));
      COFFER_RETURN_IF_ERROR(Write(ByteSpan(ff.data(), n)));
    }
    return Status::Ok();
  }
};

struct Region {
  std::string name, kind, source;
  uint64_t offset = 0;
  uint64_t length = 0;  // source bytes
  std::optional<uint64_t> partition_size;
  bool encrypted = false;
  std::optional<InputFile> file;  // or:
  Bytes inline_data;
};

// Streams one region into the output at its offset (the output is positioned there).
Status WriteRegion(HashedOutput& out, FlashCipher& cipher, Region& r, nlohmann::json& entry, const ProgressFn& progress,
                   uint64_t& done_total, uint64_t grand_total) {
  Sha256 plain_sha, stored_sha;
  Bytes buf(kChunk);
  uint64_t pos = 0;
  while (pos < r.length) {
    size_t n = size_t(std::min<uint64_t>(kChunk, r.length - pos));
    if (r.file) {
      COFFER_RETURN_IF_ERROR(r.file->ReadAt(pos, MutableByteSpan(buf.data(), n)));
    } else {
      std::memcpy(buf.data(), r.inline_data.data() + pos, n);
    }
    plain_sha.Update(ByteSpan(buf.data(), n));
    size_t stored = n;
    if (r.encrypted) {
      // Pad the final block with 0xFF (erased flash) so the cipher sees whole 16-byte blocks.
      stored = (n + 15) / 16 * 16;
      std::memset(buf.data() + n, 0xFF, stored - n);
      COFFER_RETURN_IF_ERROR(cipher.Encrypt(r.offset + pos, ByteSpan(buf.data(), stored), MutableByteSpan(buf.data(), stored)));
    }
    stored_sha.Update(ByteSpan(buf.data(), stored));
    COFFER_RETURN_IF_ERROR(out.Write(ByteSpan(buf.data(), stored)));
    pos += n;
    done_total += n;
    if (progress) progress(done_total, grand_total);
  }
  uint64_t stored_len = r.encrypted ? (r.length + 15) / 16 * 16 : r.length;
  entry = {{"name", r.name},
           {"kind", r.kind},
           {"offset", r.offset},
           {"offset_hex", Hex(r.offset)},
           {"length", r.length},
           {"stored_length", stored_len},
           {"encrypted", r.encrypted},
           {"source", r.source},
           {"plaintext_sha256", plain_sha.HexDigest()},
           {"stored_sha256", stored_sha.HexDigest()}};
  if (r.partition_size) entry["partition_size"] = *r.partition_size;
  return Status::Ok();
}

std::string Names(const PartitionTable& t) {
  std::string s;
  for (const auto& p : t.partitions()) s += (s.empty() ? "" : ", ") + p.name;
  return s;
}

Result<Region> FileRegion(const std::string& name, const std::string& kind, const std::string& path) {
  Region r;
  r.name = name;
  r.kind = kind;
  r.source = path;
  auto f = InputFile::Open(path);
  if (!f.ok()) return f.status().WithContext(kind + " '" + name + "'");
  r.length = f->size();
  r.file = std::move(*f);
  return r;
}

}  // namespace

Result<ChipInfo> LookupChip(std::string_view name) {
  static const std::vector<ChipInfo> chips = {
      {"esp32", Scheme::kEsp32, 0x1000, {32, 24}}, {"esp32s2", Scheme::kXts, 0x1000, {32, 64}},
      {"esp32s3", Scheme::kXts, 0x0, {32, 64}},    {"esp32c2", Scheme::kXts, 0x0, {16, 32}},
      {"esp32c3", Scheme::kXts, 0x0, {32}},        {"esp32c5", Scheme::kXts, 0x2000, {32, 64}},
      {"esp32c6", Scheme::kXts, 0x0, {32}},        {"esp32c61", Scheme::kXts, 0x0, {32}},
      {"esp32h2", Scheme::kXts, 0x0, {32}},        {"esp32p4", Scheme::kXts, 0x2000, {32, 64}}};
  std::string n(name);
  n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
  for (auto& c : n) c = char(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& c : chips) {
    if (c.name == n) return c;
  }
  return InvalidArgument("unknown chip '" + std::string(name) + "' (known: " + KnownChips() + ")");
}

std::string KnownChips() { return "esp32, esp32s2, esp32s3, esp32c2, esp32c3, esp32c5, esp32c6, esp32c61, esp32h2, esp32p4"; }

Result<NamedFile> ParseNamedFile(std::string_view arg) {
  size_t eq = arg.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == arg.size()) {
    return InvalidArgument("'" + std::string(arg) + "' should be PARTITION=FILE (e.g. ota_0=app.bin)");
  }
  return NamedFile{std::string(arg.substr(0, eq)), std::string(arg.substr(eq + 1))};
}

Result<nlohmann::json> BuildImage(const FlashKey& key, const ImageSpec& spec, const std::string& out_path,
                                  const ProgressFn& progress) {
  const ChipInfo& chip = spec.chip;
  const PartitionTable& table = spec.table;
  if (key.scheme != chip.scheme) return InvalidArgument("key prepared for the wrong scheme for " + chip.name);
  if (std::find(chip.key_file_lengths.begin(), chip.key_file_lengths.end(), key.file_length) == chip.key_file_lengths.end()) {
    std::string allowed;
    for (size_t l : chip.key_file_lengths) allowed += (allowed.empty() ? "" : " or ") + std::to_string(l);
    return InvalidArgument(chip.name + " takes a " + allowed + "-byte flash encryption key; the key file has " +
                           std::to_string(key.file_length) + " bytes");
  }
  COFFER_ASSIGN_OR_RETURN(FlashCipher cipher, FlashCipher::Create(key, spec.flash_crypt_conf));

  std::vector<Region> regions;
  // Bootloader.
  {
    COFFER_ASSIGN_OR_RETURN(Region r, FileRegion("bootloader", "bootloader", spec.bootloader_path));
    r.offset = chip.bootloader_offset;
    r.encrypted = true;
    if (r.length == 0) return InvalidArgument("bootloader " + spec.bootloader_path + " is empty");
    if (r.offset + ((r.length + 15) / 16 * 16) > table.table_offset()) {
      return InvalidArgument("bootloader " + spec.bootloader_path + " (" + std::to_string(r.length) + " bytes at " +
                             Hex(r.offset) + ") runs into the partition table at " + Hex(table.table_offset()));
    }
    r.partition_size = table.table_offset() - chip.bootloader_offset;
    regions.push_back(std::move(r));
  }
  // Partition table.
  {
    Region r;
    r.name = "partition_table";
    r.kind = "partition_table";
    r.source = "generated";
    COFFER_ASSIGN_OR_RETURN(r.inline_data, table.ToBinary());
    r.length = r.inline_data.size();
    r.offset = table.table_offset();
    r.encrypted = true;
    r.partition_size = kPartitionTableSize;
    regions.push_back(std::move(r));
  }
  // Apps and data, by partition.
  std::map<std::string, std::pair<std::string, bool>> assigned;  // name -> (path, is_app)
  for (const auto& a : spec.apps) {
    if (!assigned.emplace(a.partition, std::make_pair(a.path, true)).second) {
      return InvalidArgument("partition '" + a.partition + "' is given more than one image");
    }
  }
  for (const auto& d : spec.data) {
    if (!assigned.emplace(d.partition, std::make_pair(d.path, false)).second) {
      return InvalidArgument("partition '" + d.partition + "' is given more than one image");
    }
  }
  for (const auto& [name, what] : assigned) {
    const Partition* p = table.Find(name);
    if (!p) return InvalidArgument("no partition named '" + name + "' in the table (partitions: " + Names(table) + ")");
    if (what.second && !p->is_app()) {
      return InvalidArgument("--app " + name + "=...: partition '" + name + "' is " + p->TypeName() + "/" +
                             p->SubtypeName() + ", not an app partition (use --data)");
    }
    if (!what.second && p->is_app()) {
      return InvalidArgument("--data " + name + "=...: partition '" + name + "' is an app partition (use --app)");
    }
    if (p->type == kPartTypeBootloader || p->type == kPartTypePartitionTable) {
      return InvalidArgument("partition '" + name + "' is the bootloader or partition table; use --bootloader");
    }
  }
  // Boot slot.
  const Partition* boot = nullptr;
  if (spec.boot_slot) {
    boot = table.Find(*spec.boot_slot);
    if (!boot) return InvalidArgument("--boot-slot " + *spec.boot_slot + ": no such partition (partitions: " + Names(table) + ")");
    if (!boot->is_app()) return InvalidArgument("--boot-slot " + *spec.boot_slot + " is not an app partition");
  } else {
    for (const auto& p : table.partitions()) {
      if (p.is_app() && p.subtype == kSubtypeAppFactory && assigned.count(p.name)) boot = &p;
    }
    if (!boot) {
      for (const Partition* p : table.OtaSlots()) {
        if (assigned.count(p->name)) {
          boot = p;
          break;
        }
      }
    }
  }
  if (!boot) return InvalidArgument("no app image given: pass --app PARTITION=FILE for the factory or an OTA slot");
  if (!assigned.count(boot->name) || !assigned[boot->name].second) {
    return InvalidArgument("boot slot '" + boot->name + "' has no app image: pass --app " + boot->name + "=FILE");
  }
  const Partition* otadata = table.Otadata();
  std::optional<uint32_t> boot_ota_index;
  if (boot->is_ota_app()) {
    if (!otadata) return InvalidArgument("boot slot '" + boot->name + "' is an OTA slot but the table has no otadata partition");
    boot_ota_index = boot->subtype - kSubtypeAppOtaMin;
  } else if (boot->subtype != kSubtypeAppFactory) {
    return InvalidArgument("boot slot '" + boot->name + "' is neither the factory app nor an OTA slot");
  }

  for (const auto& p : table.partitions()) {
    if (p.type == kPartTypeBootloader || p.type == kPartTypePartitionTable) continue;
    auto it = assigned.find(p.name);
    if (p.type == kPartTypeData && p.subtype == kSubtypeDataNvs && p.encrypted) {
      return InvalidArgument("partition '" + p.name +
                             "' is nvs flagged 'encrypted': NVS uses its own encryption (nvs_keys), never flash "
                             "encryption; remove the flag");
    }
    if (it == assigned.end() && !p.is_otadata()) continue;
    Region r;
    if (it != assigned.end()) {
      COFFER_ASSIGN_OR_RETURN(r, FileRegion(p.name, it->second.second ? "app" : "data", it->second.first));
    } else {
      r.name = p.name;
      r.kind = "otadata";
      r.source = boot_ota_index ? "generated (boots " + boot->name + ")" : "generated (erased: boots factory)";
      r.inline_data = MakeOtadata(boot_ota_index);
      r.length = r.inline_data.size();
    }
    if (p.is_otadata()) r.kind = "otadata";
    r.offset = p.offset;
    r.partition_size = p.size;
    r.encrypted = p.flash_encrypted();
    uint64_t stored = r.encrypted ? (r.length + 15) / 16 * 16 : r.length;
    if (stored > p.size) {
      return InvalidArgument(r.kind + " image " + r.source + " is " + std::to_string(r.length) + " bytes; partition '" +
                             p.name + "' holds " + std::to_string(p.size) + " (" + Hex(p.size) + ")");
    }
    regions.push_back(std::move(r));
  }
  std::sort(regions.begin(), regions.end(), [](const Region& a, const Region& b) { return a.offset < b.offset; });

  uint64_t flash_size = std::max<uint64_t>(table.FlashSize(), table.table_offset() + kPartitionTableSize);
  if (spec.flash_size) {
    if (*spec.flash_size < flash_size) {
      return InvalidArgument("--flash-size " + Hex(*spec.flash_size) + " is smaller than the partition table's end " +
                             Hex(flash_size));
    }
    flash_size = *spec.flash_size;
  }
  uint64_t grand_total = 0;
  for (const auto& r : regions) grand_total += r.length;

  COFFER_ASSIGN_OR_RETURN(AtomicOutput out, AtomicOutput::Create(out_path, 0644));
  HashedOutput hout{out};
  nlohmann::json entries = nlohmann::json::array();
  uint64_t done = 0;
  for (auto& r : regions) {
    COFFER_RETURN_IF_ERROR(hout.FillTo(r.offset));
    nlohmann::json e;
    COFFER_RETURN_IF_ERROR(WriteRegion(hout, cipher, r, e, progress, done, grand_total));
    entries.push_back(std::move(e));
  }
  COFFER_RETURN_IF_ERROR(hout.FillTo(flash_size));
  nlohmann::json manifest = {{"format", "coffer-flash-image"},
                             {"version", 1},
                             {"chip", chip.name},
                             {"scheme", std::string(SchemeName(chip.scheme))},
                             {"key_file_bytes", key.file_length},
                             {"flash_size", flash_size},
                             {"partition_table_offset", table.table_offset()},
                             {"bootloader_offset", chip.bootloader_offset},
                             {"boot_slot", boot->name},
                             {"image_sha256", hout.sha.HexDigest()},
                             {"regions", entries}};
  if (chip.scheme == Scheme::kEsp32) manifest["flash_crypt_conf"] = spec.flash_crypt_conf;
  COFFER_RETURN_IF_ERROR(out.Commit());
  return manifest;
}

namespace {

Result<Bytes> ReadDecrypt(const InputFile& f, FlashCipher& c, uint64_t offset, uint64_t len) {
  if (offset + len > f.size()) {
    return DataLoss("image is " + std::to_string(f.size()) + " bytes; expected data up to " + Hex(offset + len));
  }
  Bytes b(len);
  COFFER_RETURN_IF_ERROR(f.ReadAt(offset, b));
  uint64_t padded = (len + 15) / 16 * 16;
  b.resize(padded, 0xFF);
  COFFER_RETURN_IF_ERROR(c.Decrypt(offset, b, b));
  b.resize(len);
  return b;
}

std::string Describe(ByteSpan head, bool raw_erased) {
  if (raw_erased) return "erased";
  if (!head.empty() && head[0] == 0xE9) return "esp app image (magic 0xE9)";
  return "data";
}

}  // namespace

Result<nlohmann::json> InspectImage(const FlashKey& key, const std::string& image_path, const InspectOptions& o) {
  COFFER_ASSIGN_OR_RETURN(InputFile f, InputFile::Open(image_path));
  COFFER_ASSIGN_OR_RETURN(FlashCipher c, FlashCipher::Create(key, o.flash_crypt_conf));
  uint32_t toff = o.table_offset;
  if (o.manifest && o.manifest->contains("partition_table_offset")) toff = (*o.manifest)["partition_table_offset"];
  auto tbin = ReadDecrypt(f, c, toff, kPartitionTableBinLength);
  if (!tbin.ok()) return tbin.status();
  auto table = PartitionTable::FromBinary(*tbin);
  if (!table.ok() || (*tbin)[0] != 0xAA) {
    return Unauthenticated("the partition table at " + Hex(toff) + " does not decrypt with this key and scheme (" +
                           std::string(SchemeName(key.scheme)) + "): wrong key, scheme or FLASH_CRYPT_CONFIG, or not " +
                           "an encrypted image");
  }
  nlohmann::json report = {{"image", image_path},
                           {"image_size", f.size()},
                           {"scheme", std::string(SchemeName(key.scheme))},
                           {"partition_table_offset", toff},
                           {"partition_table", "valid (MD5 ok)"}};
  std::vector<std::string> problems;
  if (o.expected_table) {
    auto want = o.expected_table->ToBinary();
    if (!want.ok()) return want.status();
    if (*want != *tbin) problems.push_back("partition table differs from the one built from --partitions");
  }
  // Bootloader: at the chip's offset, or the first known offset with an image magic.
  std::vector<uint32_t> boot_offsets;
  if (o.chip) boot_offsets = {o.chip->bootloader_offset};
  else if (key.scheme == Scheme::kEsp32) boot_offsets = {0x1000};
  else boot_offsets = {0x0, 0x1000, 0x2000};
  nlohmann::json boot = {{"found", false}};
  for (uint32_t bo : boot_offsets) {
    auto head = ReadDecrypt(f, c, bo, 16);
    if (head.ok() && (*head)[0] == 0xE9) {
      boot = {{"found", true}, {"offset", bo}, {"offset_hex", Hex(bo)}};
      break;
    }
  }
  if (!boot["found"]) problems.push_back("no bootloader image (magic 0xE9) at the chip's bootloader offset");
  report["bootloader"] = boot;
  // Partitions.
  nlohmann::json parts = nlohmann::json::array();
  std::vector<const Partition*> slots = table->OtaSlots();
  for (const auto& p : table->partitions()) {
    nlohmann::json e = {{"name", p.name},          {"type", p.TypeName()},
                        {"subtype", p.SubtypeName()}, {"offset", p.offset},
                        {"offset_hex", Hex(p.offset)}, {"size", p.size},
                        {"encrypted", p.flash_encrypted()}};
    if (uint64_t(p.offset) + 32 <= f.size()) {
      Bytes raw(32);
      COFFER_RETURN_IF_ERROR(f.ReadAt(p.offset, raw));
      bool erased = std::all_of(raw.begin(), raw.end(), [](uint8_t b) { return b == 0xFF; });
      Bytes head = raw;
      if (p.flash_encrypted() && !erased) {
        COFFER_ASSIGN_OR_RETURN(head, ReadDecrypt(f, c, p.offset, 32));
      }
      e["content"] = Describe(head, erased);
      if (p.is_app() && !erased && head[0] != 0xE9) problems.push_back("app partition '" + p.name + "' holds no app image");
    } else {
      e["content"] = "beyond end of image";
    }
    if (p.is_otadata() && uint64_t(p.offset) + kOtadataSize <= f.size()) {
      COFFER_ASSIGN_OR_RETURN(Bytes od, ReadDecrypt(f, c, p.offset, kOtadataSize));
      auto slot = OtadataBootSlot(od, uint32_t(slots.size()));
      report["boots"] = slot && *slot < slots.size() ? slots[*slot]->name : "factory (otadata erased or invalid)";
    }
    parts.push_back(std::move(e));
  }
  report["partitions"] = parts;
  // Manifest: every region's stored and plaintext hash.
  if (o.manifest) {
    const auto& m = *o.manifest;
    if (m.value("format", "") != "coffer-flash-image") return InvalidArgument("manifest is not a coffer-flash-image manifest");
    if (m.value("version", 0) != 1) return Unsupported("manifest version " + std::to_string(m.value("version", 0)) + " is not supported (1 is)");
    if (m.value("scheme", "") != std::string(SchemeName(key.scheme))) {
      problems.push_back("manifest says scheme " + m.value("scheme", std::string("?")));
    }
    int checked = 0;
    for (const auto& r : m["regions"]) {
      uint64_t off = r["offset"], len = r["length"], stored = r["stored_length"];
      if (off + stored > f.size()) {
        problems.push_back("region '" + std::string(r["name"]) + "' lies beyond the end of the image");
        continue;
      }
      Sha256 ss, ps;
      Bytes buf;
      for (uint64_t pos = 0; pos < stored; pos += kChunk) {
        size_t n = size_t(std::min<uint64_t>(kChunk, stored - pos));
        buf.resize(n);
        COFFER_RETURN_IF_ERROR(f.ReadAt(off + pos, buf));
        ss.Update(buf);
        if (r["encrypted"].get<bool>()) COFFER_RETURN_IF_ERROR(c.Decrypt(off + pos, buf, buf));
        uint64_t plain_n = std::min<uint64_t>(n, len > pos ? len - pos : 0);
        ps.Update(ByteSpan(buf.data(), size_t(plain_n)));
      }
      if (ss.HexDigest() != r["stored_sha256"]) problems.push_back("region '" + std::string(r["name"]) + "' stored bytes changed");
      else if (ps.HexDigest() != r["plaintext_sha256"]) problems.push_back("region '" + std::string(r["name"]) + "' does not decrypt to its source");
      ++checked;
    }
    report["manifest_regions_checked"] = checked;
  }
  report["problems"] = problems;
  if (!problems.empty()) {
    std::string msg = "image check failed: " + problems[0];
    if (problems.size() > 1) msg += " (and " + std::to_string(problems.size() - 1) + " more)";
    return DataLoss(msg);
  }
  return report;
}

Result<nlohmann::json> BuildOtaVariants(const FlashKey& key, const ChipInfo& chip, const PartitionTable& table,
                                        const std::string& app_path, const std::string& out_dir, uint32_t conf,
                                        const ProgressFn& progress) {
  if (key.scheme != chip.scheme) return InvalidArgument("key prepared for the wrong scheme for " + chip.name);
  auto slots = table.OtaSlots();
  if (slots.empty()) return InvalidArgument("the partition table has no OTA app slots (ota_0, ota_1, ...)");
  COFFER_ASSIGN_OR_RETURN(InputFile in, InputFile::Open(app_path));
  if (in.size() == 0) return InvalidArgument("app image " + app_path + " is empty");
  uint64_t stored = (in.size() + 15) / 16 * 16;
  for (const Partition* p : slots) {
    if (stored > p->size) {
      return InvalidArgument("app image " + app_path + " is " + std::to_string(in.size()) + " bytes; slot '" + p->name +
                             "' holds " + std::to_string(p->size) + " (" + Hex(p->size) + ")");
    }
  }
  struct stat st;
  if (::stat(out_dir.c_str(), &st) != 0) {
    if (::mkdir(out_dir.c_str(), 0755) != 0) return ErrnoStatus("create directory " + out_dir, errno);
  } else if (!S_ISDIR(st.st_mode)) {
    return InvalidArgument(out_dir + " exists and is not a directory");
  }
  COFFER_ASSIGN_OR_RETURN(FlashCipher c, FlashCipher::Create(key, conf));
  std::vector<AtomicOutput> outs;
  nlohmann::json variants = nlohmann::json::array();
  Sha256 app_sha;
  Bytes buf(kChunk);
  uint64_t total = in.size() * slots.size(), done = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    const Partition* p = slots[i];
    std::string file = p->name + ".bin";
    COFFER_ASSIGN_OR_RETURN(AtomicOutput out, AtomicOutput::Create(out_dir + "/" + file, 0644));
    Sha256 sha;
    for (uint64_t pos = 0; pos < in.size(); pos += kChunk) {
      size_t n = size_t(std::min<uint64_t>(kChunk, in.size() - pos));
      COFFER_RETURN_IF_ERROR(in.ReadAt(pos, MutableByteSpan(buf.data(), n)));
      if (i == 0) app_sha.Update(ByteSpan(buf.data(), n));
      size_t s = (n + 15) / 16 * 16;
      std::memset(buf.data() + n, 0xFF, s - n);
      COFFER_RETURN_IF_ERROR(c.Encrypt(p->offset + pos, ByteSpan(buf.data(), s), MutableByteSpan(buf.data(), s)));
      sha.Update(ByteSpan(buf.data(), s));
      COFFER_RETURN_IF_ERROR(out.Write(ByteSpan(buf.data(), s)));
      done += n;
      if (progress) progress(done, total);
    }
    variants.push_back({{"slot", p->name},
                        {"subtype", p->SubtypeName()},
                        {"ota_index", p->subtype - kSubtypeAppOtaMin},
                        {"offset", p->offset},
                        {"offset_hex", Hex(p->offset)},
                        {"partition_size", p->size},
                        {"file", file},
                        {"length", stored},
                        {"sha256", sha.HexDigest()}});
    outs.push_back(std::move(out));
  }
  nlohmann::json manifest = {{"format", "coffer-flash-ota"},
                             {"version", 1},
                             {"chip", chip.name},
                             {"scheme", std::string(SchemeName(chip.scheme))},
                             {"app", app_path},
                             {"app_size", in.size()},
                             {"app_sha256", app_sha.HexDigest()},
                             {"how_to_choose", "write the variant whose slot is the device's next update partition "
                                               "(esp_ota_get_next_update_partition) at that partition's offset"},
                             {"variants", variants}};
  if (chip.scheme == Scheme::kEsp32) manifest["flash_crypt_conf"] = conf;
  std::string text = manifest.dump(2) + "\n";
  COFFER_ASSIGN_OR_RETURN(AtomicOutput mf, AtomicOutput::Create(out_dir + "/manifest.json", 0644));
  COFFER_RETURN_IF_ERROR(mf.Write(AsBytes(text)));
  for (auto& o : outs) COFFER_RETURN_IF_ERROR(o.Commit());
  COFFER_RETURN_IF_ERROR(mf.Commit());
  return manifest;
}

}  // namespace coffer::flash
