// End-to-end tests of `coffer flash ...` on the built binary: every espsecure vector (ciphertexts,
// error cases with their exact messages and exit status, no output left behind), keygen, factory
// images against gen_esp32part's partitions.bin and the otadata vector, inspect, OTA variants and
// esp_encrypted_img (vector case 84).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "coffer/base/bytes.h"
#include "coffer/flash/flash_cipher.h"
#include "e2e_util.h"

namespace coffer::e2e {
namespace {

namespace fs = std::filesystem;

std::string EspDir() { return VectorsDir().empty() ? "" : VectorsDir() + "/esp"; }

#define REQUIRE_VECTORS()                                                                  \
  if (EspDir().empty() || !fs::exists(EspDir() + "/manifest.json")) {                       \
    GTEST_SKIP() << "shared vectors missing (../shared/vectors/esp)";                       \
  }

std::string Sha256Hex(const std::string& d) {
  uint8_t h[32];
  SHA256(reinterpret_cast<const uint8_t*>(d.data()), d.size(), h);
  return HexEncode(ByteSpan(h, 32));
}

std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

// Decrypts `len` bytes of `data` stored at flash `addr` with the library (independent of the CLI).
std::string LibDecrypt(flash::Scheme s, const std::string& key_path, uint64_t addr, const std::string& data) {
  std::string k = ReadFile(key_path);
  auto key = flash::PrepareFlashKey(s, SecretBytes::CopyOf(AsBytes(k)));
  auto c = flash::FlashCipher::Create(*key);
  Bytes b(data.begin(), data.end());
  EXPECT_TRUE(c->Decrypt(addr, b, b).ok());
  return std::string(b.begin(), b.end());
}

TEST(FlashE2E, EverySharedVectorCase) {
  REQUIRE_VECTORS();
  TempDir t;
  std::ifstream mf(EspDir() + "/manifest.json");
  nlohmann::json m = nlohmann::json::parse(mf);
  int ok = 0, errors = 0;
  for (const auto& c : m["cases"]) {
    std::string sch = c["scheme"];
    if (sch != "esp32" && sch != "aes_xts") continue;
    SCOPED_TRACE("case " + std::to_string(int(c["id"])));
    std::string expect = c["expect"], op = c.value("operation", "encrypt");
    std::vector<std::string> args = {"flash", op, "--scheme", sch == "esp32" ? "esp32" : "xts"};
    if (!c["key"].is_null()) args.insert(args.end(), {"--key", EspDir() + "/" + std::string(c["key"])});
    std::string cmd = c.value("command", "");
    if (!c["address"].is_null() && cmd.find("--address") != std::string::npos) args.insert(args.end(), {"--address", c["address"]});
    if (sch == "esp32" && !c["flash_crypt_conf"].is_null() && expect == "ok") {
      args.insert(args.end(), {"--flash-crypt-conf", Hex(c["flash_crypt_conf"])});
    }
    std::string in;
    for (const char* k : {"plaintext", "input", "ciphertext"}) {
      if (c.contains(k) && c[k].is_string()) {
        in = EspDir() + "/" + std::string(c[k]);
        break;
      }
    }
    if (op == "decrypt" && c.contains("input") && c["input"].is_string()) in = EspDir() + "/" + std::string(c["input"]);
    if (in.empty() || !fs::exists(in)) in = t / "missing.bin";
    std::string out = t / ("out_" + std::to_string(int(c["id"])));
    args.insert(args.end(), {in, "-o", out});
    RunResult r = RunCoffer(args);
    if (expect == "ok") {
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(Sha256Hex(ReadFile(out)), std::string(c["ciphertext_sha256"]));
      // And back.
      std::vector<std::string> back = args;
      back[1] = "decrypt";
      back[back.size() - 3] = out;
      back.back() = out + ".back";
      ASSERT_EQ(RunCoffer(back).exit_code, 0);
      EXPECT_EQ(ReadFile(out + ".back"), ReadFile(in));
      ++ok;
    } else if (expect == "ok_no_output") {
      EXPECT_EQ(r.exit_code, 0) << r.err;
    } else {
      EXPECT_NE(r.exit_code, 0);
      EXPECT_FALSE(fs::exists(out)) << "an output file was left behind";
      EXPECT_EQ(r.err.rfind("coffer: error: ", 0), 0u) << r.err;
      std::string kind = c.value("error_kind", "");
      if (kind.find("FatalError") != std::string::npos) {
        EXPECT_NE(r.err.find(std::string(c["error"])), std::string::npos) << r.err;
        EXPECT_EQ(r.exit_code, int(c["exit_code"]));
      }
      ++errors;
    }
  }
  EXPECT_GE(ok, 19);
  EXPECT_GE(errors, 10);
}

TEST(FlashE2E, SameInputAndOutputIsRefusedAndInputKept) {
  REQUIRE_VECTORS();
  TempDir t;
  WriteFile(t / "x.bin", std::string(64, 'a'));
  RunResult r = RunCoffer({"flash", "encrypt", "--scheme", "esp32", "--key", EspDir() + "/key_1.bin", "--address", "0x1000",
                           t / "x.bin", "-o", t.path() + "/./x.bin"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("should not be the same!"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFile(t / "x.bin"), std::string(64, 'a'));
}

TEST(FlashE2E, Esp32PadsShortInputWithRandomBytesLikeEspsecure) {
  REQUIRE_VECTORS();
  TempDir t;
  std::string plain = "0123456789abcdefXYZ";  // 19 bytes
  WriteFile(t / "p.bin", plain);
  std::vector<std::string> enc = {"flash", "encrypt", "--scheme", "esp32", "--key", EspDir() + "/key_1.bin",
                                  "--address", "0x10000", t / "p.bin", "-o", t / "c.bin"};
  RunResult r = RunCoffer(enc);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("Padding with 13 bytes"), std::string::npos);
  EXPECT_EQ(ReadFile(t / "c.bin").size(), 32u);
  ASSERT_EQ(RunCoffer({"flash", "decrypt", "--scheme", "esp32", "--key", EspDir() + "/key_1.bin", "--address", "0x10000",
                       t / "c.bin", "-o", t / "d.bin"}).exit_code, 0);
  EXPECT_EQ(ReadFile(t / "d.bin").substr(0, plain.size()), plain);
}

TEST(FlashE2E, NonsenseEspsecureAcceptsIsRefused) {
  REQUIRE_VECTORS();
  TempDir t;
  WriteFile(t / "p.bin", std::string(64, 'p'));
  for (auto extra : std::vector<std::vector<std::string>>{
           {"--scheme", "esp32", "--address=-0x1000"},
           {"--scheme", "esp32", "--address", "0x1000", "--flash-crypt-conf", "0x1f"},
           {"--scheme", "esp32", "--address", "0x100000000"},
           {"--scheme", "xts", "--address", "0xfffffff0"},
           {"--scheme", "esp32", "--address", "banana"}}) {
    std::vector<std::string> args = {"flash", "encrypt", "--key", EspDir() + "/key_1.bin"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), {t / "p.bin", "-o", t / "o.bin"});
    RunResult r = RunCoffer(args);
    EXPECT_EQ(r.exit_code, 2) << extra.back() << ": " << r.err;
    EXPECT_EQ(r.err.rfind("coffer: error: ", 0), 0u) << r.err;
    EXPECT_FALSE(fs::exists(t / "o.bin"));
  }
}

TEST(FlashE2E, KeygenWritesPrivateKeysOfEachLengthAndRefusesOverwrite) {
  TempDir t;
  for (auto [scheme, len] : std::vector<std::pair<std::string, size_t>>{
           {"esp32", 32}, {"xts-128", 32}, {"xts-256", 64}, {"xts-128-sha256", 16}, {"esp32-192", 24}}) {
    std::string p = t / (scheme + ".key");
    RunResult r = RunCoffer({"flash", "keygen", "--scheme", scheme, p});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ReadFile(p).size(), len);
    struct stat st;
    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  std::string before = ReadFile(t / "esp32.key");
  EXPECT_NE(RunCoffer({"flash", "keygen", "--scheme", "esp32", t / "esp32.key"}).exit_code, 0);
  EXPECT_EQ(ReadFile(t / "esp32.key"), before);
  EXPECT_EQ(RunCoffer({"flash", "keygen", "--scheme", "esp32", "--force", t / "esp32.key"}).exit_code, 0);
  EXPECT_NE(ReadFile(t / "esp32.key"), before);
  EXPECT_EQ(RunCoffer({"flash", "keygen", "--scheme", "bogus", t / "b.key"}).exit_code, 2);
}

struct ImageFixture {
  TempDir t;
  std::string app, boot, data;
  ImageFixture() {
    boot = std::string(20000, 'b');
    boot[0] = char(0xE9);
    app = std::string(300000, 'a');
    for (size_t i = 0; i < app.size(); ++i) app[i] = char(i * 7 + 3);
    app[0] = char(0xE9);
    data = std::string(5000, 'd');
    WriteFile(t / "boot.bin", boot);
    WriteFile(t / "app.bin", app);
    WriteFile(t / "data.bin", data);
  }
};

TEST(FlashE2E, FactoryImageHasGenEsp32partTableAndOtadataAtTheirAddresses) {
  REQUIRE_VECTORS();
  for (std::string chip : {"esp32", "esp32s3"}) {
    SCOPED_TRACE(chip);
    ImageFixture f;
    std::string key = EspDir() + (chip == "esp32" ? "/key_1.bin" : "/key_25.bin");
    flash::Scheme s = chip == "esp32" ? flash::Scheme::kEsp32 : flash::Scheme::kXts;
    RunResult r = RunCoffer({"flash", "image", "--chip", chip, "--partitions", EspDir() + "/partitions.csv", "--key", key,
                             "--bootloader", f.t / "boot.bin", "--app", "ota_0=" + f.t / "app.bin", "--data",
                             "storage=" + f.t / "data.bin", "--data", "nvs=" + f.t / "data.bin", "-o", f.t / "flash.bin"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string img = ReadFile(f.t / "flash.bin");
    ASSERT_EQ(img.size(), 4u << 20);
    EXPECT_EQ(LibDecrypt(s, key, 0x8000, img.substr(0x8000, 0xC00)), ReadFile(EspDir() + "/partitions.bin"));
    EXPECT_EQ(LibDecrypt(s, key, 0xd000, img.substr(0xd000, 0x2000)), ReadFile(EspDir() + "/otadata_seq1.bin"));
    uint32_t boot_off = chip == "esp32" ? 0x1000 : 0x0;
    EXPECT_EQ(LibDecrypt(s, key, boot_off, img.substr(boot_off, 20000)), f.boot);
    EXPECT_EQ(LibDecrypt(s, key, 0x10000, img.substr(0x10000, f.app.size())), f.app);
    EXPECT_EQ(LibDecrypt(s, key, 0x390000, img.substr(0x390000, 5008)).substr(0, 5000), f.data);
    EXPECT_EQ(img.substr(0x9000, 5000), f.data);  // nvs is never flash-encrypted
    EXPECT_EQ(img.substr(0x1d0000, 16), std::string(16, '\xff'));  // ota_1 stays erased
    auto m = nlohmann::json::parse(ReadFile(f.t / "flash.bin.json"));
    EXPECT_EQ(m["format"], "coffer-flash-image");
    EXPECT_EQ(m["image_sha256"], Sha256Hex(img));
    EXPECT_EQ(m["boot_slot"], "ota_0");
    RunResult in = RunCoffer({"flash", "inspect", f.t / "flash.bin", "--key", key, "--partitions", EspDir() + "/partitions.csv", "--json"});
    ASSERT_EQ(in.exit_code, 0) << in.err;
    auto rep = nlohmann::json::parse(in.out);
    EXPECT_EQ(rep["boots"], "ota_0");
    EXPECT_EQ(rep["manifest_regions_checked"], 6);
    // Tampering is exit 3; a wrong key exit 4.
    img[0x10000 + 100] ^= 1;
    WriteFile(f.t / "flash.bin", img);
    EXPECT_EQ(RunCoffer({"flash", "inspect", f.t / "flash.bin", "--key", key}).exit_code, 3);
    EXPECT_EQ(RunCoffer({"flash", "inspect", f.t / "flash.bin", "--key", EspDir() + "/key_4.bin", "--no-manifest",
                         "--chip", chip}).exit_code, 4);
  }
}

TEST(FlashE2E, BootSlotSelectsOtadataSequence) {
  REQUIRE_VECTORS();
  ImageFixture f;
  std::string key = EspDir() + "/key_25.bin";
  ASSERT_EQ(RunCoffer({"flash", "image", "--chip", "esp32c3", "--partitions", EspDir() + "/partitions.csv", "--key", key,
                       "--bootloader", f.t / "boot.bin", "--app", "ota_0=" + f.t / "app.bin", "--app",
                       "ota_1=" + f.t / "app.bin", "--boot-slot", "ota_1", "-o", f.t / "flash.bin"}).exit_code, 0);
  std::string od = LibDecrypt(flash::Scheme::kXts, key, 0xd000, ReadFile(f.t / "flash.bin").substr(0xd000, 0x2000));
  EXPECT_EQ(od.substr(0, 4), std::string("\x02\x00\x00\x00", 4));
  EXPECT_EQ(od.substr(28, 4), std::string("\x74\x37\xf6\x55", 4));  // crc rule, seq 2 -> 0x55f63774
}

TEST(FlashE2E, BadFactoryInputsFailClearlyWithoutOutput) {
  REQUIRE_VECTORS();
  ImageFixture f;
  WriteFile(f.t / "huge.bin", std::string(0x1c0000 + 16, 'x'));
  WriteFile(f.t / "overlap.csv", "nvs, data, nvs, 0x9000, 0x6000\nphy, data, phy, 0xa000, 0x1000\nfactory, app, factory, 0x10000, 1M\n");
  WriteFile(f.t / "misaligned.csv", "nvs, data, nvs, 0x9000, 0x6000\nfactory, app, factory, 0x18000, 1M\n");
  WriteFile(f.t / "garbage.csv", "this is, not, a partition table\n");
  WriteFile(f.t / "nvsenc.csv", "nvs, data, nvs, 0x9000, 0x6000, encrypted\nfactory, app, factory, 0x10000, 1M\n");
  std::string key = EspDir() + "/key_1.bin";
  struct Case { std::vector<std::string> args; const char* msg; };
  std::vector<Case> cases = {
      {{"--partitions", EspDir() + "/partitions.csv", "--app", "ota_0=" + f.t / "huge.bin"}, "holds"},
      {{"--partitions", f.t / "overlap.csv", "--app", "factory=" + f.t / "app.bin"}, "overlap"},
      {{"--partitions", f.t / "misaligned.csv", "--app", "factory=" + f.t / "app.bin"}, "not aligned"},
      {{"--partitions", f.t / "garbage.csv", "--app", "factory=" + f.t / "app.bin"}, "line 1"},
      {{"--partitions", f.t / "nvsenc.csv", "--app", "factory=" + f.t / "app.bin"}, "NVS"},
      {{"--partitions", EspDir() + "/partitions.csv", "--app", "nvs=" + f.t / "app.bin"}, "not an app partition"},
      {{"--partitions", EspDir() + "/partitions.csv", "--app", "nope=" + f.t / "app.bin"}, "no partition named"},
      {{"--partitions", EspDir() + "/partitions.csv", "--app", "ota_0=" + f.t / "app.bin", "--boot-slot", "ota_1"}, "no app image"},
      {{"--partitions", EspDir() + "/partitions.csv", "--app", "ota_0=" + f.t / "app.bin", "--key", EspDir() + "/key_52.bin"},
       "ESP32 supports only"},
  };
  for (auto& c : cases) {
    std::vector<std::string> args = {"flash", "image", "--chip", "esp32", "--bootloader", f.t / "boot.bin"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    if (std::find(c.args.begin(), c.args.end(), "--key") == c.args.end()) args.insert(args.end(), {"--key", key});
    args.insert(args.end(), {"-o", f.t / "out.bin"});
    RunResult r = RunCoffer(args);
    EXPECT_NE(r.exit_code, 0) << c.msg;
    EXPECT_NE(r.err.find(c.msg), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(f.t / "out.bin"));
    EXPECT_FALSE(fs::exists(f.t / "out.bin.json"));
  }
  // A 64-byte key on a chip without XTS-256 is refused.
  RunResult r = RunCoffer({"flash", "image", "--chip", "esp32c3", "--key", EspDir() + "/key_40.bin", "--bootloader", f.t / "boot.bin",
                           "--partitions", EspDir() + "/partitions.csv", "--app", "ota_0=" + f.t / "app.bin", "-o", f.t / "out.bin"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(fs::exists(f.t / "out.bin"));
}

TEST(FlashE2E, OtaVariantsOnePerSlotEachDecryptingAtItsOffset) {
  REQUIRE_VECTORS();
  ImageFixture f;
  std::string key = EspDir() + "/key_40.bin";  // 64-byte XTS-AES-256
  RunResult r = RunCoffer({"flash", "ota", "--chip", "esp32s3", "--partitions", EspDir() + "/partitions.csv", "--key", key,
                           f.t / "app.bin", "-o", f.t / "ota"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = nlohmann::json::parse(ReadFile(f.t / "ota/manifest.json"));
  ASSERT_EQ(m["variants"].size(), 2u);
  std::string v0 = ReadFile(f.t / "ota/ota_0.bin"), v1 = ReadFile(f.t / "ota/ota_1.bin");
  EXPECT_NE(v0, v1);
  EXPECT_EQ(LibDecrypt(flash::Scheme::kXts, key, 0x10000, v0).substr(0, f.app.size()), f.app);
  EXPECT_EQ(LibDecrypt(flash::Scheme::kXts, key, 0x1d0000, v1).substr(0, f.app.size()), f.app);
  EXPECT_EQ(m["variants"][1]["sha256"], Sha256Hex(v1));
  WriteFile(f.t / "huge.bin", std::string(0x1c0000 + 1, 'x'));
  r = RunCoffer({"flash", "ota", "--chip", "esp32s3", "--partitions", EspDir() + "/partitions.csv", "--key", key,
                 f.t / "huge.bin", "-o", f.t / "ota2"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_FALSE(fs::exists(f.t / "ota2/ota_0.bin"));
}

TEST(FlashE2E, EncryptedImgDecryptsVectorCase84AndRoundTrips) {
  REQUIRE_VECTORS();
  TempDir t;
  std::string d = EspDir();
  RunResult r = RunCoffer({"flash", "encrypted-img", "--decrypt", "--key", d + "/rsa_priv_key.pem", d + "/cipher_84.bin", "-o", t / "p.bin"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFile(t / "p.bin"), ReadFile(d + "/plain_84.bin"));
  ASSERT_EQ(RunCoffer({"flash", "encrypted-img", "--key", d + "/rsa_pub_key.pem", d + "/plain_84.bin", "-o", t / "e.bin"}).exit_code, 0);
  std::string e = ReadFile(t / "e.bin");
  EXPECT_EQ(e.size(), 307712u);
  EXPECT_EQ(e.substr(0, 4), std::string("\xcf\xb6\x88\x07", 4));
  ASSERT_EQ(RunCoffer({"flash", "encrypted-img", "--decrypt", "--key", d + "/rsa_priv_key.pem", t / "e.bin", "-o", t / "p2.bin"}).exit_code, 0);
  EXPECT_EQ(ReadFile(t / "p2.bin"), ReadFile(d + "/plain_84.bin"));
  e[600] ^= 1;
  WriteFile(t / "e.bin", e);
  r = RunCoffer({"flash", "encrypted-img", "--decrypt", "--key", d + "/rsa_priv_key.pem", t / "e.bin", "-o", t / "p3.bin"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_FALSE(fs::exists(t / "p3.bin"));
}

TEST(FlashE2E, EveryFlashSubcommandHasHelpWithExamplesAndExitCodes) {
  for (std::string sub : {"keygen", "encrypt", "decrypt", "image", "inspect", "ota", "encrypted-img", "partitions"}) {
    RunResult r = RunCoffer({"flash", sub, "--help"});
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Examples"), std::string::npos) << sub;
    EXPECT_NE(r.out.find("Exit status"), std::string::npos) << sub;
  }
}

TEST(FlashE2E, PartitionsCommandMatchesGenEsp32part) {
  REQUIRE_VECTORS();
  TempDir t;
  ASSERT_EQ(RunCoffer({"flash", "partitions", EspDir() + "/partitions.csv", "-o", t / "p.bin", "--flash-size", "4MB"}).exit_code, 0);
  EXPECT_EQ(ReadFile(t / "p.bin"), ReadFile(EspDir() + "/partitions.bin"));
  EXPECT_EQ(RunCoffer({"flash", "partitions", EspDir() + "/partitions.csv", "-o", t / "q.bin", "--flash-size", "2MB"}).exit_code, 2);
  EXPECT_FALSE(fs::exists(t / "q.bin"));
}

}  // namespace
}  // namespace coffer::e2e
