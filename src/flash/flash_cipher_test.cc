// Known-answer tests against the espsecure vectors (../shared/vectors/esp), round trips for every
// scheme and key length, and the input checks with espsecure's exact messages.
#include "coffer/flash/flash_cipher.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/sha.h>

#include <filesystem>
#include <fstream>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"
#include "coffer/flash/int_parse.h"

namespace coffer::flash {
namespace {

const std::string kDir = std::string(COFFER_VECTORS_DIR) + "/esp";

nlohmann::json Manifest() {
  std::ifstream f(kDir + "/manifest.json");
  return nlohmann::json::parse(f);
}

std::string Sha256Hex(ByteSpan d) {
  uint8_t h[32];
  SHA256(d.data(), d.size(), h);
  return HexEncode(ByteSpan(h, 32));
}

// Every code path this CPU can run (the generic one always).
std::vector<CipherPath> Paths() {
  std::vector<CipherPath> out;
  for (CipherPath p : {CipherPath::kGeneric, CipherPath::kAesNi, CipherPath::kVaes512}) {
    if (CipherPathAvailable(p)) out.push_back(p);
  }
  return out;
}

Result<Bytes> RunFlash(Scheme scheme, const Bytes& key_raw, uint64_t addr, uint32_t conf, const Bytes& in, bool decrypt,
                       CipherPath path = CipherPath::kAuto) {
  COFFER_ASSIGN_OR_RETURN(FlashKey key, PrepareFlashKey(scheme, SecretBytes::CopyOf(key_raw)));
  COFFER_RETURN_IF_ERROR(CheckOperation(scheme, addr, in.size(), decrypt));
  COFFER_ASSIGN_OR_RETURN(FlashCipher c, FlashCipher::Create(key, conf, path));
  Bytes out(in.size());
  COFFER_RETURN_IF_ERROR(decrypt ? c.Decrypt(addr, in, out) : c.Encrypt(addr, in, out));
  return out;
}

TEST(FlashCipherTest, AllSharedVectorsReproduceAndInvert) {
  if (!std::filesystem::exists(kDir + "/manifest.json")) GTEST_SKIP() << "vectors missing at " << kDir;
  for (CipherPath path : Paths()) {
  SCOPED_TRACE(std::string("path ") + std::string(CipherPathName(path)));
  int checked = 0, errors = 0;
  const nlohmann::json m = Manifest();
  for (const auto& c : m["cases"]) {
    std::string sch = c["scheme"];
    if (sch != "esp32" && sch != "aes_xts") continue;
    Scheme scheme = sch == "esp32" ? Scheme::kEsp32 : Scheme::kXts;
    std::string expect = c["expect"];
    SCOPED_TRACE("case " + std::to_string(int(c["id"])));
    if (expect == "ok") {
      Bytes key = *ReadFileBytes(kDir + "/" + std::string(c["key"]));
      Bytes plain = *ReadFileBytes(kDir + "/" + std::string(c["plaintext"]));
      Bytes cipher = *ReadFileBytes(kDir + "/" + std::string(c["ciphertext"]));
      uint32_t conf = c["flash_crypt_conf"].is_null() ? 0xF : uint32_t(c["flash_crypt_conf"]);
      uint64_t addr = c["address_int"];
      ASSERT_EQ(plain.size() % 16, 0u);  // padded cases are covered by the round trip below
      auto enc = RunFlash(scheme, key, addr, conf, plain, false, path);
      ASSERT_TRUE(enc.ok()) << enc.status().ToString();
      EXPECT_EQ(Sha256Hex(*enc), std::string(c["ciphertext_sha256"]));
      EXPECT_EQ(*enc, cipher);
      auto dec = RunFlash(scheme, key, addr, conf, cipher, true, path);
      ASSERT_TRUE(dec.ok());
      EXPECT_EQ(*dec, plain);
      ++checked;
    } else if (expect == "error" && c.contains("error") && std::string(c["error_kind"]).find("FatalError") != std::string::npos) {
      Bytes key = *ReadFileBytes(kDir + "/" + std::string(c["key"]));
      Bytes in = *ReadFileBytes(kDir + "/" + std::string(c["input"]));
      auto addr = ParsePythonInt(std::string(c["address"]));
      ASSERT_TRUE(addr.ok());
      auto r = RunFlash(scheme, key, uint64_t(*addr), 0xF, in, c["operation"] == "decrypt", path);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().message(), std::string(c["error"]));
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      ++errors;
    }
  }
  EXPECT_GE(checked, 19);
  EXPECT_GE(errors, 6);
  }
}

TEST(FlashCipherTest, PathsReportThemselves) {
  Bytes raw = RandomBytes(32);
  auto key = PrepareFlashKey(Scheme::kEsp32, SecretBytes::CopyOf(raw));
  ASSERT_TRUE(key.ok());
  auto c = FlashCipher::Create(*key, 0xF, CipherPath::kGeneric);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->path(), CipherPath::kGeneric);
  auto a = FlashCipher::Create(*key);
  ASSERT_TRUE(a.ok());
  EXPECT_NE(a->path(), CipherPath::kAuto);
  std::printf("fastest flash cipher path on this CPU: %s\n", std::string(CipherPathName(a->path())).c_str());
  if (!CipherPathAvailable(CipherPath::kVaes512)) {
    auto v = FlashCipher::Create(*key, 0xF, CipherPath::kVaes512);
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.status().code(), StatusCode::kFailedPrecondition);
  }
}

// Every path against the generic one on long runs with unaligned heads and tails, addresses below and
// above 16 MiB (where espsecure's tweak multiply starts to carry) and up to the 4 GiB limit, every
// FLASH_CRYPT_CONF, every key length, both directions.
TEST(FlashCipherTest, AllPathsAgreeByteForByte) {
  struct Case { Scheme s; size_t keylen; };
  const std::vector<CipherPath> paths = Paths();
  if (paths.size() < 2) std::printf("only the generic flash cipher path runs on this CPU\n");
  int compared = 0;
  for (Case c : {Case{Scheme::kEsp32, 32}, Case{Scheme::kEsp32, 24}, Case{Scheme::kXts, 16}, Case{Scheme::kXts, 32},
                 Case{Scheme::kXts, 64}}) {
    Bytes key = RandomBytes(c.keylen);
    for (uint64_t addr : {uint64_t(0), uint64_t(0x10), uint64_t(0x1d0050), uint64_t(0xFFFF00), uint64_t(0x1234560),
                          uint64_t(0x7FFFFFE0), uint64_t(0xFFFFE000)}) {
      for (size_t len : {size_t(16), size_t(48), size_t(256), size_t(272), size_t(2064), size_t(8192 - 16)}) {
        if (addr + len > kFlashAddressLimit) continue;
        for (uint32_t conf : c.s == Scheme::kEsp32 ? std::vector<uint32_t>{0x0, 0x5, 0xF} : std::vector<uint32_t>{0xF}) {
          Bytes plain = RandomBytes(len);
          SCOPED_TRACE("scheme " + std::string(SchemeName(c.s)) + " key " + std::to_string(c.keylen) + " addr " +
                       std::to_string(addr) + " len " + std::to_string(len) + " conf " + std::to_string(conf));
          auto ref = RunFlash(c.s, key, addr, conf, plain, false, CipherPath::kGeneric);
          ASSERT_TRUE(ref.ok()) << ref.status().ToString();
          for (CipherPath p : paths) {
            auto enc = RunFlash(c.s, key, addr, conf, plain, false, p);
            ASSERT_TRUE(enc.ok());
            EXPECT_EQ(*enc, *ref) << CipherPathName(p);
            auto dec = RunFlash(c.s, key, addr, conf, *ref, true, p);
            ASSERT_TRUE(dec.ok());
            EXPECT_EQ(*dec, plain) << CipherPathName(p);
            ++compared;
          }
        }
      }
    }
  }
  EXPECT_GT(compared, 100);
}

// The fast ESP32 paths combine tweak masks bitwise below 16 MiB (no carries there) and carry
// products forward by addition above: check every 32-byte group of the first 16 MiB and a stretch
// past it against the generic path, which applies espsecure's big-integer formula per group.
TEST(FlashCipherTest, Esp32FastPathsMatchEveryGroupAcrossFirst16MiB) {
  constexpr size_t kLen = (16 << 20) + 8192;
  Bytes key_raw = RandomBytes(32);
  Bytes plain = RandomBytes(kLen);
  auto key = PrepareFlashKey(Scheme::kEsp32, SecretBytes::CopyOf(key_raw));
  ASSERT_TRUE(key.ok());
  for (uint32_t conf : {0xFu, 0x9u}) {
    auto ref_c = FlashCipher::Create(*key, conf, CipherPath::kGeneric);
    ASSERT_TRUE(ref_c.ok());
    Bytes ref(kLen);
    ASSERT_TRUE(ref_c->Encrypt(0, plain, ref).ok());
    for (CipherPath p : Paths()) {
      if (p == CipherPath::kGeneric) continue;
      auto c = FlashCipher::Create(*key, conf, p);
      ASSERT_TRUE(c.ok());
      Bytes got(kLen);
      ASSERT_TRUE(c->Encrypt(0, plain, got).ok());
      EXPECT_TRUE(got == ref) << CipherPathName(p) << " conf " << conf;
      Bytes back(kLen);
      ASSERT_TRUE(c->Decrypt(0, got, back).ok());
      EXPECT_TRUE(back == plain) << CipherPathName(p) << " conf " << conf;
    }
  }
}

TEST(FlashCipherTest, XtsKeyWithEqualHalvesIsRefused) {
  Bytes k(64);
  for (int i = 0; i < 32; ++i) k[i] = k[i + 32] = uint8_t(i);
  auto r = PrepareFlashKey(Scheme::kXts, SecretBytes::CopyOf(k));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("identical"), std::string::npos);
  Bytes k2(32, 7);
  EXPECT_FALSE(PrepareFlashKey(Scheme::kXts, SecretBytes::CopyOf(k2)).ok());
}

TEST(FlashCipherTest, WrongKeyLengthsGiveEspsecureMessages) {
  EXPECT_EQ(PrepareFlashKey(Scheme::kEsp32, SecretBytes(20)).status().message(),
            "Key file contains wrong length (20 bytes), 16, 24, 32 or 64 expected.");
  EXPECT_EQ(PrepareFlashKey(Scheme::kEsp32, SecretBytes(0)).status().message(),
            "Key file contains wrong length (0 bytes), 16, 24, 32 or 64 expected.");
  EXPECT_EQ(PrepareFlashKey(Scheme::kEsp32, SecretBytes(64)).status().message(),
            "ESP32 supports only 192 and 256-bit keys. Provided key is 512 bits. Use --aes_xts for other chips.");
  EXPECT_EQ(PrepareFlashKey(Scheme::kXts, SecretBytes(24)).status().message(),
            "AES_XTS supports only 128, 256, and 512-bit keys. Provided key is 192 bits.");
}

TEST(FlashCipherTest, DataPastFourGiBIsRefused) {
  EXPECT_TRUE(CheckOperation(Scheme::kXts, 0xFFFFFF00, 256, false).ok());
  EXPECT_FALSE(CheckOperation(Scheme::kXts, 0xFFFFFF80, 256, false).ok());
  EXPECT_FALSE(CheckOperation(Scheme::kEsp32, 0x100000000ull, 16, false).ok());
  EXPECT_EQ(CheckOperation(Scheme::kEsp32, 0x1001, 64, false).message(),
            "Starting flash address 0x1001 must be a multiple of 16.");
  EXPECT_EQ(CheckOperation(Scheme::kEsp32, 0x1000, 17, true).message(), "Data length is not a multiple of 16 bytes.");
  EXPECT_TRUE(CheckOperation(Scheme::kEsp32, 0x1000, 17, false).ok());
}

TEST(FlashCipherTest, RoundTripEverySchemeAndKeyLengthAndChunking) {
  struct Case { Scheme s; size_t keylen; };
  for (Case c : {Case{Scheme::kEsp32, 32}, Case{Scheme::kEsp32, 24}, Case{Scheme::kXts, 16}, Case{Scheme::kXts, 32},
                 Case{Scheme::kXts, 64}}) {
    for (uint32_t conf : {0u, 0x3u, 0xFu}) {
      Bytes key = RandomBytes(c.keylen);
      Bytes plain = RandomBytes(4096 + 48);
      uint64_t addr = 0x1d0010;
      for (CipherPath path : Paths()) {
      SCOPED_TRACE(std::string("path ") + std::string(CipherPathName(path)));
      auto enc = RunFlash(c.s, key, addr, conf, plain, false, path);
      ASSERT_TRUE(enc.ok()) << enc.status().ToString();
      EXPECT_NE(*enc, plain);
      auto dec = RunFlash(c.s, key, addr, conf, *enc, true, path);
      ASSERT_TRUE(dec.ok());
      EXPECT_EQ(*dec, plain);
      // Processing in odd 16-byte-multiple chunks at their own addresses gives the same bytes.
      auto k = PrepareFlashKey(c.s, SecretBytes::CopyOf(key));
      auto ci = FlashCipher::Create(*k, conf, path);
      Bytes chunked(plain.size());
      for (size_t pos = 0; pos < plain.size();) {
        size_t n = std::min<size_t>(48 + 16 * (pos % 5), plain.size() - pos);
        ASSERT_TRUE(ci->Encrypt(addr + pos, ByteSpan(plain.data() + pos, n), MutableByteSpan(chunked.data() + pos, n)).ok());
        pos += n;
      }
      EXPECT_EQ(chunked, *enc);
      // A different address gives different ciphertext (the tweak binds the address).
      auto other = RunFlash(c.s, key, addr + 0x10000, conf, plain, false);
      if (!(c.s == Scheme::kEsp32 && conf == 0)) EXPECT_NE(*other, *enc);
      }
    }
  }
}

TEST(FlashCipherTest, PythonIntParsing) {
  EXPECT_EQ(*ParsePythonInt("0x1000"), 0x1000);
  EXPECT_EQ(*ParsePythonInt("4096"), 4096);
  EXPECT_EQ(*ParsePythonInt("0o10"), 8);
  EXPECT_EQ(*ParsePythonInt("0b101"), 5);
  EXPECT_EQ(*ParsePythonInt("0x_1_0"), 16);
  EXPECT_EQ(*ParsePythonInt("-0x10"), -16);
  EXPECT_EQ(*ParsePythonInt("00"), 0);
  EXPECT_FALSE(ParsePythonInt("010").ok());
  EXPECT_FALSE(ParsePythonInt("0x").ok());
  EXPECT_FALSE(ParsePythonInt("1__0").ok());
  EXPECT_FALSE(ParsePythonInt("xyz").ok());
  EXPECT_EQ(ParsePythonInt("xyz").status().message(), "'xyz' is not a valid integer.");
}

}  // namespace
}  // namespace coffer::flash
