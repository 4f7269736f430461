// The key server as seen by sealed volumes:
//  - WitnessAnchor: an Anchor (coffer/keys/anchor.h) whose state is the key server's freshness witness,
//    for devices without a local monotonic counter. Load asks the server for the newest (counter, root)
//    it has seen for this device's volume; Commit reports a new one and is refused (kFailedPrecondition,
//    "rolled back") if it is older than what the server has seen. Unreachable server: kUnavailable.
//  - KEYSPEC `keyserver:CONFIG.json` (slot type kKeyServer): escrow mode (the device's secret NAME is
//    the unlock secret) or tang mode (server-blind; the slot parameters hold the public ECMR binding).
//    CONFIG: {"urls": [...], "cert": PEM path, "key": PEM path, "ca": PEM path, "mode": "escrow"|"tang",
//    "secret": "default", "deadline_seconds": 30} (docs/fleet.md).
// RegisterKeyServerKeySpec() installs the KEYSPEC scheme and the anchor scheme `witness:CONFIG.json`
// (a WitnessAnchor for the server and identity in CONFIG; call once at start-up). Thread-compatible.
#pragma once

#include "coffer/keys/anchor.h"
#include "coffer/keys/unlock.h"
#include "coffer/keyserver/client.h"

namespace coffer::keyserver {

class WitnessAnchor : public Anchor {
 public:
  explicit WitnessAnchor(ClientOptions options) : client_(std::move(options)) {}
  Result<std::optional<AnchorEntry>> Load(const VolumeId& id) override;
  Status Commit(const VolumeId& id, const AnchorEntry& entry) override;
  Status Forget(const VolumeId& id) override;
  std::string Describe() const override { return "key server witness"; }

 private:
  KeyServerClient client_;
};

struct KeyServerSpec {
  ClientOptions client;
  std::string mode = "escrow";
  std::string secret = "default";
};
Result<KeyServerSpec> LoadKeyServerSpec(const std::string& path);
Result<std::unique_ptr<UnlockMethod>> NewKeyServerUnlockMethod(KeyServerSpec spec);
void RegisterKeyServerKeySpec();

}  // namespace coffer::keyserver
