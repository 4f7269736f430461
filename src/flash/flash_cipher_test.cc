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

Result<Bytes> RunFlash(Scheme scheme, const Bytes& key_raw, uint64_t addr, uint32_t conf, const Bytes& in, bool decrypt) {
  COFFER_ASSIGN_OR_RETURN(FlashKey key, PrepareFlashKey(scheme, SecretBytes::CopyOf(key_raw)));
  COFFER_RETURN_IF_ERROR(CheckOperation(scheme, addr, in.size(), decrypt));
  COFFER_ASSIGN_OR_RETURN(FlashCipher c, FlashCipher::Create(key, conf));
  Bytes out(in.size());
  COFFER_RETURN_IF_ERROR(decrypt ? c.Decrypt(addr, in, out) : c.Encrypt(addr, in, out));
  return out;
}

TEST(FlashCipherTest, AllSharedVectorsReproduceAndInvert) {
  if (!std::filesystem::exists(kDir + "/manifest.json")) GTEST_SKIP() << "vectors missing at " << kDir;
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
      auto enc = RunFlash(scheme, key, addr, conf, plain, false);
      ASSERT_TRUE(enc.ok()) << enc.status().ToString();
      EXPECT_EQ(Sha256Hex(*enc), std::string(c["ciphertext_sha256"]));
      EXPECT_EQ(*enc, cipher);
      auto dec = RunFlash(scheme, key, addr, conf, cipher, true);
      ASSERT_TRUE(dec.ok());
      EXPECT_EQ(*dec, plain);
      ++checked;
    } else if (expect == "error" && c.contains("error") && std::string(c["error_kind"]).find("FatalError") != std::string::npos) {
      Bytes key = *ReadFileBytes(kDir + "/" + std::string(c["key"]));
      Bytes in = *ReadFileBytes(kDir + "/" + std::string(c["input"]));
      auto addr = ParsePythonInt(std::string(c["address"]));
      ASSERT_TRUE(addr.ok());
      auto r = RunFlash(scheme, key, uint64_t(*addr), 0xF, in, c["operation"] == "decrypt");
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.status().message(), std::string(c["error"]));
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
      ++errors;
    }
  }
  EXPECT_GE(checked, 19);
  EXPECT_GE(errors, 6);
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
      auto enc = RunFlash(c.s, key, addr, conf, plain, false);
      ASSERT_TRUE(enc.ok()) << enc.status().ToString();
      EXPECT_NE(*enc, plain);
      auto dec = RunFlash(c.s, key, addr, conf, *enc, true);
      ASSERT_TRUE(dec.ok());
      EXPECT_EQ(*dec, plain);
      // Processing in odd 16-byte-multiple chunks at their own addresses gives the same bytes.
      auto k = PrepareFlashKey(c.s, SecretBytes::CopyOf(key));
      auto ci = FlashCipher::Create(*k, conf);
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
