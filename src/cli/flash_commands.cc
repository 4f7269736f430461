// `coffer flash ...`: ESP32-family flash encryption (espsecure-compatible encrypt/decrypt, keygen)
// and the factory tools (image, inspect, ota, encrypted-img, partitions), registered from
// flash_*_commands.cc.
#include <sys/stat.h>

#include "cli/commands.h"
#include "cli/flash_util.h"
#include "coffer/base/file_util.h"
#include "coffer/base/random.h"
#include "coffer/flash/flash_cipher.h"
#include "coffer/flash/flash_io.h"
#include "coffer/flash/int_parse.h"

namespace coffer::cli {

void RegisterFlashImageCommands(CLI::App& flash, Context& ctx);  // flash_image_commands.cc

namespace {

constexpr const char* kTransformHelp = R"(
Byte-identical to Espressif's espsecure (esptool v5.3.1) encrypt-flash-data / decrypt-flash-data.

Schemes:
  esp32  the original ESP32 AES-256 scheme: the key is tweaked from the address every 32 bytes
         (FLASH_CRYPT_CONFIG, --flash-crypt-conf, selects which key bits; default 0xf). Key files
         of 32 bytes, or 24 bytes (3/4 coding scheme: key + key[8:16]). Inputs whose length is not a
         multiple of 16 are padded with random bytes on encrypt, as espsecure does.
  xts    XTS-AES for ESP32-S2/S3/C2/C3/C5/C6/H2/P4...: 128-byte units tweaked by address. Key files
         of 32 bytes (XTS-AES-128), 64 bytes (XTS-AES-256) or 16 bytes (SHA-256 extended to 32).
         Input length must be a non-zero multiple of 16.

--address is the flash offset the data lives at (decimal, 0x hex, 0o, 0b), a multiple of 16.
Differences from espsecure (where it crashes or accepts nonsense, coffer refuses clearly and writes
nothing): negative addresses, data running past 4 GiB, XTS keys whose two halves are equal, and
--flash-crypt-conf values above 0xf. An empty input with --scheme esp32 writes an empty output.

Examples:
  coffer flash encrypt --scheme esp32 --key key.bin --address 0x10000 app.bin -o app.enc
  coffer flash decrypt --scheme xts --key key.bin --address 0x8000 pt.enc -o pt.bin
)";

struct TransformArgs {
  std::string scheme, key, address, conf, input, output;
  bool address_set = false;
};

int RunTransform(Context& ctx, const TransformArgs& a, bool decrypt) {
  Console& con = ctx.console;
  auto scheme = flash::ParseScheme(a.scheme);
  if (!scheme.ok()) return FlashReportError(con, scheme.status());
  auto addr = flash::ParsePythonInt(a.address);
  if (!addr.ok()) return FlashReportError(con, InvalidArgument("--address: " + addr.status().message()));
  if (*addr < 0) {
    return FlashReportError(con, InvalidArgument("--address " + a.address + " is negative; flash addresses start at 0"),
                            "espsecure silently accepts negative addresses; coffer refuses them");
  }
  uint32_t conf = 0xF;
  if (!a.conf.empty()) {
    auto c = flash::ParsePythonInt(a.conf);
    if (!c.ok()) return FlashReportError(con, InvalidArgument("--flash-crypt-conf: " + c.status().message()));
    if (*c < 0 || *c > 0xF) {
      return FlashReportError(
          con, InvalidArgument("--flash-crypt-conf " + a.conf + " is out of range: FLASH_CRYPT_CONFIG is a 4-bit eFuse (0x0..0xf)"));
    }
    conf = uint32_t(*c);
    if (*scheme == flash::Scheme::kXts) {
      con.err << "coffer: warning: --flash-crypt-conf applies only to --scheme esp32; ignored\n";
    }
  }
  if (flash::SameFile(a.input, a.output)) {
    return FlashReportError(con, InvalidArgument("The input \"" + a.input + "\" and output \"" + a.output +
                                                 "\" should not be the same!"));
  }
  if (flash::SameFile(a.key, a.output)) {
    return FlashReportError(con, InvalidArgument("The input \"" + a.key + "\" and output \"" + a.output +
                                                 "\" should not be the same!"));
  }
  // Like espsecure, a missing input is reported before the key is looked at.
  {
    auto in = flash::InputFile::Open(a.input);
    if (!in.ok()) return FlashReportError(con, in.status());
  }
  auto raw = ReadFlashKeyFile(a.key);
  if (!raw.ok()) return FlashReportError(con, raw.status());
  auto key = flash::PrepareFlashKey(*scheme, *raw);
  if (!key.ok()) {
    std::string hint;
    if (*scheme == flash::Scheme::kEsp32 && (raw->size() == 16 || raw->size() == 64)) {
      hint = "a " + std::to_string(raw->size()) + "-byte key is for XTS chips (ESP32-S2/S3/C3...): use --scheme xts";
    }
    return FlashReportError(con, key.status(), hint);
  }
  if (*scheme == flash::Scheme::kEsp32 && conf == 0) {
    con.err << "coffer: warning: Setting FLASH_CRYPT_CONF to zero is not recommended.\n";
  }
  auto cipher = flash::FlashCipher::Create(*key, conf);
  if (!cipher.ok()) return FlashReportError(con, cipher.status());
  ProgressBar bar(con, decrypt ? "decrypting" : "encrypting");
  flash::TransformOptions opts;
  opts.address = uint64_t(*addr);
  opts.decrypt = decrypt;
  opts.progress = bar.Fn();
  auto r = flash::TransformFile(*cipher, a.input, a.output, opts);
  bar.Finish();
  if (!r.ok()) return FlashReportError(con, r.status());
  if (r->padding_bytes) {
    con.err << "Note: Padding with " << r->padding_bytes
            << " bytes of random data (encrypted data must be multiple of 16 bytes long).\n";
  }
  return kExitOk;
}

void AddTransform(CLI::App& flash, Context& ctx, bool decrypt) {
  auto args = std::make_shared<TransformArgs>();
  CLI::App* sub = flash.add_subcommand(decrypt ? "decrypt" : "encrypt",
                                       decrypt ? "Decrypt data read from ESP32 encrypted flash (espsecure decrypt-flash-data)"
                                               : "Encrypt data for ESP32 encrypted flash (espsecure encrypt-flash-data)");
  sub->add_option("--scheme", args->scheme, "esp32 (ESP32 AES-256 key tweak) or xts (XTS-AES, later chips)")
      ->required();
  sub->add_option("--key,-k", args->key, "flash encryption key file (raw bytes)")->required();
  sub->add_option("--address,-a", args->address, "flash offset of the data (multiple of 16)")->required();
  sub->add_option("--flash-crypt-conf", args->conf, "FLASH_CRYPT_CONFIG eFuse value 0x0..0xf (esp32 scheme; default 0xf)");
  sub->add_option("input", args->input, decrypt ? "encrypted input file" : "plaintext input file")->required();
  sub->add_option("-o,--output", args->output, "output file (written atomically; never left behind on error)")
      ->required();
  sub->footer(std::string(kTransformHelp) + "\n" + kExitCodesHelp +
              " espsecure's input checks (key length, address alignment, data length) exit 2.");
  sub->callback([&ctx, args, decrypt] { ctx.exit_code = RunTransform(ctx, *args, decrypt); });
}

void AddKeygen(CLI::App& flash, Context& ctx) {
  struct Args {
    std::string scheme = "xts-128", out;
    bool force = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* sub = flash.add_subcommand("keygen", "Generate a flash encryption key file (espsecure generate-flash-encryption-key)");
  sub->add_option("--scheme", a->scheme,
                  "esp32 (32 bytes, AES-256), esp32-192 (24 bytes, 3/4 coding scheme), xts-128 (32 bytes, "
                  "XTS-AES-128), xts-256 (64 bytes, XTS-AES-256), xts-128-sha256 (16 bytes, SHA-256 extended)")
      ->capture_default_str();
  sub->add_option("output", a->out, "key file to write (mode 0600, atomic)")->required();
  sub->add_flag("--force", a->force, "overwrite an existing key file");
  sub->footer(std::string(R"(
Writes random bytes from the OS CSPRNG. Keep the key secret: anyone holding it can read and forge
the device's flash. Refuses to overwrite an existing file without --force.

Examples:
  coffer flash keygen --scheme esp32 esp32_key.bin
  coffer flash keygen --scheme xts-256 s3_key.bin

)") + kExitCodesHelp);
  sub->callback([&ctx, a] {
    size_t len = 0;
    if (a->scheme == "esp32") len = 32;
    else if (a->scheme == "esp32-192") len = 24;
    else if (a->scheme == "xts-128" || a->scheme == "xts") len = 32;
    else if (a->scheme == "xts-256") len = 64;
    else if (a->scheme == "xts-128-sha256") len = 16;
    else {
      ctx.exit_code = FlashReportError(ctx.console, InvalidArgument("unknown key scheme '" + a->scheme + "'"),
                                       "use esp32, esp32-192, xts-128, xts-256 or xts-128-sha256");
      return;
    }
    SecretBytes key;
    for (;;) {
      key = SecretBytes::Random(len);
      // XTS halves must differ (vanishingly unlikely, but checked like every other key).
      if (len == 16 || len == 24) break;
      auto k = key.reveal();
      if (len == 32 && a->scheme.rfind("esp32", 0) == 0) break;
      if (!ConstantTimeEquals(k.subspan(0, len / 2), k.subspan(len / 2))) break;
    }
    AtomicWriteOptions opts;
    opts.mode = 0600;
    opts.overwrite = a->force;
    Status s = WriteFileAtomic(a->out, key.reveal(), opts);
    if (!s.ok()) {
      ctx.exit_code = ReportError(ctx.console, s,
                                  s.code() == StatusCode::kAlreadyExists ? "pass --force to replace it (the old key is lost)" : "");
      return;
    }
    ctx.console.out << "Wrote " << len * 8 << "-bit " << a->scheme << " flash encryption key to " << a->out << "\n";
  });
}

}  // namespace

void RegisterFlashCommands(CLI::App& app, Context& ctx) {
  CLI::App* flash = app.add_subcommand("flash", "ESP32-family flash encryption: espsecure-compatible encrypt/decrypt, "
                                                 "factory images, OTA artefacts");
  flash->require_subcommand(1);
  flash->footer(std::string(R"(
Examples:
  coffer flash keygen --scheme xts-128 key.bin
  coffer flash encrypt --scheme xts --key key.bin --address 0x10000 app.bin -o app.enc
  coffer flash image --chip esp32s3 --partitions partitions.csv --key key.bin \
      --bootloader bootloader.bin --app ota_0=app.bin -o flash.bin
  coffer flash inspect flash.bin --key key.bin --chip esp32s3

)") + kExitCodesHelp);
  AddKeygen(*flash, ctx);
  AddTransform(*flash, ctx, false);
  AddTransform(*flash, ctx, true);
  RegisterFlashImageCommands(*flash, ctx);
}

}  // namespace coffer::cli
