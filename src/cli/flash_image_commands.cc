// `coffer flash image|inspect|ota|encrypted-img|partitions`: factory images from a partition table,
// their inspection, per-slot OTA variants, and ESP-IDF's pre-encrypted OTA container.
#include <cstdlib>
#include <fstream>

#include "cli/commands.h"
#include "cli/flash_util.h"
#include "coffer/base/file_util.h"
#include "coffer/flash/encrypted_img.h"
#include "coffer/flash/flash_image.h"
#include "coffer/flash/int_parse.h"

namespace coffer::cli {
namespace {

using nlohmann::json;

Result<uint32_t> ParseU32(const std::string& what, const std::string& text) {
  auto v = flash::ParsePythonInt(text);
  if (!v.ok()) return InvalidArgument(what + ": " + v.status().message());
  if (*v < 0 || *v > 0xFFFFFFFFll) return InvalidArgument(what + " " + text + " is out of range");
  return uint32_t(*v);
}

Result<uint64_t> ParseFlashSize(const std::string& text) {
  std::string t = text;
  uint64_t mult = 1;
  if (t.size() > 2 && (t.substr(t.size() - 2) == "MB" || t.substr(t.size() - 2) == "mb")) {
    mult = 1 << 20;
    t.resize(t.size() - 2);
  }
  auto v = flash::ParsePythonInt(t);
  if (!v.ok() || *v <= 0) return InvalidArgument("--flash-size " + text + " is not a size (e.g. 4MB or 0x400000)");
  if (uint64_t(*v) * mult > flash::kFlashAddressLimit) return InvalidArgument("--flash-size " + text + " exceeds 4 GiB");
  return uint64_t(*v) * mult;
}

Result<flash::PartitionTable> LoadTable(const std::string& csv_path, uint32_t table_offset, std::optional<uint64_t> flash_size,
                                        std::optional<uint32_t> bootloader_offset) {
  COFFER_ASSIGN_OR_RETURN(Bytes csv, ReadFileBytes(csv_path));
  flash::PartitionTableOptions o;
  o.table_offset = table_offset;
  if (flash_size) o.flash_size = uint32_t(std::min<uint64_t>(*flash_size, 0xFFFFFFFFull));
  o.primary_bootloader_offset = bootloader_offset;
  o.env = [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
  auto t = flash::PartitionTable::FromCsv(AsStringView(csv), o);
  if (!t.ok()) return t.status().WithContext(csv_path);
  return t;
}

Result<flash::FlashKey> LoadKeyFor(const std::string& path, flash::Scheme scheme) {
  COFFER_ASSIGN_OR_RETURN(SecretBytes raw, ReadFlashKeyFile(path));
  return flash::PrepareFlashKey(scheme, raw);
}

Status WriteJsonFile(const std::string& path, const json& j) {
  std::string text = j.dump(2) + "\n";
  AtomicWriteOptions o;
  o.mode = 0644;
  return WriteFileAtomic(path, AsBytes(text), o);
}

void AddImage(CLI::App& flash, Context& ctx) {
  struct Args {
    std::string chip, partitions, key, bootloader, output, boot_slot, conf, manifest, table_offset = "0x8000", flash_size;
    std::vector<std::string> apps, data;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = flash.add_subcommand("image", "Write a complete pre-encrypted factory flash image from a partition CSV");
  sub->add_option("--chip", a->chip, "target chip: " + flash::KnownChips())->required();
  sub->add_option("--partitions", a->partitions, "ESP-IDF partition table CSV")->required();
  sub->add_option("--key,-k", a->key, "flash encryption key file")->required();
  sub->add_option("--bootloader", a->bootloader, "second-stage bootloader image (plaintext)")->required();
  sub->add_option("--app", a->apps, "NAME=FILE: app image for app partition NAME (repeatable)")->required();
  sub->add_option("--data", a->data, "NAME=FILE: contents of data partition NAME (repeatable)");
  sub->add_option("--boot-slot", a->boot_slot, "app partition to boot (default: factory, else the first OTA slot with an app)");
  sub->add_option("--flash-crypt-conf", a->conf, "FLASH_CRYPT_CONFIG for esp32 (default 0xf)");
  sub->add_option("--partition-table-offset", a->table_offset, "partition table offset (default 0x8000)");
  sub->add_option("--flash-size", a->flash_size, "image size (e.g. 4MB); default: end of the last partition");
  sub->add_option("-o,--output", a->output, "flash image to write")->required();
  sub->add_option("--manifest", a->manifest, "JSON manifest path (default: OUTPUT.json)");
  sub->add_flag("--json", a->json, "print the manifest on stdout");
  sub->footer(std::string(R"(
Lays out the whole flash from offset 0: the bootloader at the chip's offset (0x1000 on esp32/esp32s2,
0x2000 on esp32c5/esp32p4, else 0x0), the partition table (gen_esp32part binary with MD5) at 0x8000,
otadata that boots --boot-slot, and each --app/--data image in its partition. Everything flash
encryption covers is encrypted at its own address with the chip's scheme (esp32: AES-256 key
tweak; others: XTS-AES): bootloader, partition table, app partitions, otadata and nvs_keys always,
other partitions when flagged 'encrypted'. nvs is never encrypted. Unwritten space is 0xFF.
The manifest records each region's offset, length, encryption and SHA-256 of its plaintext and of
its stored bytes; `coffer flash inspect` checks an image against it.

Examples:
  coffer flash image --chip esp32 --partitions partitions.csv --key key.bin \
      --bootloader bootloader.bin --app ota_0=app.bin --data storage=spiffs.bin -o flash.bin
  esptool.py --chip esp32 write_flash 0x0 flash.bin

)") + kExitCodesHelp);
  sub->callback([&ctx, a] {
    Console& con = ctx.console;
    auto fail = [&](const Status& s) { ctx.exit_code = FlashReportError(con, s); };
    auto chip = flash::LookupChip(a->chip);
    if (!chip.ok()) return fail(chip.status());
    flash::ImageSpec spec;
    spec.chip = *chip;
    auto toff = ParseU32("--partition-table-offset", a->table_offset);
    if (!toff.ok()) return fail(toff.status());
    if (!a->flash_size.empty()) {
      auto fs = ParseFlashSize(a->flash_size);
      if (!fs.ok()) return fail(fs.status());
      spec.flash_size = *fs;
    }
    if (!a->conf.empty()) {
      auto c = ParseU32("--flash-crypt-conf", a->conf);
      if (!c.ok()) return fail(c.status());
      if (*c > 0xF) return fail(InvalidArgument("--flash-crypt-conf must be 0x0..0xf"));
      spec.flash_crypt_conf = *c;
    }
    auto table = LoadTable(a->partitions, *toff, spec.flash_size, chip->bootloader_offset);
    if (!table.ok()) return fail(table.status());
    spec.table = std::move(*table);
    spec.bootloader_path = a->bootloader;
    for (const auto& s : a->apps) {
      auto nf = flash::ParseNamedFile(s);
      if (!nf.ok()) return fail(nf.status());
      spec.apps.push_back(*nf);
    }
    for (const auto& s : a->data) {
      auto nf = flash::ParseNamedFile(s);
      if (!nf.ok()) return fail(nf.status());
      spec.data.push_back(*nf);
    }
    if (!a->boot_slot.empty()) spec.boot_slot = a->boot_slot;
    auto key = LoadKeyFor(a->key, chip->scheme);
    if (!key.ok()) return fail(key.status());
    std::string manifest_path = a->manifest.empty() ? a->output + ".json" : a->manifest;
    ProgressBar bar(con, "building image");
    auto m = flash::BuildImage(*key, spec, a->output, bar.Fn());
    bar.Finish();
    if (!m.ok()) return fail(m.status());
    Status ws = WriteJsonFile(manifest_path, *m);
    if (!ws.ok()) {
      ::unlink(a->output.c_str());  // an image without its manifest is not what was asked for
      return fail(ws);
    }
    if (a->json) {
      con.out << m->dump(2) << "\n";
    } else {
      con.out << "Wrote " << a->output << " (" << (*m)["flash_size"].get<uint64_t>() << " bytes, " << chip->name
              << ", boots " << (*m)["boot_slot"].get<std::string>() << ") and " << manifest_path << "\n";
      for (const auto& r : (*m)["regions"]) {
        con.out << "  " << r["offset_hex"].get<std::string>() << "  " << r["name"].get<std::string>() << "  "
                << r["length"].get<uint64_t>() << " bytes" << (r["encrypted"].get<bool>() ? "  encrypted" : "  plaintext")
                << "\n";
      }
    }
  });
}

void AddInspect(CLI::App& flash, Context& ctx) {
  struct Args {
    std::string image, key, chip, scheme, partitions, manifest, conf, table_offset = "0x8000";
    bool json = false, no_manifest = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = flash.add_subcommand("inspect", "Decrypt a flash image and check it (table MD5, bootloader, otadata, manifest hashes)");
  sub->add_option("image", a->image, "flash image")->required();
  sub->add_option("--key,-k", a->key, "flash encryption key file")->required();
  sub->add_option("--chip", a->chip, "chip (sets scheme and bootloader offset); default: detect the scheme");
  sub->add_option("--scheme", a->scheme, "esp32 or xts (instead of --chip)");
  sub->add_option("--partitions", a->partitions, "partition CSV the image's table must match");
  sub->add_option("--manifest", a->manifest, "manifest to verify (default: IMAGE.json if present)");
  sub->add_flag("--no-manifest", a->no_manifest, "do not read IMAGE.json");
  sub->add_option("--flash-crypt-conf", a->conf, "FLASH_CRYPT_CONFIG for esp32 (default 0xf)");
  sub->add_option("--partition-table-offset", a->table_offset, "partition table offset (default 0x8000)");
  sub->add_flag("--json", a->json, "print the report as JSON");
  sub->footer(std::string(R"(
Decrypts the partition table (checking its MD5), finds the bootloader, reads otadata to tell which
slot boots, and for each partition says whether it holds an app image, data or erased flash. With a
manifest (from `coffer flash image`) every region's stored bytes and decrypted plaintext are hashed
and compared: any difference exits 3. A key that does not decrypt the table exits 4.

Examples:
  coffer flash inspect flash.bin --key key.bin
  coffer flash inspect flash.bin --key key.bin --chip esp32s3 --partitions partitions.csv --json

)") + kExitCodesHelp);
  sub->callback([&ctx, a] {
    Console& con = ctx.console;
    auto fail = [&](const Status& s) { ctx.exit_code = FlashReportError(con, s); };
    flash::InspectOptions o;
    std::vector<flash::Scheme> schemes = {flash::Scheme::kEsp32, flash::Scheme::kXts};
    if (!a->chip.empty()) {
      auto chip = flash::LookupChip(a->chip);
      if (!chip.ok()) return fail(chip.status());
      o.chip = *chip;
      schemes = {chip->scheme};
    } else if (!a->scheme.empty()) {
      auto s = flash::ParseScheme(a->scheme);
      if (!s.ok()) return fail(s.status());
      schemes = {*s};
    }
    auto toff = ParseU32("--partition-table-offset", a->table_offset);
    if (!toff.ok()) return fail(toff.status());
    o.table_offset = *toff;
    if (!a->conf.empty()) {
      auto c = ParseU32("--flash-crypt-conf", a->conf);
      if (!c.ok() || *c > 0xF) return fail(InvalidArgument("--flash-crypt-conf must be 0x0..0xf"));
      o.flash_crypt_conf = *c;
    }
    if (!a->partitions.empty()) {
      auto t = LoadTable(a->partitions, *toff, std::nullopt, o.chip ? std::optional<uint32_t>(o.chip->bootloader_offset) : std::nullopt);
      if (!t.ok()) return fail(t.status());
      o.expected_table = std::move(*t);
    }
    std::string mpath = a->manifest;
    if (mpath.empty() && !a->no_manifest && ::access((a->image + ".json").c_str(), F_OK) == 0) mpath = a->image + ".json";
    if (!mpath.empty()) {
      auto bytes = ReadFileBytes(mpath);
      if (!bytes.ok()) return fail(bytes.status());
      auto j = json::parse(AsStringView(*bytes), nullptr, false);
      if (j.is_discarded() || !j.is_object()) return fail(InvalidArgument(mpath + " is not valid JSON"));
      o.manifest = j;
      if (!o.chip && a->scheme.empty() && j.contains("chip")) {
        auto chip = flash::LookupChip(j.value("chip", ""));
        if (chip.ok()) {
          o.chip = *chip;
          schemes = {chip->scheme};
        }
      }
      if (j.contains("flash_crypt_conf") && a->conf.empty()) o.flash_crypt_conf = j["flash_crypt_conf"];
    }
    auto raw = ReadFlashKeyFile(a->key);
    if (!raw.ok()) return fail(raw.status());
    Result<json> report = Unauthenticated("no scheme accepted the key");
    for (auto scheme : schemes) {
      auto key = flash::PrepareFlashKey(scheme, *raw);
      if (!key.ok()) {
        if (schemes.size() == 1) return fail(key.status());
        continue;
      }
      report = flash::InspectImage(*key, a->image, o);
      if (report.ok() || report.status().code() != StatusCode::kUnauthenticated) break;
    }
    if (!report.ok()) return fail(report.status());
    if (a->json) {
      con.out << report->dump(2) << "\n";
      return;
    }
    const json& r = *report;
    con.out << a->image << ": " << r["scheme"].get<std::string>() << " scheme, partition table at "
            << "0x" << std::hex << r["partition_table_offset"].get<uint32_t>() << std::dec << " " << r["partition_table"].get<std::string>() << "\n";
    if (r["bootloader"]["found"].get<bool>()) {
      con.out << "  bootloader at " << r["bootloader"]["offset_hex"].get<std::string>() << "\n";
    }
    if (r.contains("boots")) con.out << "  boots: " << r["boots"].get<std::string>() << "\n";
    for (const auto& p : r["partitions"]) {
      con.out << "  " << p["offset_hex"].get<std::string>() << "  " << p["name"].get<std::string>() << " ("
              << p["type"].get<std::string>() << "/" << p["subtype"].get<std::string>() << ", "
              << (p["encrypted"].get<bool>() ? "encrypted" : "plaintext") << "): " << p["content"].get<std::string>() << "\n";
    }
    if (r.contains("manifest_regions_checked")) {
      con.out << "  manifest: " << r["manifest_regions_checked"].get<int>() << " regions verified\n";
    }
  });
}

void AddOta(CLI::App& flash, Context& ctx) {
  struct Args {
    std::string partitions, key, chip, app, out_dir, conf, table_offset = "0x8000";
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = flash.add_subcommand("ota", "Encrypt one app for every OTA slot (one variant per slot + manifest)");
  sub->add_option("--partitions", a->partitions, "ESP-IDF partition table CSV")->required();
  sub->add_option("--key,-k", a->key, "flash encryption key file")->required();
  sub->add_option("--chip", a->chip, "target chip (default esp32s3-style XTS unless the key suggests esp32)");
  sub->add_option("app", a->app, "plaintext app image")->required();
  sub->add_option("-o,--output", a->out_dir, "output directory")->required();
  sub->add_option("--flash-crypt-conf", a->conf, "FLASH_CRYPT_CONFIG for esp32 (default 0xf)");
  sub->add_option("--partition-table-offset", a->table_offset, "partition table offset (default 0x8000)");
  sub->add_flag("--json", a->json, "print the manifest on stdout");
  sub->footer(std::string(R"(
Flash encryption is tweaked by address, so an app encrypted for ota_0 is garbage in ota_1. This
writes DIR/<slot>.bin for every OTA slot, each encrypted at its slot's offset, and
DIR/manifest.json listing slot, offset, size and SHA-256; the updater writes the variant for the
slot esp_ota_get_next_update_partition() returns. For an address-independent artefact use
`coffer flash encrypted-img` (ESP-IDF's pre-encrypted OTA format).

Examples:
  coffer flash ota --chip esp32c3 --partitions partitions.csv --key key.bin app.bin -o ota-out

)") + kExitCodesHelp);
  sub->callback([&ctx, a] {
    Console& con = ctx.console;
    auto fail = [&](const Status& s) { ctx.exit_code = FlashReportError(con, s); };
    auto chip = flash::LookupChip(a->chip.empty() ? "esp32s3" : a->chip);
    if (!chip.ok()) return fail(chip.status());
    auto toff = ParseU32("--partition-table-offset", a->table_offset);
    if (!toff.ok()) return fail(toff.status());
    uint32_t conf = 0xF;
    if (!a->conf.empty()) {
      auto c = ParseU32("--flash-crypt-conf", a->conf);
      if (!c.ok() || *c > 0xF) return fail(InvalidArgument("--flash-crypt-conf must be 0x0..0xf"));
      conf = *c;
    }
    auto table = LoadTable(a->partitions, *toff, std::nullopt, chip->bootloader_offset);
    if (!table.ok()) return fail(table.status());
    auto key = LoadKeyFor(a->key, chip->scheme);
    if (!key.ok()) return fail(key.status());
    ProgressBar bar(con, "encrypting variants");
    auto m = flash::BuildOtaVariants(*key, *chip, *table, a->app, a->out_dir, conf, bar.Fn());
    bar.Finish();
    if (!m.ok()) return fail(m.status());
    if (a->json) {
      con.out << m->dump(2) << "\n";
      return;
    }
    for (const auto& v : (*m)["variants"]) {
      con.out << a->out_dir << "/" << v["file"].get<std::string>() << "  for " << v["slot"].get<std::string>() << " at "
              << v["offset_hex"].get<std::string>() << "\n";
    }
    con.out << a->out_dir << "/manifest.json\n";
  });
}

void AddEncryptedImg(CLI::App& flash, Context& ctx) {
  struct Args {
    std::string key, input, output;
    bool decrypt = false, json = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = flash.add_subcommand("encrypted-img", "Write (or --decrypt) ESP-IDF's pre-encrypted OTA image (esp_encrypted_img)");
  sub->add_option("--key,-k", a->key,
                  "PEM key: to encrypt, the device's RSA-3072 or EC P-256 public key; with --decrypt, its private key")
      ->required();
  sub->add_flag("--decrypt", a->decrypt, "decrypt an esp_encrypted_img back to the plain app");
  sub->add_option("input", a->input, "input file")->required();
  sub->add_option("-o,--output", a->output, "output file")->required();
  sub->add_flag("--json", a->json, "print header facts as JSON");
  sub->footer(std::string(R"(
The esp_encrypted_img format (idf-extra-components/esp_encrypted_img): a 512-byte header (magic
0x0788b6cf, the AES-256-GCM key wrapped with RSA-3072 PKCS#1 v1.5 or ECIES-P256, IV, size, GCM tag)
then the GCM ciphertext. The device decrypts it while writing its OTA slot and flash encryption
re-encrypts it for that slot, so one artefact fits every slot. The key type picks the wrap.
A changed byte or a wrong key fails GCM authentication: exit 3, and no output is written.

Examples:
  coffer flash encrypted-img --key rsa_pub_key.pem app.bin -o app.enc.bin
  coffer flash encrypted-img --decrypt --key rsa_priv_key.pem app.enc.bin -o app.bin

)") + kExitCodesHelp);
  sub->callback([&ctx, a] {
    Console& con = ctx.console;
    ProgressBar bar(con, a->decrypt ? "decrypting" : "encrypting");
    auto r = a->decrypt ? flash::DecryptImg(a->key, a->input, a->output, bar.Fn())
                        : flash::EncryptImg(a->key, a->input, a->output, bar.Fn());
    bar.Finish();
    if (!r.ok()) {
      ctx.exit_code = FlashReportError(con, r.status());
      return;
    }
    std::string wrap = r->wrap == flash::KeyWrap::kRsa3072 ? "RSA-3072" : "ECIES-P256";
    if (a->json) {
      con.out << json{{"key_wrap", wrap}, {"bin_size", r->bin_size}, {"iv", r->iv_hex}, {"auth_tag", r->tag_hex}}.dump(2) << "\n";
    } else {
      con.out << (a->decrypt ? "Decrypted " : "Encrypted ") << r->bin_size << " bytes (" << wrap << " key wrap) to "
              << a->output << "\n";
    }
  });
}

void AddPartitions(CLI::App& flash, Context& ctx) {
  struct Args {
    std::string input, output, table_offset = "0x8000", flash_size;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = flash.add_subcommand("partitions", "Convert a partition CSV to the binary table (gen_esp32part) or back");
  sub->add_option("input", a->input, "partitions.csv or partitions.bin")->required();
  sub->add_option("-o,--output", a->output, "output file (binary for CSV input, CSV for binary input)")->required();
  sub->add_option("--offset", a->table_offset, "partition table offset (default 0x8000)");
  sub->add_option("--flash-size", a->flash_size, "check the table fits (e.g. 4MB)");
  sub->footer(std::string(R"(
Same output as ESP-IDF's gen_esp32part.py (v5.5.5): 32-byte entries, an MD5 entry, 0xFF to 0xC00.

Examples:
  coffer flash partitions partitions.csv -o partitions.bin --flash-size 4MB
  coffer flash partitions partitions.bin -o partitions.csv

)") + kExitCodesHelp);
  sub->callback([&ctx, a] {
    Console& con = ctx.console;
    auto fail = [&](const Status& s) { ctx.exit_code = FlashReportError(con, s); };
    auto toff = ParseU32("--offset", a->table_offset);
    if (!toff.ok()) return fail(toff.status());
    std::optional<uint64_t> fs;
    if (!a->flash_size.empty()) {
      auto f = ParseFlashSize(a->flash_size);
      if (!f.ok()) return fail(f.status());
      fs = *f;
    }
    auto bytes = ReadFileBytes(a->input);
    if (!bytes.ok()) return fail(bytes.status());
    AtomicWriteOptions wo;
    wo.mode = 0644;
    if (bytes->size() >= 2 && (*bytes)[0] == 0xAA && (*bytes)[1] == 0x50) {
      auto t = flash::PartitionTable::FromBinary(*bytes);
      if (!t.ok()) return fail(t.status());
      Status s = WriteFileAtomic(a->output, AsBytes(t->ToCsv()), wo);
      if (!s.ok()) return fail(s);
      return;
    }
    auto t = LoadTable(a->input, *toff, fs, std::nullopt);
    if (!t.ok()) return fail(t.status());
    auto bin = t->ToBinary();
    if (!bin.ok()) return fail(bin.status());
    Status s = WriteFileAtomic(a->output, *bin, wo);
    if (!s.ok()) return fail(s);
  });
}

}  // namespace

void RegisterFlashImageCommands(CLI::App& flash, Context& ctx) {
  AddImage(flash, ctx);
  AddInspect(flash, ctx);
  AddOta(flash, ctx);
  AddEncryptedImg(flash, ctx);
  AddPartitions(flash, ctx);
}

}  // namespace coffer::cli
