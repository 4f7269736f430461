// gen_esp32part.py (ESP-IDF v5.5.5) semantics, re-implemented: see partition_table.h and
// docs/format/esp_flash.md. Messages follow gen_esp32part's where it has one; coffer adds checks for
// what it would silently truncate or crash on (names over 16 bytes, values beyond 32 bits).
#include "coffer/flash/partition_table.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <set>

#include "coffer/flash/int_parse.h"

namespace coffer::flash {
namespace {

std::string Hex(uint64_t v) {
  char b[24];
  snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

// Keyword order matters only for messages; std::map sorts, gen_esp32part lists in insertion order.
const std::vector<std::pair<std::string, uint8_t>>* SubtypeKeywords(uint8_t type) {
  static const std::vector<std::pair<std::string, uint8_t>> boot = {{"primary", 0}, {"ota", 1}, {"recovery", 2}};
  static const std::vector<std::pair<std::string, uint8_t>> table = {{"primary", 0}, {"ota", 1}};
  static const std::vector<std::pair<std::string, uint8_t>> app = [] {
    std::vector<std::pair<std::string, uint8_t>> v = {{"factory", 0x00}, {"test", 0x20}};
    for (int i = 0; i < 16; ++i) v.push_back({"ota_" + std::to_string(i), uint8_t(0x10 + i)});
    for (int i = 0; i < 2; ++i) v.push_back({"tee_" + std::to_string(i), uint8_t(0x30 + i)});
    return v;
  }();
  static const std::vector<std::pair<std::string, uint8_t>> data = {
      {"ota", 0x00},      {"phy", 0x01},      {"nvs", 0x02}, {"coredump", 0x03}, {"nvs_keys", 0x04},
      {"efuse", 0x05},    {"undefined", 0x06}, {"esphttpd", 0x80}, {"fat", 0x81}, {"spiffs", 0x82},
      {"littlefs", 0x83}, {"tee_ota", 0x90}};
  switch (type) {
    case kPartTypeBootloader: return &boot;
    case kPartTypePartitionTable: return &table;
    case kPartTypeApp: return &app;
    case kPartTypeData: return &data;
    default: return nullptr;
  }
}

std::string Lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// gen_esp32part's parse_int: k/m suffixes (case-insensitive), int(x, 0), then keywords.
Result<int64_t> ParseField(std::string_view v, const std::vector<std::pair<std::string, uint8_t>>* keywords) {
  std::string low = Lower(v);
  if (!low.empty() && (low.back() == 'k' || low.back() == 'm')) {
    int64_t mult = low.back() == 'k' ? 1024 : 1024 * 1024;
    auto inner = ParseField(v.substr(0, v.size() - 1), keywords);
    if (inner.ok()) {
      if (*inner > INT64_MAX / mult || *inner < -(INT64_MAX / mult)) return InvalidArgument("Value '" + std::string(v) + "' is out of range");
      return *inner * mult;
    }
    // Fall through: a keyword might end in k or m.
  }
  auto n = ParsePythonInt(v);
  if (n.ok()) return n;
  if (!keywords || keywords->empty()) return InvalidArgument("Invalid field value " + std::string(v));
  for (const auto& [k, val] : *keywords) {
    if (k == low) return int64_t(val);
  }
  std::string known;
  for (const auto& [k, val] : *keywords) known += (known.empty() ? "" : ", ") + k;
  return InvalidArgument("Value '" + std::string(v) + "' is not valid. Known keywords: " + known);
}

std::vector<std::pair<std::string, uint8_t>> TypeKeywordList() {
  return {{"bootloader", 2}, {"partition_table", 3}, {"app", 0}, {"data", 1}};
}

// Python's str.strip() whitespace.
std::string_view Strip(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  std::string cur;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\x1c' || c == '\x1d' || c == '\x1e') {
      lines.push_back(cur);
      cur.clear();
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// os.path.expandvars: $name and ${name}; unknown variables stay as written.
std::string ExpandVars(const std::string& line, const PartitionTableOptions& o) {
  if (line.find('$') == std::string::npos) return line;
  std::string out;
  for (size_t i = 0; i < line.size();) {
    if (line[i] != '$') {
      out.push_back(line[i++]);
      continue;
    }
    size_t j = i + 1;
    std::string name;
    size_t end;
    if (j < line.size() && line[j] == '{') {
      size_t close = line.find('}', j + 1);
      if (close == std::string::npos) {
        out.push_back(line[i++]);
        continue;
      }
      name = line.substr(j + 1, close - j - 1);
      end = close + 1;
    } else {
      while (j < line.size() && IsWordChar(line[j])) ++j;
      name = line.substr(i + 1, j - i - 1);
      end = j;
    }
    std::optional<std::string> val;
    if (!name.empty() && o.env) val = o.env(name);
    if (val) {
      out += *val;
    } else {
      out += line.substr(i, end - i);
    }
    i = end;
  }
  return out;
}

std::string TypeDecimal(uint8_t v) { return std::to_string(v); }

}  // namespace

bool Partition::flash_encrypted() const {
  if (type == kPartTypeApp || type == kPartTypeBootloader || type == kPartTypePartitionTable) return true;
  if (type == kPartTypeData &&
      (subtype == kSubtypeDataOta || subtype == kSubtypeDataTeeOta || subtype == kSubtypeDataNvsKeys)) {
    return true;
  }
  return encrypted;
}

std::string Partition::TypeName() const {
  for (const auto& [k, v] : TypeKeywordList()) {
    if (v == type) return k;
  }
  return Hex(type);
}

std::string Partition::SubtypeName() const {
  if (auto* kw = SubtypeKeywords(type)) {
    for (const auto& [k, v] : *kw) {
      if (v == subtype) return k;
    }
  }
  return Hex(subtype);
}

Result<PartitionTable> PartitionTable::FromCsv(std::string_view csv, const PartitionTableOptions& options) {
  if (csv.size() >= 3 && (uint8_t)csv[0] == 0xEF && (uint8_t)csv[1] == 0xBB && (uint8_t)csv[2] == 0xBF) {
    csv.remove_prefix(3);  // UTF-8 BOM
  }
  if (csv.size() >= 2 && (uint8_t)csv[0] == 0xAA && (uint8_t)csv[1] == 0x50) {
    return InvalidArgument("this is a binary partition table, not a CSV");
  }
  if (csv.find('\0') != std::string_view::npos) {
    return InvalidArgument("partition CSV contains NUL bytes (is it a binary file?)");
  }
  PartitionTable table;
  table.table_offset_ = options.table_offset;
  const uint64_t table_offset = options.table_offset;
  std::vector<Partition>& res = table.parts_;
  std::vector<bool> offset_given, size_negative;
  std::vector<int64_t> raw_size;
  auto lines = SplitLines(csv);
  for (size_t ln = 0; ln < lines.size(); ++ln) {
    const int line_no = int(ln + 1);
    auto at = [&](const std::string& msg) { return InvalidArgument("Error at line " + std::to_string(line_no) + ": " + msg); };
    std::string expanded = ExpandVars(lines[ln], options);
    {
      // gen_esp32part: an unknown variable at the start of the line is an error.
      std::string_view e = expanded;
      if (!e.empty() && e[0] == '$' && e.size() > 1 && (std::isalpha((unsigned char)e[1]) || e[1] == '_')) {
        size_t j = 1;
        while (j < e.size() && IsWordChar(e[j])) ++j;
        return InvalidArgument("unknown variable '" + std::string(e.substr(1, j - 1)) + "'");
      }
    }
    std::string_view line = Strip(expanded);
    if (line.empty() || line[0] == '#') continue;
    std::string withdefaults = std::string(line) + ",,,,";
    std::vector<std::string> f;
    size_t start = 0;
    for (;;) {
      size_t comma = withdefaults.find(',', start);
      f.emplace_back(Strip(std::string_view(withdefaults).substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    while (f.size() < 6) f.emplace_back();
    Partition p;
    p.line = line_no;
    p.name = f[0];
    if (p.name.empty()) return at("partition name can't be empty");
    if (p.name.size() > 16) {
      return at("partition name '" + p.name + "' is " + std::to_string(p.name.size()) +
                " bytes; the binary table holds at most 16 (gen_esp32part would silently truncate it)");
    }
    if (f[1].empty()) return at("Field 'type' can't be left empty.");
    auto tkw = TypeKeywordList();
    auto type = ParseField(f[1], &tkw);
    if (!type.ok()) return at(type.status().message());
    if (*type < 0 || *type > 0xFE) return at("type " + f[1] + " is out of range (0x00..0xfe)");
    p.type = uint8_t(*type);
    if (f[2].empty()) {
      if (p.type == kPartTypeApp) return at("App partition cannot have an empty subtype");
      p.subtype = 0x06;
    } else {
      auto st = ParseField(f[2], SubtypeKeywords(p.type));
      if (!st.ok()) return at(st.status().message());
      if (*st < 0 || *st > 0xFF) return at("subtype " + f[2] + " is out of range (0x00..0xff)");
      p.subtype = uint8_t(*st);
    }
    std::optional<int64_t> off, size;
    if (p.type == kPartTypeBootloader && (p.subtype == 0 || p.subtype == 2)) {
      if (p.subtype == 2) return at("Recovery bootloader offset is not defined. Please use --recovery-bootloader-offset");
      if (!options.primary_bootloader_offset) {
        return at("Primary bootloader offset is not defined. Please use --primary-bootloader-offset");
      }
      off = *options.primary_bootloader_offset;
    } else if (p.type == kPartTypePartitionTable && p.subtype == 0) {
      off = table_offset;
    } else if (!f[3].empty()) {
      auto o = ParseField(f[3], nullptr);
      if (!o.ok()) return at(o.status().message());
      off = *o;
    }
    if (p.type == kPartTypeBootloader) {
      if (!options.primary_bootloader_offset) {
        return at("Primary bootloader offset is not defined. Please use --primary-bootloader-offset");
      }
      size = int64_t(table_offset) - int64_t(*options.primary_bootloader_offset);
    } else if (p.type == kPartTypePartitionTable) {
      size = kPartitionTableSize;
    } else if (!f[4].empty()) {
      auto s = ParseField(f[4], nullptr);
      if (!s.ok()) return at(s.status().message());
      size = *s;
    }
    if (!size) return at("Size field can't be empty");
    if (off && (*off < 0 || *off > 0xFFFFFFFFll)) return at("offset " + f[3] + " is outside the 32-bit flash address space");
    size_t colon_start = 0;
    std::string flags = f[5];
    for (;;) {
      size_t colon = flags.find(':', colon_start);
      std::string flag = flags.substr(colon_start, colon == std::string::npos ? std::string::npos : colon - colon_start);
      if (flag == "encrypted") p.encrypted = true;
      else if (flag == "readonly") p.readonly = true;
      else if (!flag.empty()) return at("CSV flag column contains unknown flag '" + flag + "'");
      if (colon == std::string::npos) break;
      colon_start = colon + 1;
    }
    p.offset = off ? uint32_t(*off) : 0;
    offset_given.push_back(off.has_value());
    raw_size.push_back(*size);
    res.push_back(std::move(p));
  }

  // Fix up missing offsets and negative sizes (negative size = "up to this end address").
  uint64_t last_end = table_offset + kPartitionTableSize;
  for (size_t i = 0; i < res.size(); ++i) {
    Partition& e = res[i];
    bool primary_boot = e.type == kPartTypeBootloader && e.subtype == 0;
    bool primary_table = e.type == kPartTypePartitionTable && e.subtype == 0;
    if (primary_boot || primary_table) {
      e.size = uint32_t(raw_size[i]);
      continue;
    }
    if (offset_given[i] && e.offset < last_end) {
      if (i == 0) {
        return InvalidArgument("CSV Error at line " + std::to_string(e.line) + ": Partitions overlap. Partition sets offset " +
                               Hex(e.offset) + ". But partition table occupies the whole sector " + Hex(table_offset) +
                               ". Use a free offset " + Hex(last_end) + " or higher.");
      }
      return InvalidArgument("CSV Error at line " + std::to_string(e.line) + ": Partitions overlap. Partition sets offset " +
                             Hex(e.offset) + ". Previous partition ends " + Hex(last_end));
    }
    if (!offset_given[i]) {
      uint64_t pad_to = e.type == kPartTypeApp ? 0x10000 : 0x1000;
      if (last_end % pad_to != 0) last_end += pad_to - last_end % pad_to;
      if (last_end > 0xFFFFFFFFull) {
        return InvalidArgument("Error at line " + std::to_string(e.line) + ": partition '" + e.name +
                               "' would start beyond the 32-bit flash address space");
      }
      e.offset = uint32_t(last_end);
    }
    int64_t sz = raw_size[i];
    if (sz < 0) sz = -sz - int64_t(e.offset);
    if (sz < 0 || uint64_t(e.offset) + uint64_t(sz) > 0x100000000ull) {
      return InvalidArgument("Error at line " + std::to_string(e.line) + ": partition '" + e.name + "' has an invalid size (" +
                             std::to_string(raw_size[i]) + ") at offset " + Hex(e.offset));
    }
    e.size = uint32_t(sz);
    last_end = uint64_t(e.offset) + e.size;
  }

  // verify(), per partition then across the table.
  for (const Partition& p : res) {
    auto invalid = [&](const std::string& m) { return InvalidArgument("Partition " + p.name + " invalid: " + m); };
    uint32_t align = p.type == kPartTypeApp ? 0x10000 : 0x1000;
    if (p.offset % align) return invalid("Offset " + Hex(p.offset) + " is not aligned to " + Hex(align));
    if (p.type == kPartTypeApp && p.size % 0x1000) return invalid("Size " + Hex(p.size) + " is not aligned to 0x1000");
    if (p.type == kPartTypeData && (p.subtype == kSubtypeDataOta || p.subtype == kSubtypeDataCoredump) && p.readonly) {
      return invalid("'" + p.name + "' partition of type " + TypeDecimal(p.type) + " and subtype " + TypeDecimal(p.subtype) +
                     " is always read-write and cannot be read-only");
    }
    if (p.type == kPartTypeData && p.subtype == kSubtypeDataNvs && p.size < 0x3000 && !p.readonly) {
      return invalid("'" + p.name + "' partition of type " + TypeDecimal(p.type) + " and subtype " + TypeDecimal(p.subtype) +
                     " of this size (" + Hex(p.size) +
                     ") must be flagged as 'readonly' (the size of read/write NVS has to be at least 0x3000)");
    }
  }
  std::set<std::string> names;
  for (const Partition& p : res) {
    if (!names.insert(p.name).second) return InvalidArgument("Partition names must be unique (duplicate '" + p.name + "')");
  }
  std::vector<const Partition*> sorted;
  for (const Partition& p : res) sorted.push_back(&p);
  std::stable_sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  const Partition* last = nullptr;
  for (const Partition* p : sorted) {
    bool primary = (p->type == kPartTypeBootloader || p->type == kPartTypePartitionTable) && p->subtype == 0;
    if (p->offset < table_offset + kPartitionTableSize && !primary) {
      return InvalidArgument("Partition offset " + Hex(p->offset) + " is below " + Hex(table_offset + kPartitionTableSize));
    }
    if (last && p->offset < uint64_t(last->offset) + last->size) {
      return InvalidArgument("Partition at " + Hex(p->offset) + " overlaps " + Hex(last->offset) + "-" +
                             Hex(uint64_t(last->offset) + last->size - 1));
    }
    last = p;
  }
  for (uint8_t sub : {kSubtypeDataOta, kSubtypeDataTeeOta}) {
    std::vector<const Partition*> ota;
    for (const Partition& p : res) {
      if (p.type == kPartTypeData && p.subtype == sub) ota.push_back(&p);
    }
    bool tee = sub == kSubtypeDataTeeOta;
    if (ota.size() > 1) {
      return InvalidArgument(tee ? "Found multiple TEE otadata partitions. Only one partition can be defined with "
                                   "type=\"data\"(1) and subtype=\"tee_ota\"(0x90)."
                                 : "Found multiple otadata partitions. Only one partition can be defined with "
                                   "type=\"data\"(1) and subtype=\"ota\"(0).");
    }
    if (ota.size() == 1 && ota[0]->size != kOtadataSize) {
      return InvalidArgument(tee ? "TEE otadata partition must have size = 0x2000" : "otadata partition must have size = 0x2000");
    }
  }
  if (options.flash_size && table.FlashSize() > *options.flash_size) {
    char buf[320];
    snprintf(buf, sizeof buf,
             "Partitions tables occupies %.1fMB of flash (%llu bytes) which does not fit in configured flash size %uMB.",
             double(table.FlashSize()) / (1024.0 * 1024.0), (unsigned long long)table.FlashSize(),
             unsigned(*options.flash_size / (1024 * 1024)));
    return InvalidArgument(buf);
  }
  if (res.size() > 95) {
    return InvalidArgument("Binary partition table length (" + std::to_string(res.size() * 32 + 32) + ") longer than max");
  }
  return table;
}

Result<PartitionTable> PartitionTable::FromBinary(ByteSpan b) {
  PartitionTable t;
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_md5(), nullptr);
  auto done = [&](Result<PartitionTable> r) {
    EVP_MD_CTX_free(md);
    return r;
  };
  for (size_t o = 0; o < b.size(); o += 32) {
    if (b.size() - o < 32) return done(Corrupt("Partition table length must be a multiple of 32 bytes"));
    const uint8_t* e = b.data() + o;
    if (std::all_of(e, e + 32, [](uint8_t x) { return x == 0xFF; })) return done(std::move(t));
    if (e[0] == 0xEB && e[1] == 0xEB) {
      EVP_MD_CTX* copy = EVP_MD_CTX_new();
      EVP_MD_CTX_copy_ex(copy, md);
      uint8_t digest[16];
      unsigned len = 0;
      EVP_DigestFinal_ex(copy, digest, &len);
      EVP_MD_CTX_free(copy);
      if (std::memcmp(digest, e + 16, 16) != 0) {
        return done(Corrupt("MD5 checksums don't match! (computed: 0x" + HexEncode(ByteSpan(digest, 16)) +
                            ", parsed: 0x" + HexEncode(ByteSpan(e + 16, 16)) + ")"));
      }
      continue;
    }
    EVP_DigestUpdate(md, e, 32);
    if (e[0] != 0xAA || e[1] != 0x50) {
      return done(Corrupt("Invalid magic bytes (" + HexEncode(ByteSpan(e, 2)) + ") for partition definition at table offset " +
                          Hex(o)));
    }
    Partition p;
    p.type = e[2];
    p.subtype = e[3];
    p.offset = GetLe32(e + 4);
    p.size = GetLe32(e + 8);
    size_t nlen = 0;
    while (nlen < 16 && e[12 + nlen] != 0) ++nlen;
    p.name.assign(reinterpret_cast<const char*>(e + 12), nlen);
    uint32_t flags = GetLe32(e + 28);
    p.encrypted = flags & 1;
    p.readonly = flags & 2;
    t.parts_.push_back(std::move(p));
  }
  return done(Corrupt("Partition table is missing an end-of-table marker"));
}

const Partition* PartitionTable::Find(std::string_view name) const {
  for (const auto& p : parts_) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

const Partition* PartitionTable::Otadata() const {
  for (const auto& p : parts_) {
    if (p.is_otadata()) return &p;
  }
  return nullptr;
}

std::vector<const Partition*> PartitionTable::OtaSlots() const {
  std::vector<const Partition*> v;
  for (const auto& p : parts_) {
    if (p.is_ota_app()) v.push_back(&p);
  }
  std::sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->subtype < b->subtype; });
  return v;
}

uint64_t PartitionTable::FlashSize() const {
  uint64_t end = 0;
  const Partition* last = nullptr;
  for (const auto& p : parts_) {
    if (!last || p.offset >= last->offset) last = &p;
  }
  if (last) end = uint64_t(last->offset) + last->size;
  return end;
}

Result<Bytes> PartitionTable::ToBinary() const {
  Bytes out;
  for (const Partition& p : parts_) {
    uint8_t e[32] = {0xAA, 0x50, p.type, p.subtype};
    PutLe32(e + 4, p.offset);
    PutLe32(e + 8, p.size);
    std::memcpy(e + 12, p.name.data(), std::min<size_t>(16, p.name.size()));
    PutLe32(e + 28, (p.encrypted ? 1u : 0u) | (p.readonly ? 2u : 0u));
    out.insert(out.end(), e, e + 32);
  }
  uint8_t digest[16];
  unsigned len = 0;
  EVP_Digest(out.data(), out.size(), digest, &len, EVP_md5(), nullptr);
  uint8_t md5e[32];
  std::memset(md5e, 0xFF, 16);
  md5e[0] = md5e[1] = 0xEB;
  std::memcpy(md5e + 16, digest, 16);
  out.insert(out.end(), md5e, md5e + 32);
  if (out.size() >= kPartitionTableBinLength) {
    return InvalidArgument("Binary partition table length (" + std::to_string(out.size()) + ") longer than max");
  }
  out.resize(kPartitionTableBinLength, 0xFF);
  return out;
}

std::string PartitionTable::ToCsv() const {
  std::string s = "# ESP-IDF Partition Table\n# Name, Type, SubType, Offset, Size, Flags\n";
  for (const Partition& p : parts_) {
    std::string size;
    if (p.size % 0x100000 == 0) size = std::to_string(p.size / 0x100000) + "M";
    else if (p.size % 0x400 == 0) size = std::to_string(p.size / 0x400) + "K";
    else size = Hex(p.size);
    auto tname = [&]() -> std::string {
      for (const auto& [k, v] : TypeKeywordList()) if (v == p.type) return k;
      return std::to_string(p.type);
    }();
    auto sname = [&]() -> std::string {
      if (auto* kw = SubtypeKeywords(p.type)) for (const auto& [k, v] : *kw) if (v == p.subtype) return k;
      return std::to_string(p.subtype);
    }();
    std::string flags;
    if (p.encrypted) flags = "encrypted";
    if (p.readonly) flags += (flags.empty() ? "" : ":") + std::string("readonly");
    s += p.name + "," + tname + "," + sname + "," + Hex(p.offset) + "," + size + "," + flags + "\n";
  }
  return s;
}

uint32_t OtadataCrc(uint32_t seq) {
  // zlib's crc32(running=0xFFFFFFFF, le32(seq)): its pre/post inversion around the reflected
  // CRC-32 register means the register starts at 0 here.
  uint32_t c = 0xFFFFFFFFu ^ 0xFFFFFFFFu;
  for (int i = 0; i < 4; ++i) {
    c ^= (seq >> (8 * i)) & 0xFF;
    for (int b = 0; b < 8; ++b) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return c ^ 0xFFFFFFFFu;
}

Bytes MakeOtadata(std::optional<uint32_t> slot) {
  Bytes d(kOtadataSize, 0xFF);
  if (slot) {
    uint32_t seq = *slot + 1;
    PutLe32(d.data(), seq);
    // label (20 bytes) and state (UNDEFINED) stay 0xFF
    PutLe32(d.data() + 28, OtadataCrc(seq));
  }
  return d;
}

std::optional<uint32_t> OtadataBootSlot(ByteSpan otadata, uint32_t ota_slot_count) {
  if (otadata.size() < kOtadataSize || ota_slot_count == 0) return std::nullopt;
  std::optional<uint32_t> best;
  for (size_t sector = 0; sector < 2; ++sector) {
    const uint8_t* e = otadata.data() + sector * 0x1000;
    uint32_t seq = GetLe32(e), state = GetLe32(e + 24), crc = GetLe32(e + 28);
    if (seq == 0xFFFFFFFF || crc != OtadataCrc(seq)) continue;
    if (state == 3 || state == 4) continue;  // INVALID, ABORTED
    if (!best || seq > *best) best = seq;
  }
  if (!best) return std::nullopt;
  return (*best - 1) % ota_slot_count;
}

}  // namespace coffer::flash
