// Known-answer and round-trip tests of the rclone crypt format against the shared vectors
// (../shared/vectors/rclone, written by rclone 1.60.1) and rclone's own test values.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "coffer/base/bytes.h"
#include "coffer/base/file_util.h"
#include "coffer/rclone/config.h"
#include "coffer/rclone/encoding.h"
#include "coffer/rclone/file_cipher.h"
#include "coffer/rclone/name_cipher.h"

namespace coffer::rclone {
namespace {

std::string VectorDir() {
  std::string d = std::string(COFFER_VECTORS_DIR) + "/rclone";
  return std::filesystem::exists(d + "/manifest.json") ? d : "";
}

nlohmann::json Manifest() {
  std::ifstream f(VectorDir() + "/manifest.json");
  return nlohmann::json::parse(f);
}

RcloneKeys ZeroKeys() { return std::move(DeriveKeys("", "").value()); }

TEST(RcloneEncoding, Base32MatchesRfc4648HexLowercaseUnpadded) {
  EXPECT_EQ(Base32Encode(ToBytes("")), "");
  EXPECT_EQ(Base32Encode(ToBytes("f")), "co");
  EXPECT_EQ(Base32Encode(ToBytes("foobar")), "cpnmuoj1e8");
  EXPECT_EQ(AsStringView(*Base32Decode("CPNMUOJ1E8")), "foobar");  // rclone accepts upper case
  EXPECT_FALSE(Base32Decode("cpnmuoj1e8=").ok());
  EXPECT_FALSE(Base32Decode("cpnmuoj1e9").ok());  // non-canonical trailing bits
  EXPECT_FALSE(Base32Decode("c").ok());
  EXPECT_FALSE(Base32Decode("cw").ok());
}

TEST(RcloneEncoding, Base64UrlUnpadded) {
  EXPECT_EQ(Base64UrlEncode(ToBytes("\xfb\xff")), "-_8");
  EXPECT_EQ(AsStringView(*Base64UrlDecode("-_8")), "\xfb\xff");
  EXPECT_FALSE(Base64UrlDecode("-_8=").ok());
  EXPECT_FALSE(Base64UrlDecode("+/8").ok());
}

TEST(RcloneEncoding, Base32768RoundTripsEveryLength) {
  for (size_t n = 0; n < 80; ++n) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = uint8_t(i * 37 + n);
    std::string e = Base32768Encode(b);
    EXPECT_TRUE(IsValidUtf8(e));
    auto d = Base32768Decode(e);
    ASSERT_TRUE(d.ok()) << n << " " << d.status().message();
    EXPECT_EQ(*d, b) << n;
  }
  EXPECT_FALSE(Base32768Decode("abc").ok());
}

TEST(RcloneEncoding, Base32768KnownAnswer) {
  // 16 zero bytes under Max-Sum/base32768's safe alphabet.
  Bytes zero(16, 0);
  std::string e = Base32768Encode(zero);
  auto cps = Utf8ToCodePoints(e);
  ASSERT_EQ(cps.size(), 9u);  // ceil(128 / 15)
  EXPECT_EQ(cps[0], char32_t(0x04A0));  // first 15-bit group 0 -> first encode_a code point
}

TEST(RcloneKeys, MatchRcloneDerivedKeys) {
  if (VectorDir().empty()) GTEST_SKIP() << "shared vectors missing: " << COFFER_VECTORS_DIR;
  auto m = Manifest();
  for (auto& [name, r] : m["remotes"].items()) {
    std::string pw = m["passwords"][r["password_id"].get<std::string>()];
    std::string pw2 = r["password2_id"].is_null() ? "" : m["passwords"][r["password2_id"].get<std::string>()].get<std::string>();
    auto keys = DeriveKeys(pw, pw2);
    ASSERT_TRUE(keys.ok());
    EXPECT_EQ(HexEncode(keys->data_key.reveal()), r["derived_keys_hex"]["dataKey"]) << name;
    EXPECT_EQ(HexEncode(keys->name_key.reveal()), r["derived_keys_hex"]["nameKey"]) << name;
    EXPECT_EQ(HexEncode(keys->name_tweak.reveal()), r["derived_keys_hex"]["nameTweak"]) << name;
  }
}

TEST(RcloneNames, StandardNamesMatchRcloneTree) {
  if (VectorDir().empty()) GTEST_SKIP() << "shared vectors missing";
  auto m = Manifest();
  auto r = m["remotes"]["std_p1"];
  auto keys = DeriveKeys(m["passwords"]["P1"].get<std::string>(), "");
  NameCipher names(*keys, NameOptions{});
  size_t checked = 0;
  for (auto& f : r["files"]) {
    std::string enc = f["encrypted"].get<std::string>().substr(std::string("enc/std_p1/").size());
    EXPECT_EQ(names.EncryptFileName(f["plain"].get<std::string>()), enc);
    auto dec = names.DecryptFileName(enc);
    ASSERT_TRUE(dec.ok()) << enc;
    EXPECT_EQ(*dec, f["plain"].get<std::string>());
    ++checked;
  }
  for (auto& d : r["dirs"]) {
    std::string enc = d["encrypted"].get<std::string>().substr(std::string("enc/std_p1/").size());
    EXPECT_EQ(names.EncryptDirName(d["plain"].get<std::string>()), enc);
  }
  EXPECT_GT(checked, 10u);
}

TEST(RcloneNames, ObfuscateRoundTripsAndQuotes) {
  auto keys = DeriveKeys("pw", "");
  NameCipher names(*keys, NameOptions{NameMode::kObfuscate});
  for (std::string s : {"hello.txt", "!bang!", "caf\xc3\xa9 \xc2\xbd", "\xe6\x97\xa5\xe6\x9c\xac", "0123456789", "a b-c_d"}) {
    std::string e = names.ObfuscateSegment(s);
    auto d = names.DeobfuscateSegment(e);
    ASSERT_TRUE(d.ok()) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(names.ObfuscateSegment("\xff"), "!.\xff");
  EXPECT_FALSE(names.DeobfuscateSegment("nodot").ok());
}

TEST(RcloneNames, ZeroKeyStandardVectorFromRcloneTests) {
  // rclone's cipher_test.go: empty password, standard, base32: "1" -> "p0e52nreeaj0a5ea7s64m4j72s".
  NameCipher names(ZeroKeys(), NameOptions{});
  EXPECT_EQ(names.EncryptSegment("1"), "p0e52nreeaj0a5ea7s64m4j72s");
  EXPECT_EQ(names.EncryptFileName("1/12/123"), "p0e52nreeaj0a5ea7s64m4j72s/l42g6771hnv3an9cgc8cr2n1ng/qgm4avr35m5loi1th53ato71v0");
}

TEST(RcloneNames, ZeroKeyVectorsForEveryEncodingAndObfuscate) {
  // rclone's cipher_test.go values (empty password = all-zero keys).
  NameCipher b64(ZeroKeys(), NameOptions{NameMode::kStandard, NameEncoding::kBase64});
  EXPECT_EQ(b64.EncryptSegment("1"), "yBxRX25ypgUVyj8MSxJnFw");
  EXPECT_EQ(b64.EncryptSegment("12345"), "3FP_GHoeBJdq0yLgaED8IQ");
  NameCipher b32768(ZeroKeys(), NameOptions{NameMode::kStandard, NameEncoding::kBase32768});
  EXPECT_EQ(b32768.EncryptSegment("1"), "\u8a6e\u3a97\u942e\u50c0\u4f0e\u4f5c\u3ed6\u38a7\u2a9f");
  EXPECT_EQ(*b32768.DecryptSegment(b32768.EncryptSegment("1234567890")), "1234567890");
  EXPECT_EQ(b32768.EncryptSegment("1234567890"), "\u8a08\u5b81\u6195\u5075\u5322\u76ab\u255b\u7eba\ua31f");
  NameCipher obf(ZeroKeys(), NameOptions{NameMode::kObfuscate});
  EXPECT_EQ(obf.EncryptFileName("1/12/123/!hello"), "49.6/99.23/150.890/53.!!lipps");
  EXPECT_EQ(obf.EncryptFileName("\u00a1"), "161.\u00e4");
  EXPECT_EQ(obf.EncryptFileName("\u03a0"), "160.\u03c2");
  EXPECT_EQ(*obf.DecryptFileName("49.6/99.23/150.890/53.!!lipps"), "1/12/123/!hello");
  EXPECT_EQ(obf.EncryptFileName("1/12/123/hello-v2001-02-03-040506-123.txt"),
            "49.6/99.23/150.890/162.uryyB-v2001-02-03-040506-123.GKG");
  EXPECT_EQ(*obf.DecryptFileName("49.6/99.23/150.890/162.uryyB-v2001-02-03-040506-123.GKG"),
            "1/12/123/hello-v2001-02-03-040506-123.txt");
  NameCipher obf_nodir(ZeroKeys(), NameOptions{NameMode::kObfuscate, NameEncoding::kBase32, false});
  EXPECT_EQ(obf_nodir.EncryptFileName("1/12/123/!hello"), "1/12/123/53.!!lipps");
  NameCipher off(ZeroKeys(), NameOptions{NameMode::kOff});
  EXPECT_EQ(off.EncryptFileName("1/12/123"), "1/12/123.bin");
  EXPECT_FALSE(off.DecryptFileName("1/12/123").ok());
  EXPECT_FALSE(off.DecryptFileName(".bin").ok());
}

TEST(RcloneNames, LongestNamesFitEachEncoding) {
  auto keys = DeriveKeys("pw", "");
  for (auto enc : {NameEncoding::kBase32, NameEncoding::kBase64, NameEncoding::kBase32768}) {
    NameCipher names(*keys, NameOptions{NameMode::kStandard, enc});
    size_t max = names.MaxPlainSegmentBytes();
    std::string longest(max, 'x');
    std::string e = names.EncryptSegment(longest);
    EXPECT_LE(e.size(), 255u) << NameEncodingName(enc);
    EXPECT_EQ(*names.DecryptSegment(e), longest);
    EXPECT_GT(names.EncryptSegment(std::string(max + 16, 'x')).size(), 255u);
  }
}

TEST(RcloneNames, TamperedNameIsRejected) {
  auto keys = DeriveKeys("pw", "");
  NameCipher names(*keys, NameOptions{});
  std::string e = names.EncryptSegment("report.pdf");
  e[3] = e[3] == 'a' ? 'b' : 'a';
  auto d = names.DecryptSegment(e);
  // EME scrambles the whole block: the padding check fails (or, rarely, yields other bytes).
  EXPECT_TRUE(!d.ok() || *d != "report.pdf");
}

TEST(RcloneFile, SizesMatchFormat) {
  EXPECT_EQ(EncryptedSize(0), 32u);
  EXPECT_EQ(EncryptedSize(1), 49u);
  EXPECT_EQ(EncryptedSize(65536), 32u + 65552u);
  EXPECT_EQ(EncryptedSize(65537), 32u + 65552u + 17u);
  EXPECT_EQ(*DecryptedSize(49), 1u);
  EXPECT_FALSE(DecryptedSize(31).ok());
  EXPECT_FALSE(DecryptedSize(48).ok());
}

TEST(RcloneFile, ChunkNonceCarries) {
  FileNonce n{};
  n[0] = 0xff;
  auto c = ChunkNonce(n, 1);
  EXPECT_EQ(c[0], 0);
  EXPECT_EQ(c[1], 1);
  FileNonce all;
  all.fill(0xff);
  auto w = ChunkNonce(all, 1);
  for (auto b : w) EXPECT_EQ(b, 0);
}

TEST(RcloneFile, FixedNonceFilesAreByteExact) {
  if (VectorDir().empty()) GTEST_SKIP() << "shared vectors missing";
  auto m = Manifest();
  auto r = m["remotes"]["std_p2salt"];
  auto keys = DeriveKeys(m["passwords"]["P2"].get<std::string>(), m["passwords"]["S2"].get<std::string>());
  FileCipher files(*keys);
  NameCipher names(*keys, NameOptions{});
  size_t n = 0;
  for (auto& e : m["kat_fixed_nonce"]["entries"]) {
    auto plain = ReadFileBytes(VectorDir() + "/plain/" + e["plain"].get<std::string>());
    ASSERT_TRUE(plain.ok());
    auto nonce_bytes = *HexDecode(e["nonce_hex"].get<std::string>());
    FileNonce nonce;
    std::copy(nonce_bytes.begin(), nonce_bytes.end(), nonce.begin());
    Bytes enc = files.EncryptBuffer(*plain, nonce);
    auto expected = ReadFileBytes(VectorDir() + "/" + e["encrypted"].get<std::string>());
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(enc, *expected) << e["plain"];
    EXPECT_EQ(VectorDir() + "/kat_fixed_nonce/std_p2salt/" + names.EncryptFileName(e["plain"].get<std::string>()),
              VectorDir() + "/" + e["encrypted"].get<std::string>());
    auto dec = files.DecryptBuffer(*expected, "x");
    ASSERT_TRUE(dec.ok());
    EXPECT_EQ(*dec, *plain);
    ++n;
  }
  EXPECT_GT(n, 5u);
}

TEST(RcloneFile, TamperIsDataLoss) {
  auto keys = DeriveKeys("pw", "");
  FileCipher files(*keys);
  Bytes plain(3 * kChunkDataSize + 10, 7);
  Bytes enc = files.EncryptBuffer(plain, RandomFileNonce());
  Bytes flip = enc;
  flip[100] ^= 1;
  EXPECT_EQ(files.DecryptBuffer(flip, "f").status().code(), StatusCode::kDataLoss);
  Bytes cut(enc.begin(), enc.end() - 5);
  EXPECT_EQ(files.DecryptBuffer(cut, "f").status().code(), StatusCode::kDataLoss);
  Bytes swapped = enc;
  std::swap_ranges(swapped.begin() + 32, swapped.begin() + 32 + kChunkSize, swapped.begin() + 32 + kChunkSize);
  EXPECT_EQ(files.DecryptBuffer(swapped, "f").status().code(), StatusCode::kDataLoss);
  Bytes magic = enc;
  magic[0] = 'X';
  EXPECT_EQ(files.DecryptBuffer(magic, "f").status().code(), StatusCode::kDataLoss);
  auto other = DeriveKeys("other", "");
  FileCipher wrong(*other);
  EXPECT_EQ(wrong.DecryptBuffer(enc, "f").status().code(), StatusCode::kDataLoss);
}

TEST(RcloneConfig, ObscuredPasswordsReveal) {
  if (VectorDir().empty()) GTEST_SKIP() << "shared vectors missing";
  auto m = Manifest();
  auto r = m["remotes"]["std_p2salt"];
  EXPECT_EQ(RevealObscured(r["password_obscured"].get<std::string>())->reveal_string(), m["passwords"]["P2"].get<std::string>());
  EXPECT_EQ(RevealObscured(r["password2_obscured"].get<std::string>())->reveal_string(), m["passwords"]["S2"].get<std::string>());
  EXPECT_EQ(RevealObscured(Obscure("hunter2"))->reveal_string(), "hunter2");
  EXPECT_FALSE(RevealObscured("short").ok());
}

TEST(RcloneConfig, SecureStoreEncryptedConfigDecrypts) {
  std::string dir = std::string(COFFER_VECTORS_DIR) + "/secure-store";
  if (!std::filesystem::exists(dir + "/keys/encrypt_example.conf")) GTEST_SKIP() << "secure-store vectors missing";
  auto text = ReadFileBytes(dir + "/keys/encrypt_example.conf");
  ASSERT_TRUE(IsEncryptedConfig(AsStringView(*text)));
  EXPECT_EQ(DecryptConfig(AsStringView(*text), "wrong").status().code(), StatusCode::kUnauthenticated);
  auto plain = DecryptConfig(AsStringView(*text), "my-password-eQ4al9jgPxlWDwxL6uiGdznhhVJzaVQPnkNRjwvwoTvqWpeBJJJZ");
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  auto sections = ParseConfig(plain->reveal_string());
  ASSERT_TRUE(sections.ok());
  ASSERT_TRUE(sections->count("encrypted_storage"));
  auto remote = CryptRemoteFromSection(sections->at("encrypted_storage"), "encrypted_storage");
  ASSERT_TRUE(remote.ok()) << remote.status().message();
  auto keys = DeriveKeys(remote->password.reveal_string(), remote->password2.reveal_string());
  NameCipher names(*keys, remote->names);
  FileCipher files(*keys);
  for (std::string n : {"test1", "test2", "test3"}) {
    std::string enc = dir + "/encrypted_example/" + names.EncryptFileName(n);
    auto bytes = ReadFileBytes(enc);
    ASSERT_TRUE(bytes.ok()) << enc;
    auto dec = files.DecryptBuffer(*bytes, n);
    ASSERT_TRUE(dec.ok()) << dec.status().message();
    EXPECT_EQ(*dec, *ReadFileBytes(dir + "/source/" + n));
  }
}

TEST(RcloneConfig, EncryptConfigRoundTrips) {
  std::string c = EncryptConfig("[x]\ntype = crypt\n", "pw");
  EXPECT_EQ(DecryptConfig(c, "pw")->reveal_string(), "[x]\ntype = crypt\n");
}

}  // namespace
}  // namespace coffer::rclone
