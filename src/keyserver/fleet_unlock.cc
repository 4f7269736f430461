#include "coffer/keyserver/fleet_unlock.h"

#include <nlohmann/json.hpp>

#include "coffer/base/file_util.h"

namespace coffer::keyserver {
namespace {

std::string VolumeHex(const VolumeId& id) { return HexEncode(ByteSpan(id.data(), id.size())); }

constexpr uint8_t kParamsEscrow = 1, kParamsTang = 2;
constexpr const char* kCurves[] = {"", "P-256", "P-384", "P-521"};

class KeyServerMethod : public UnlockMethod {
 public:
  explicit KeyServerMethod(KeyServerSpec spec) : spec_(std::move(spec)), client_(spec_.client) {}
  KeySlotType slot_type() const override { return KeySlotType::kKeyServer; }
  std::string Describe() const override {
    return "key server " + (spec_.client.urls.empty() ? std::string("?") : spec_.client.urls[0]) + " (" + spec_.mode + ")";
  }
  Result<Bytes> NewSlotParams() override {
    if (spec_.mode == "escrow") {
      COFFER_RETURN_IF_ERROR(client_.GetSecret(spec_.secret).status());  // fail now, not at the next unlock
      Bytes p{kParamsEscrow};
      Append(p, AsBytes(spec_.secret));
      return p;
    }
    COFFER_ASSIGN_OR_RETURN(std::string adv, client_.TangAdvertisement());
    COFFER_ASSIGN_OR_RETURN(tang::BindResult b, tang::Bind(spec_.client.urls.at(0), adv));
    uint8_t curve = 0;
    for (uint8_t i = 1; i < 4; ++i) {
      if (b.binding.server_key.crv == kCurves[i]) curve = i;
    }
    Bytes p{kParamsTang, curve};
    for (const Bytes* part : {&b.binding.server_key.x, &b.binding.server_key.y, &b.binding.client_pub.x,
                              &b.binding.client_pub.y}) {
      Append(p, *part);
    }
    if (p.size() > kMaxSlotParams) return Internal("tang slot parameters too large");
    return p;
  }
  Result<SecretBytes> UnlockSecret(ByteSpan params) override {
    if (params.empty()) return InvalidArgument("empty key server slot parameters");
    if (params[0] == kParamsEscrow) {
      std::string name(AsStringView(params.subspan(1)));
      auto s = client_.GetSecret(name);
      if (!s.ok() && (s.status().code() == StatusCode::kPermissionDenied || s.status().code() == StatusCode::kNotFound)) {
        return Unauthenticated("key server refused: " + s.status().message());
      }
      return s;
    }
    if (params[0] != kParamsTang || params.size() < 2 || params[1] < 1 || params[1] > 3) {
      return InvalidArgument("unknown key server slot parameters");
    }
    size_t n = params[1] == 1 ? 32 : params[1] == 2 ? 48 : 66;
    if (params.size() != 2 + 4 * n) return InvalidArgument("key server slot parameters have the wrong size");
    tang::TangBinding b;
    b.url = spec_.client.urls.at(0);
    auto part = [&](int i) { return Bytes(params.begin() + 2 + i * n, params.begin() + 2 + (i + 1) * n); };
    b.server_key.crv = b.client_pub.crv = kCurves[params[1]];
    b.server_key.x = part(0);
    b.server_key.y = part(1);
    b.client_pub.x = part(2);
    b.client_pub.y = part(3);
    b.server_key.alg = b.client_pub.alg = "ECMR";
    COFFER_ASSIGN_OR_RETURN(b.kid, jose::Thumbprint(b.server_key));
    auto k = client_.TangRecover(b);
    if (!k.ok() && (k.status().code() == StatusCode::kPermissionDenied || k.status().code() == StatusCode::kNotFound)) {
      return Unauthenticated("key server refused: " + k.status().message());
    }
    return k;
  }
  std::string DefaultAnchorPath() const override { return DefaultStateAnchorPath(); }

 private:
  KeyServerSpec spec_;
  KeyServerClient client_;
};

}  // namespace

Result<std::optional<AnchorEntry>> WitnessAnchor::Load(const VolumeId& id) {
  auto r = client_.LatestWitness(VolumeHex(id));
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kNotFound) return std::optional<AnchorEntry>();
    return r.status();
  }
  auto root = HexDecode(r->root_hex);
  if (!root.ok() || root->size() != 32) return DataLoss("key server witness holds a malformed root for this volume");
  AnchorEntry e;
  e.counter = r->counter;
  std::copy(root->begin(), root->end(), e.root.begin());
  return std::optional<AnchorEntry>(e);
}

Status WitnessAnchor::Commit(const VolumeId& id, const AnchorEntry& entry) {
  auto r = client_.ReportWitness(VolumeHex(id), entry.counter, HexEncode(ByteSpan(entry.root.data(), 32)));
  if (!r.ok() && r.status().code() == StatusCode::kDataLoss) return FailedPrecondition(r.status().message());
  return r.status();
}

Status WitnessAnchor::Forget(const VolumeId& id) {
  auto r = client_.Request("DELETE", "/v1/witness/" + VolumeHex(id));
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) return Status::Ok();
  return r.status();
}

Result<KeyServerSpec> LoadKeyServerSpec(const std::string& path) {
  COFFER_ASSIGN_OR_RETURN(Bytes text, ReadFileBytes(path));
  auto j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(path + " is not a JSON object");
  KeyServerSpec s;
  try {
    for (const auto& u : j.at("urls")) s.client.urls.push_back(u.get<std::string>());
    s.client.cert = j.value("cert", "");
    s.client.key = j.value("key", "");
    s.client.ca = j.value("ca", "");
    s.mode = j.value("mode", "escrow");
    s.secret = j.value("secret", "default");
    s.client.deadline = std::chrono::milliseconds(int64_t(j.value("deadline_seconds", 30.0) * 1000));
  } catch (const std::exception& e) {
    return InvalidArgument(path + ": " + e.what());
  }
  if (s.client.urls.empty()) return InvalidArgument(path + ": \"urls\" is empty");
  if (s.mode != "escrow" && s.mode != "tang") return InvalidArgument(path + ": mode must be escrow or tang");
  return s;
}

Result<std::unique_ptr<UnlockMethod>> NewKeyServerUnlockMethod(KeyServerSpec spec) {
  return std::unique_ptr<UnlockMethod>(new KeyServerMethod(std::move(spec)));
}

void RegisterKeyServerKeySpec() {
  RegisterKeySpecScheme("keyserver", [](std::string_view rest, const KeySpecContext&) -> Result<std::unique_ptr<UnlockMethod>> {
    COFFER_ASSIGN_OR_RETURN(KeyServerSpec spec, LoadKeyServerSpec(std::string(rest)));
    return NewKeyServerUnlockMethod(std::move(spec));
  });
  // `--anchor witness:CONFIG.json`: the same server and device identity as a rollback anchor.
  RegisterAnchorScheme("witness", [](std::string_view rest) -> Result<std::shared_ptr<Anchor>> {
    COFFER_ASSIGN_OR_RETURN(KeyServerSpec spec, LoadKeyServerSpec(std::string(rest)));
    return std::shared_ptr<Anchor>(std::make_shared<WitnessAnchor>(std::move(spec.client)));
  });
}

}  // namespace coffer::keyserver
