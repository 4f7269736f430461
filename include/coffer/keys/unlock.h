// Unlock methods and KEYSPECs: how a user names the secret that opens a sealed volume's key slot.
//   file:PATH | PATH     a key file (key_file.h)
//   pass:                a passphrase typed at the terminal (no echo; asked twice when creating)
//   pass:file:PATH       a passphrase read from a file (one trailing newline dropped)
//   pass:fd:N            a passphrase read from file descriptor N
// Secrets never come from argv. A method turns a slot's public parameters into an "unlock secret";
// the volume derives the slot's key-encryption key and key id from it (docs/format/volume.md).
//
// Adding a method (e.g. `keyserver:` or `tpm2:`): implement UnlockMethod (pick a KeySlotType),
// then call RegisterKeySpecScheme("keyserver", factory) once at start-up (the CLI's Register
// function is a good place; static initialisers in static libraries get dropped by the linker).
// NewSlotParams() returns what the slot must remember (a server key id, a sealed TPM blob: up to
// kMaxSlotParams bytes, public but MAC'ed); UnlockSecret(params) returns the secret for that slot.
// Thread-compatible: the registry is locked; methods are used by one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "coffer/base/bytes.h"
#include "coffer/base/secret.h"
#include "coffer/base/status.h"
#include "coffer/crypt/hash.h"

namespace coffer {

enum class KeySlotType : uint8_t {
  kEmpty = 0,
  kKeyFile = 1,
  kPassphrase = 2,
  kKeyServer = 3,  // reserved for the fleet key server
  kTpm2 = 4,       // reserved for TPM 2.0 sealing
};
std::string_view KeySlotTypeName(KeySlotType type);

constexpr size_t kMaxSlotParams = 320;

class UnlockMethod {
 public:
  virtual ~UnlockMethod() = default;
  virtual KeySlotType slot_type() const = 0;
  // Human description without secrets ("key file /etc/k", "passphrase").
  virtual std::string Describe() const = 0;
  // Public parameters for a new slot of this method (may be empty).
  virtual Result<Bytes> NewSlotParams() = 0;
  // The unlock secret for a slot holding params. kInvalidArgument if params are malformed.
  virtual Result<SecretBytes> UnlockSecret(ByteSpan params) = 0;
  // The anchor file used when the caller gives none.
  virtual std::string DefaultAnchorPath() const = 0;
};

struct KeySpecContext {
  // Reads a passphrase for `pass:` (prompt shown to the user). Default: /dev/tty without echo.
  std::function<Result<SecretBytes>(const std::string& prompt)> prompt;
  bool creating = false;  // ask twice for new passphrases
  Argon2Params argon2;    // costs for new passphrase slots
};

using UnlockMethodFactory =
    std::function<Result<std::unique_ptr<UnlockMethod>>(std::string_view rest, const KeySpecContext& ctx)>;
// Adds (or replaces) a scheme; `rest` is the text after "scheme:".
void RegisterKeySpecScheme(const std::string& scheme, UnlockMethodFactory factory);
// kInvalidArgument for an empty spec, kUnsupported for an unknown scheme, kNotFound for a missing
// key file; errors name the spec (never a secret).
Result<std::unique_ptr<UnlockMethod>> ParseKeySpec(std::string_view spec, const KeySpecContext& ctx = {});

// Reads a passphrase from the controlling terminal without echo.
Result<SecretBytes> PromptPassphraseOnTty(const std::string& prompt);

}  // namespace coffer
