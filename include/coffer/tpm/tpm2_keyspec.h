// KEYSPEC `tpm2:` (a key slot whose unlock secret is sealed by a TPM 2.0) and the anchor spec
// `tpm2:nv=...` (the TPM's NV monotonic counter). Spec syntax (docs/fleet.md, TPM section):
//   tpm2:[pcrs=BANK:N,N...][,nv=HANDLE][,tcti=CONF]     tcti= comes last and takes the rest.
// RegisterTpm2Schemes() adds the `tpm2` KEYSPEC scheme and the `tpm2` anchor scheme (call once at
// start-up, e.g. from the CLI). Thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "coffer/keys/anchor.h"
#include "coffer/keys/unlock.h"
#include "coffer/tpm/tpm2.h"

namespace coffer::tpm {

constexpr uint32_t kDefaultAnchorNvIndex = 0x01800C00;  // owner NV range; the data index is +1

struct Tpm2Spec {
  std::string tcti;  // resolved (ResolveTcti)
  PcrSelection pcrs;
  uint32_t nv_index = kDefaultAnchorNvIndex;
  bool nv_given = false;
};
// Parses the text after "tpm2:". allow_nv: `nv=` is accepted (anchor specs only).
Result<Tpm2Spec> ParseTpm2Spec(std::string_view rest, bool allow_nv);

// Slot parameters: docs/format/tpm2_slot.md.
Result<Bytes> EncodeSlotParams(const SealedBlob& blob);
Result<SealedBlob> DecodeSlotParams(ByteSpan params);

// The `tpm2:` unlock method: NewSlotParams seals 32 random bytes (OS CSPRNG) to the TPM (and the
// spec's PCRs, at their current values); UnlockSecret unseals them.
std::unique_ptr<UnlockMethod> NewTpm2UnlockMethod(Tpm2Spec spec);

void RegisterTpm2Schemes();

}  // namespace coffer::tpm
