// Integer parsing the way espsecure and gen_esp32part read numbers (Python's int(x, 0)): decimal,
// 0x/0o/0b prefixes, optional sign, underscores between digits, no leading zeros in decimal.
// Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <string_view>

#include "coffer/base/status.h"

namespace coffer::flash {

// Returns the value, or kInvalidArgument "'<text>' is not a valid integer." Values beyond
// +-(2^63-1) are refused as out of range.
Result<int64_t> ParsePythonInt(std::string_view text);

}  // namespace coffer::flash
