// TPM 2.0 access through Debian's tss2-esys: sealing a secret to this TPM (optionally to PCR values)
// and the NV indices behind the TPM anchor. Every call opens its own ESYS context over the TCTI and
// closes it (a TPM resource manager or swtpm serves one connection at a time), so objects hold only
// configuration and are thread-compatible. Formats: docs/format/tpm2_slot.md, docs/format/tpm2_anchor.md.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"

namespace coffer::tpm {

// "0x01800c00" for log and error messages.
std::string HexIndex(uint32_t index);

// Where the TPM is: an explicit TCTI config ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321",
// "mssim:..."), else $COFFER_TPM2_TCTI, else $TPM2TOOLS_TCTI, else "device:/dev/tpmrm0".
std::string ResolveTcti(std::string_view explicit_tcti);

// A PCR selection in one bank. mask bit i = PCR i (0..23).
struct PcrSelection {
  uint16_t hash_alg = 0;  // TPM2_ALG_ID (0x000B sha256, 0x0004 sha1, 0x000C sha384); 0 = no PCRs
  uint32_t mask = 0;
  bool empty() const { return mask == 0; }
  bool operator==(const PcrSelection&) const = default;
};
// Parses "sha256:0,7" / "sha1:0+7" style text ("BANK:N[,N...]" with ',' or '+' between PCRs).
Result<PcrSelection> ParsePcrSelection(std::string_view text);
std::string PcrSelectionToString(const PcrSelection& pcrs);

// A secret sealed by the TPM: the sealed object's TPM2B_PUBLIC and TPM2B_PRIVATE (marshalled), and
// the PCRs its policy binds (empty: no policy, the object's empty authValue opens it).
struct SealedBlob {
  PcrSelection pcrs;
  Bytes public_area;   // marshalled TPM2B_PUBLIC
  Bytes private_area;  // marshalled TPM2B_PRIVATE (encrypted by the TPM's storage primary key)
};

class Tpm2 {
 public:
  explicit Tpm2(std::string tcti_config) : tcti_(std::move(tcti_config)) {}
  const std::string& tcti() const { return tcti_; }

  // Seals `secret` (<= 128 bytes) under the owner-hierarchy storage primary (fixed ECC P-256 template).
  Result<SealedBlob> Seal(const SecretBytes& secret, const PcrSelection& pcrs);
  // kUnauthenticated if the blob was sealed by another TPM (or the owner seed was cleared) or the
  // PCRs no longer match; kUnavailable if the TPM cannot be reached; kInvalidArgument if malformed.
  Result<SecretBytes> Unseal(const SealedBlob& blob);

  // PCR access (tests and diagnostics).
  Result<Bytes> ReadPcr(uint16_t hash_alg, int pcr);
  Status ExtendPcr(int pcr, uint16_t hash_alg, ByteSpan digest);

  // NV indices (owner hierarchy, empty index authValue, no dictionary-attack lockout).
  struct NvInfo {
    bool counter = false;  // TPM2_NT_COUNTER
    bool written = false;  // TPMA_NV_WRITTEN
    uint16_t size = 0;
  };
  // nullopt if the index is not defined.
  Result<std::optional<NvInfo>> NvInfoOf(uint32_t index);
  Status NvDefineCounter(uint32_t index);
  Status NvDefineOrdinary(uint32_t index, uint16_t size);
  Status NvUndefine(uint32_t index);
  // Counter value (big-endian on the TPM); kFailedPrecondition if never incremented.
  Result<uint64_t> NvReadCounter(uint32_t index);
  Status NvIncrement(uint32_t index);
  Result<Bytes> NvRead(uint32_t index, uint16_t size);
  Status NvWrite(uint32_t index, ByteSpan data);

  // HMAC-SHA256 of data (<= 1024 bytes) with a keyed-hash primary key derived from the owner seed
  // and `label` (fixed template; the key never leaves the TPM). With PCRs, the key's policy binds
  // them: only software running with those PCR values can compute the MAC.
  Result<std::array<uint8_t, 32>> Hmac(std::string_view label, const PcrSelection& pcrs, ByteSpan data);

 private:
  std::string tcti_;
};

}  // namespace coffer::tpm
