#include "coffer/envsecret/exec_env.h"

#include <algorithm>
#include <cstring>

namespace coffer::envsecret {
namespace {

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

bool ValidName(std::string_view name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

struct Pending {
  std::string name;  // X (without ENCRYPTED_)
  std::string_view value;
};

}  // namespace

bool IsKeyMaterialVariable(std::string_view name) {
  if (!StartsWith(name, "COFFER_")) return false;
  return name == "COFFER_PASSWORD" || name == "COFFER_PASSPHRASE" || StartsWith(name, "COFFER_KEY") ||
         StartsWith(name, "COFFER_TLS_") || EndsWith(name, "_PASSWORD") || EndsWith(name, "_SECRET") ||
         EndsWith(name, "_TOKEN");
}

char* const* ChildEnvironment::envp() {
  pointers_.clear();
  for (auto& e : entries_) pointers_.push_back(reinterpret_cast<char*>(e.reveal().data()));
  pointers_.push_back(nullptr);
  return pointers_.data();
}

std::string_view ChildEnvironment::entry(size_t i) const {
  auto s = entries_[i].reveal_string();
  return s.substr(0, s.size() - 1);
}

void ChildEnvironment::AddEntry(std::string_view name, std::span<const uint8_t> value) {
  SecretBytes e(name.size() + 1 + value.size() + 1);
  auto out = e.reveal();
  std::memcpy(out.data(), name.data(), name.size());
  out[name.size()] = '=';
  if (!value.empty()) std::memcpy(out.data() + name.size() + 1, value.data(), value.size());
  out[out.size() - 1] = 0;
  entries_.push_back(std::move(e));
}

Result<ChildEnvironment> PrepareChildEnvironment(const std::vector<std::string_view>& environ,
                                                 EnvFormat format, const EnvKeys& keys,
                                                 const std::vector<std::string>& extra_unset) {
  if (!keys.password && !keys.raw_key) return InvalidArgument("no key given to decrypt ENCRYPTED_ variables");
  std::vector<Pending> pending;
  std::vector<std::string_view> kept;
  for (std::string_view kv : environ) {
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;  // not a variable; never passed on
    std::string_view name = kv.substr(0, eq);
    if (StartsWith(name, kEncryptedPrefix)) {
      std::string plain_name(name.substr(kEncryptedPrefix.size()));
      if (!ValidName(plain_name)) {
        return InvalidArgument("variable " + std::string(name) + ": '" + plain_name +
                               "' is not a valid environment variable name");
      }
      pending.push_back({plain_name, kv.substr(eq + 1)});
      continue;
    }
    if (IsKeyMaterialVariable(name)) continue;
    if (std::find(extra_unset.begin(), extra_unset.end(), name) != extra_unset.end()) continue;
    kept.push_back(kv);
  }

  // secure-store keys are derived once; coffer-format values carry their own salt.
  std::optional<SecretBytes> ss_key;
  if (keys.password) ss_key = SecureStoreKey(keys.password->reveal());

  // Decrypt everything first; failures are classified after, so "the key opened another value"
  // can turn an authentication failure into a tampering report.
  struct Outcome {
    Result<SecretBytes> plain = Status(StatusCode::kInternal, "unset");
  };
  std::vector<Outcome> outcomes(pending.size());
  bool any_opened = false;
  for (size_t i = 0; i < pending.size(); ++i) {
    const Pending& p = pending[i];
    bool coffer = format == EnvFormat::kCoffer || (format == EnvFormat::kAuto && IsCofferFormat(p.value));
    if (coffer) {
      KeySource ks;
      if (keys.raw_key && (!keys.password || (ParseCofferHeader(p.value).ok() &&
                                                  ParseCofferHeader(p.value)->kdf == Kdf::kRawKey))) {
        ks = {Kdf::kRawKey, keys.raw_key->Clone()};
      } else if (keys.password) {
        ks = {Kdf::kArgon2id, keys.password->Clone()};
      } else {
        ks = {Kdf::kRawKey, keys.raw_key->Clone()};
      }
      outcomes[i].plain = DecryptCoffer(p.name, p.value, ks);
    } else {
      if (!ss_key) {
        outcomes[i].plain = InvalidArgument("secure-store values need a password (--password-file), not a key file");
      } else {
        outcomes[i].plain = DecryptSecureStore(p.value, *ss_key);
      }
    }
    if (outcomes[i].plain.ok()) any_opened = true;
    // Stop at the first malformed or tampered value: there is no point deriving further keys.
    if (!outcomes[i].plain.ok() && outcomes[i].plain.status().code() != StatusCode::kUnauthenticated) break;
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    const Status& st = outcomes[i].plain.status();
    if (outcomes[i].plain.ok()) continue;
    if (st.code() == StatusCode::kInternal && st.message() == "unset") continue;  // after a stop
    std::string var = std::string(kEncryptedPrefix) + pending[i].name;
    if (st.code() == StatusCode::kUnauthenticated && any_opened) {
      return DataLoss("variable " + var + ": failed authentication although the same key opens other " +
                      "variables: the value was changed");
    }
    return Status(st.code(), "variable " + var + ": " + st.message());
  }

  ChildEnvironment env;
  for (std::string_view kv : kept) {
    size_t eq = kv.find('=');
    std::string_view name = kv.substr(0, eq);
    // A decrypted X replaces any plain X already present.
    bool replaced = std::any_of(pending.begin(), pending.end(), [&](const Pending& p) { return p.name == name; });
    if (replaced) continue;
    env.AddEntry(name, AsBytes(kv.substr(eq + 1)));
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    const SecretBytes& v = *outcomes[i].plain;
    if (std::find(v.reveal().begin(), v.reveal().end(), uint8_t{0}) != v.reveal().end()) {
      return InvalidArgument("variable " + std::string(kEncryptedPrefix) + pending[i].name +
                             ": decrypted value contains a NUL byte and cannot be an environment variable");
    }
    env.AddEntry(pending[i].name, v.reveal());
    env.NoteDecrypted(pending[i].name);
  }
  return env;
}

}  // namespace coffer::envsecret
