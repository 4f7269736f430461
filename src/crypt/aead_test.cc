#include "coffer/crypt/aead.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include "coffer/base/random.h"

namespace coffer {
namespace {

Bytes Hex(std::string_view h) { return HexDecode(h).value(); }
SecretBytes Key(std::string_view h) { return SecretBytes::CopyOf(Hex(h)); }

constexpr std::string_view kSunscreen =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
    "sunscreen would be it.";

void ExpectKat(AeadAlgorithm alg, std::string_view key, std::string_view nonce, std::string_view ad,
               ByteSpan plaintext, std::string_view ciphertext, std::string_view tag) {
  auto aead = NewAead(alg, Key(key));
  ASSERT_TRUE(aead.ok()) << aead.status().ToString();
  Bytes n = Hex(nonce), a = Hex(ad);
  Bytes out(plaintext.size() + 16);
  ASSERT_TRUE((*aead)->Seal(n, a, plaintext, out).ok());
  EXPECT_EQ(HexEncode(out), std::string(ciphertext) + std::string(tag));
  Bytes back(plaintext.size());
  ASSERT_TRUE((*aead)->Open(n, a, out, back).ok());
  EXPECT_TRUE(std::equal(back.begin(), back.end(), plaintext.begin(), plaintext.end()));
  // Every single-bit change of ciphertext or tag is a kDataLoss, and the output is wiped.
  for (size_t i = 0; i < out.size(); i += 7) {
    Bytes bad = out;
    bad[i] ^= 0x01;
    Bytes o(plaintext.size(), 0xaa);
    Status s = (*aead)->Open(n, a, bad, o);
    EXPECT_EQ(s.code(), StatusCode::kDataLoss) << i;
    for (uint8_t b : o) ASSERT_EQ(b, 0);
  }
  if (!a.empty()) {
    Bytes bad_ad = a;
    bad_ad[0] ^= 0x80;
    EXPECT_EQ((*aead)->Open(n, bad_ad, out, back).code(), StatusCode::kDataLoss);
  }
}

TEST(Aead, ChaCha20Poly1305Rfc8439Section282) {
  ExpectKat(AeadAlgorithm::kChaCha20Poly1305, "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
            "070000004041424344454647", "50515253c0c1c2c3c4c5c6c7", AsBytes(kSunscreen),
            "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b"
            "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
            "3ff4def08e4b7a9de576d26586cec64b6116",
            "1ae10b594f09e26a7e902ecbd0600691");
}

TEST(Aead, XChaCha20Poly1305DraftIrtfCfrgXchachaA31) {
  ExpectKat(AeadAlgorithm::kXChaCha20Poly1305,
            "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f",
            "404142434445464748494a4b4c4d4e4f5051525354555657", "50515253c0c1c2c3c4c5c6c7", AsBytes(kSunscreen),
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39"
            "ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
            "21f9664c97637da9768812f615c68b13b52e",
            "c0875924c1c7987947deafd8780acf49");
}

TEST(Aead, Aes256GcmNistGcmSpecTestCase16) {
  ExpectKat(AeadAlgorithm::kAes256Gcm, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            Hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525"
                "b16aedf5aa0de657ba637b39"),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838"
            "c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b");
}

TEST(Aead, Aes256GcmNistGcmSpecTestCase14) {
  ExpectKat(AeadAlgorithm::kAes256Gcm, std::string(64, '0'), std::string(24, '0'), "", Bytes(16, 0),
            "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919");
}

TEST(Aead, XChaChaMatchesLibsodiumForManySizes) {
  ASSERT_GE(sodium_init(), 0);
  SecretBytes key = SecretBytes::Random(32);
  auto aead = NewAead(AeadAlgorithm::kXChaCha20Poly1305, key);
  ASSERT_TRUE(aead.ok());
  for (size_t len : {0, 1, 15, 16, 63, 64, 255, 256, 257, 4096, 10000}) {
    Bytes pt = RandomBytes(len), ad = RandomBytes(len % 40), nonce = RandomBytes(24);
    Bytes ours(len + 16), theirs(len + 16);
    ASSERT_TRUE((*aead)->Seal(nonce, ad, pt, ours).ok());
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(theirs.data(), &clen, pt.data(), len, ad.data(), ad.size(), nullptr,
                                               nonce.data(), key.reveal().data());
    ASSERT_EQ(clen, len + 16);
    EXPECT_EQ(ours, theirs) << "length " << len;
    // Sealed by libsodium, opened by us (and in place).
    ASSERT_TRUE((*aead)->Open(nonce, ad, theirs, MutableByteSpan(theirs.data(), len)).ok());
    EXPECT_TRUE(std::equal(pt.begin(), pt.end(), theirs.begin()));
  }
}

// The subkey of the last nonce prefix is kept per direction: messages that share a prefix, switch
// between prefixes, or follow a failed open must all still match libsodium exactly.
TEST(Aead, XChaChaSharedAndAlternatingNoncePrefixesMatchLibsodium) {
  ASSERT_GE(sodium_init(), 0);
  SecretBytes key = SecretBytes::Random(32);
  auto aead = NewAead(AeadAlgorithm::kXChaCha20Poly1305, key);
  ASSERT_TRUE(aead.ok());
  Bytes prefix_a = RandomBytes(16), prefix_b = RandomBytes(16);
  for (int i = 0; i < 24; ++i) {
    Bytes nonce = (i % 5 < 3) ? prefix_a : prefix_b;  // runs of one prefix, then the other
    Bytes suffix = RandomBytes(8);
    nonce.insert(nonce.end(), suffix.begin(), suffix.end());
    Bytes pt = RandomBytes(100 + i), ad = RandomBytes(32);
    Bytes ours(pt.size() + 16), theirs(pt.size() + 16);
    ASSERT_TRUE((*aead)->Seal(nonce, ad, pt, ours).ok());
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(theirs.data(), &clen, pt.data(), pt.size(), ad.data(), ad.size(),
                                               nullptr, nonce.data(), key.reveal().data());
    ASSERT_EQ(ours, theirs) << "message " << i;
    if (i % 4 == 1) {  // a tampered message under this prefix first: refused, and nothing sticks
      Bytes bad = theirs;
      bad[3] ^= 1;
      Bytes o(pt.size());
      EXPECT_EQ((*aead)->Open(nonce, ad, bad, o).code(), StatusCode::kDataLoss);
    }
    Bytes back(pt.size());
    ASSERT_TRUE((*aead)->Open(nonce, ad, theirs, back).ok()) << "message " << i;
    EXPECT_EQ(back, pt);
    // The same suffix under the other prefix is another key: it must not open.
    bool under_a = std::equal(prefix_a.begin(), prefix_a.end(), nonce.begin());
    Bytes other = under_a ? prefix_b : prefix_a;
    other.insert(other.end(), suffix.begin(), suffix.end());
    EXPECT_EQ((*aead)->Open(other, ad, theirs, back).code(), StatusCode::kDataLoss);
  }
}

TEST(Aead, WrongSizesAreInvalidArgument) {
  auto aead = NewAead(AeadAlgorithm::kXChaCha20Poly1305, SecretBytes::Random(32));
  ASSERT_TRUE(aead.ok());
  Bytes pt(10), out(26), short_out(20);
  EXPECT_EQ((*aead)->Seal(Bytes(12), {}, pt, out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*aead)->Seal(Bytes(24), {}, pt, short_out).code(), StatusCode::kInvalidArgument);
  Bytes none;
  EXPECT_EQ((*aead)->Open(Bytes(24), {}, Bytes(5), none).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NewAead(AeadAlgorithm::kAes256Gcm, SecretBytes::Random(16)).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Aead, WrongKeyIsDataLoss) {
  auto a = NewAead(AeadAlgorithm::kXChaCha20Poly1305, SecretBytes::Random(32));
  auto b = NewAead(AeadAlgorithm::kXChaCha20Poly1305, SecretBytes::Random(32));
  Bytes nonce = RandomBytes(24), pt = RandomBytes(100), sealed(116), out(100);
  ASSERT_TRUE((*a)->Seal(nonce, {}, pt, sealed).ok());
  EXPECT_EQ((*b)->Open(nonce, {}, sealed, out).code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace coffer
