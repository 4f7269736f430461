// Text encodings rclone crypt uses for encrypted file names: base32 (RFC 4648 "extended hex"
// alphabet, lower case, no padding), base64 (URL-safe alphabet, no padding) and base32768
// (15 bits per UTF-16 code unit, Max-Sum/base32768 "safe" alphabet, UTF-8 output).
// Pure functions, thread-safe. Decoders are strict: they accept only canonical encodings
// (base32 case-insensitively, as rclone does) and return kInvalidArgument otherwise.
#pragma once

#include <string>
#include <string_view>

#include "coffer/base/bytes.h"
#include "coffer/base/status.h"

namespace coffer::rclone {

enum class NameEncoding { kBase32, kBase64, kBase32768 };

std::string Base32Encode(ByteSpan data);
Result<Bytes> Base32Decode(std::string_view text);
std::string Base64UrlEncode(ByteSpan data);
Result<Bytes> Base64UrlDecode(std::string_view text);
// Standard alphabet with padding (rclone's encrypted config files); whitespace is ignored.
Result<Bytes> Base64StdDecode(std::string_view text);
std::string Base64StdEncode(ByteSpan data);
std::string Base32768Encode(ByteSpan data);
Result<Bytes> Base32768Decode(std::string_view utf8_text);

std::string EncodeName(NameEncoding encoding, ByteSpan data);
Result<Bytes> DecodeName(NameEncoding encoding, std::string_view text);
Result<NameEncoding> ParseNameEncoding(std::string_view name);
std::string_view NameEncodingName(NameEncoding encoding);

// UTF-8 helpers shared with the obfuscate name mode.
bool IsValidUtf8(std::string_view text);
// Decodes valid UTF-8 into code points (caller checked validity).
std::u32string Utf8ToCodePoints(std::string_view text);
void AppendUtf8(std::string& out, char32_t cp);

}  // namespace coffer::rclone
