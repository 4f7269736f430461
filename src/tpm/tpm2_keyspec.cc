#include "coffer/tpm/tpm2_keyspec.h"

#include <cstring>

#include "coffer/tpm/tpm2_anchor.h"

namespace coffer::tpm {
namespace {

constexpr char kParamsMagic[4] = {'C', 'F', 'T', '2'};
constexpr uint8_t kParamsVersion = 1;
constexpr size_t kParamsHeader = 12;
constexpr size_t kSecretSize = 32;

bool IsDigits(std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; }

class Tpm2UnlockMethod : public UnlockMethod {
 public:
  explicit Tpm2UnlockMethod(Tpm2Spec spec) : spec_(std::move(spec)), tpm_(spec_.tcti) {}
  KeySlotType slot_type() const override { return KeySlotType::kTpm2; }
  std::string Describe() const override {
    std::string d = "TPM 2.0 (tcti " + spec_.tcti;
    if (!spec_.pcrs.empty()) d += ", pcrs " + PcrSelectionToString(spec_.pcrs);
    return d + ")";
  }
  Result<Bytes> NewSlotParams() override {
    SecretBytes secret = SecretBytes::Random(kSecretSize);
    COFFER_ASSIGN_OR_RETURN(SealedBlob blob, tpm_.Seal(secret, spec_.pcrs));
    return EncodeSlotParams(blob);
  }
  Result<SecretBytes> UnlockSecret(ByteSpan params) override {
    COFFER_ASSIGN_OR_RETURN(SealedBlob blob, DecodeSlotParams(params));
    COFFER_ASSIGN_OR_RETURN(SecretBytes secret, tpm_.Unseal(blob));
    if (secret.size() != kSecretSize) return InvalidArgument("sealed TPM secret has the wrong size");
    return secret;
  }
  // No file of its own: the per-user state anchor, unless --anchor (e.g. tpm2:nv=...) is given.
  std::string DefaultAnchorPath() const override { return DefaultStateAnchorPath(); }

 private:
  Tpm2Spec spec_;
  Tpm2 tpm_;
};

}  // namespace

Result<Tpm2Spec> ParseTpm2Spec(std::string_view rest, bool allow_nv) {
  Tpm2Spec spec;
  std::string tcti;
  std::string pcrs_text;
  std::string last_key;
  size_t i = 0;
  while (i < rest.size()) {
    if (rest.substr(i).rfind("tcti=", 0) == 0) {  // takes the rest: TCTI configs contain ',' and '='
      tcti = std::string(rest.substr(i + 5));
      if (tcti.empty()) return InvalidArgument("tpm2: tcti= is empty (e.g. tcti=device:/dev/tpmrm0)");
      break;
    }
    size_t end = rest.find(',', i);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view tok = rest.substr(i, end - i);
    i = end + 1;
    if (tok.empty()) return InvalidArgument("tpm2: empty option in '" + std::string(rest) + "'");
    if (last_key == "pcrs" && IsDigits(tok)) {  // "pcrs=sha256:0,7": the list continues
      pcrs_text += ",";
      pcrs_text += tok;
      continue;
    }
    auto eq = tok.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("tpm2: option '" + std::string(tok) + "' is not KEY=VALUE (keys: pcrs, " +
                             (allow_nv ? "nv, " : "") + "tcti)");
    }
    std::string key(tok.substr(0, eq));
    std::string_view value = tok.substr(eq + 1);
    if (key == "pcrs") {
      if (!pcrs_text.empty()) return InvalidArgument("tpm2: pcrs= given twice");
      pcrs_text = std::string(value);
      if (pcrs_text.empty()) return InvalidArgument("tpm2: pcrs= is empty (e.g. pcrs=sha256:0,7)");
    } else if (key == "nv" && allow_nv) {
      if (spec.nv_given) return InvalidArgument("tpm2: nv= given twice");
      std::string v(value);
      char* endp = nullptr;
      errno = 0;
      unsigned long long h = std::strtoull(v.c_str(), &endp, 0);
      if (v.empty() || *endp != '\0' || errno != 0 || (h >> 24) != 0x01 || (h & 0xFFFFFF) == 0xFFFFFF) {
        return InvalidArgument("tpm2: nv=" + v + " is not an NV index handle 0x01000000..0x01fffffe");
      }
      spec.nv_index = uint32_t(h);
      spec.nv_given = true;
    } else {
      return InvalidArgument("tpm2: unknown option '" + key + "' (keys: pcrs, " + (allow_nv ? "nv, " : "") +
                             "tcti)");
    }
    last_key = key;
  }
  if (!pcrs_text.empty()) {
    COFFER_ASSIGN_OR_RETURN(spec.pcrs, ParsePcrSelection(pcrs_text));
  }
  spec.tcti = ResolveTcti(tcti);
  return spec;
}

Result<Bytes> EncodeSlotParams(const SealedBlob& blob) {
  Bytes out(kParamsHeader, 0);
  std::memcpy(out.data(), kParamsMagic, 4);
  out[4] = kParamsVersion;
  out[5] = 0;
  PutLe16(out.data() + 6, blob.pcrs.empty() ? 0 : blob.pcrs.hash_alg);
  PutLe32(out.data() + 8, blob.pcrs.mask);
  for (const Bytes* part : {&blob.public_area, &blob.private_area}) {
    uint8_t len[2];
    PutLe16(len, uint16_t(part->size()));
    out.insert(out.end(), len, len + 2);
    Append(out, *part);
  }
  if (out.size() > kMaxSlotParams) {
    return Internal("sealed TPM object is " + std::to_string(out.size()) + " bytes, more than a key slot holds (" +
                    std::to_string(kMaxSlotParams) + ")");
  }
  return out;
}

Result<SealedBlob> DecodeSlotParams(ByteSpan p) {
  if (p.size() > kMaxSlotParams) return InvalidArgument("TPM 2.0 slot parameters are too long");
  if (p.size() < kParamsHeader + 4 || std::memcmp(p.data(), kParamsMagic, 4) != 0) {
    return InvalidArgument("not TPM 2.0 slot parameters (bad magic or too short)");
  }
  if (p[4] != kParamsVersion) return InvalidArgument("TPM 2.0 slot parameters version " + std::to_string(p[4]));
  if (p[5] != 0) return InvalidArgument("TPM 2.0 slot parameters: reserved flags set");
  SealedBlob blob;
  blob.pcrs.hash_alg = GetLe16(p.data() + 6);
  blob.pcrs.mask = GetLe32(p.data() + 8);
  if ((blob.pcrs.mask >> 24) != 0) return InvalidArgument("TPM 2.0 slot parameters: PCR mask beyond PCR 23");
  if ((blob.pcrs.mask == 0) != (blob.pcrs.hash_alg == 0)) {
    return InvalidArgument("TPM 2.0 slot parameters: PCR bank and mask disagree");
  }
  size_t off = kParamsHeader;
  for (Bytes* part : {&blob.public_area, &blob.private_area}) {
    if (p.size() - off < 2) return InvalidArgument("TPM 2.0 slot parameters are truncated");
    size_t len = GetLe16(p.data() + off);
    off += 2;
    if (len == 0 || p.size() - off < len) return InvalidArgument("TPM 2.0 slot parameters are truncated");
    part->assign(p.begin() + off, p.begin() + off + len);
    off += len;
  }
  if (off != p.size()) return InvalidArgument("TPM 2.0 slot parameters have trailing bytes");
  return blob;
}

std::unique_ptr<UnlockMethod> NewTpm2UnlockMethod(Tpm2Spec spec) {
  return std::make_unique<Tpm2UnlockMethod>(std::move(spec));
}

void RegisterTpm2Schemes() {
  RegisterKeySpecScheme("tpm2", [](std::string_view rest, const KeySpecContext&) -> Result<std::unique_ptr<UnlockMethod>> {
    COFFER_ASSIGN_OR_RETURN(Tpm2Spec spec, ParseTpm2Spec(rest, false));
    return NewTpm2UnlockMethod(std::move(spec));
  });
  RegisterAnchorScheme("tpm2", [](std::string_view rest) -> Result<std::shared_ptr<Anchor>> {
    COFFER_ASSIGN_OR_RETURN(Tpm2Spec spec, ParseTpm2Spec(rest, true));
    return std::shared_ptr<Anchor>(std::make_shared<Tpm2NvAnchor>(spec.tcti, spec.nv_index, spec.pcrs));
  });
}

}  // namespace coffer::tpm
