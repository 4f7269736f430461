#include "coffer/flash/int_parse.h"

#include <cctype>
#include <string>

namespace coffer::flash {

Result<int64_t> ParsePythonInt(std::string_view text) {
  auto invalid = [&] { return InvalidArgument("'" + std::string(text) + "' is not a valid integer."); };
  std::string_view s = text;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return invalid();
  int base = 10;
  if (s.size() >= 2 && s[0] == '0') {
    char p = char(std::tolower(static_cast<unsigned char>(s[1])));
    if (p == 'x') base = 16;
    if (p == 'o') base = 8;
    if (p == 'b') base = 2;
    if (base != 10) {
      s.remove_prefix(2);
      // Python allows one underscore right after the prefix: 0x_ff.
      if (!s.empty() && s[0] == '_') s.remove_prefix(1);
    }
  }
  if (s.empty()) return invalid();
  uint64_t value = 0;
  bool prev_underscore = true;  // a leading underscore is invalid
  bool all_zero = true;
  size_t digits = 0;
  for (char c : s) {
    if (c == '_') {
      if (prev_underscore) return invalid();
      prev_underscore = true;
      continue;
    }
    prev_underscore = false;
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
    else return invalid();
    if (d >= base) return invalid();
    if (d != 0) all_zero = false;
    ++digits;
    if (value > (uint64_t(INT64_MAX) - uint64_t(d)) / uint64_t(base)) {
      return InvalidArgument("'" + std::string(text) + "' is out of range.");
    }
    value = value * uint64_t(base) + uint64_t(d);
  }
  if (prev_underscore || digits == 0) return invalid();
  // Python rejects "010" (leading zeros in a non-zero decimal).
  if (base == 10 && s[0] == '0' && !all_zero) return invalid();
  return negative ? -int64_t(value) : int64_t(value);
}

}  // namespace coffer::flash
