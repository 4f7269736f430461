// `coffer volume create|info|verify|add-key|remove-key|erase`: sealed volumes (volume module).
#include <nlohmann/json.hpp>

#include <memory>

#include "cli/commands.h"
#include "coffer/volume/open_volume.h"

namespace coffer::cli {
namespace {

struct Common {
  std::string spec, key, anchor;
  bool json = false;
  uint64_t argon2_ops = 3;
  uint64_t argon2_mib = 64;
};

const char* const kSpecHelp =
    "SPEC is the backing store: file:PATH (a local file, journaled). KEYSPEC is a key file (PATH or file:PATH,\n"
    "see 'coffer key new'), or a passphrase: pass: (asked on the terminal), pass:file:PATH or pass:fd:N,\n"
    "or keyserver:CONFIG.json (the fleet key server), or tpm2:[pcrs=BANK:N,N...][,tcti=CONF] (a secret\n"
    "sealed by this machine's TPM 2.0, optionally to the current PCR values; TPM from tcti=, else\n"
    "$COFFER_TPM2_TCTI, else $TPM2TOOLS_TCTI, else device:/dev/tpmrm0; tcti= comes last).\n"
    "Passphrases are never taken from the command line. The anchor (the trusted commit counter that\n"
    "detects rollback) lives next to the key file as KEYFILE.anchor, or for passphrases and tpm2: in\n"
    "$XDG_STATE_HOME/coffer/anchors (~/.local/state/coffer/anchors); --anchor PATH overrides it, and\n"
    "--anchor tpm2:nv=HANDLE[,pcrs=...][,tcti=CONF] keeps it in the TPM's NV counter (HANDLE and HANDLE+1),\n"
    "--anchor witness:CONFIG.json in the key server's freshness witness (CONFIG as for keyserver:).\n";

void AddCommon(CLI::App* cmd, Common& c, bool json) {
  cmd->add_option("SPEC", c.spec, "backing store, e.g. file:/data/vol.img")->required();
  cmd->add_option("--key", c.key, "KEYSPEC that opens the volume (key file path, file:PATH, pass:..., tpm2:...)")
      ->required();
  cmd->add_option("--anchor", c.anchor,
                  "anchor file, tpm2:nv=HANDLE or witness:CONFIG.json (default: next to the key file)");
  if (json) cmd->add_flag("--json", c.json, "print machine-readable JSON");
}

void AddArgon2(CLI::App* cmd, Common& c) {
  cmd->add_option("--argon2-ops", c.argon2_ops, "Argon2id passes for a new passphrase slot (default 3)");
  cmd->add_option("--argon2-memory", c.argon2_mib, "Argon2id memory in MiB for a new passphrase slot (default 64)");
}

VolumeAccessOptions Access(const Common& c) {
  VolumeAccessOptions o;
  o.anchor_path = c.anchor;
  o.keyspec_context.argon2 = {.ops = c.argon2_ops, .mem_bytes = c.argon2_mib << 20};
  return o;
}

// Opens the volume the options name; on failure reports why, sets the exit status and returns null.
std::unique_ptr<SealedVolume> OpenOrReport(Context& ctx, const Common& c) {
  auto v = OpenVolume(c.spec, c.key, Access(c));
  if (!v.ok()) {
    ctx.exit_code = ReportError(ctx.console, v.status());
    return nullptr;
  }
  return std::move(v).value();
}

std::string Footer(const std::string& what, const std::string& examples) {
  return "\n" + what + "\n" + kSpecHelp + "\nExamples:\n" + examples + "\n" + kExitCodesHelp;
}

Result<uint64_t> ParseSize(const std::string& text) {
  size_t i = 0;
  while (i < text.size() && isdigit(static_cast<unsigned char>(text[i]))) i++;
  if (i == 0 || i > 19) return InvalidArgument("size '" + text + "' is not a number of bytes");
  uint64_t v = std::stoull(text.substr(0, i));
  std::string unit = text.substr(i);
  uint64_t mul = 1;
  if (unit.empty() || unit == "B") mul = 1;
  else if (unit == "K" || unit == "KiB") mul = 1ull << 10;
  else if (unit == "M" || unit == "MiB") mul = 1ull << 20;
  else if (unit == "G" || unit == "GiB") mul = 1ull << 30;
  else return InvalidArgument("size '" + text + "' has an unknown unit (use bytes, K, M or G)");
  if (v > (uint64_t(1) << 50) / mul) return InvalidArgument("size '" + text + "' is too large");
  return v * mul;
}

nlohmann::json InfoJson(const VolumeInfo& i) {
  nlohmann::json slots = nlohmann::json::array();
  for (const auto& s : i.slots) slots.push_back({{"index", s.index}, {"type", std::string(KeySlotTypeName(s.type))}});
  return {{"store", i.store},
          {"anchor", i.anchor},
          {"volume_id", i.volume_id},
          {"format_version", i.format_version},
          {"cipher", std::string(CipherSuiteName(i.suite))},
          {"sector_size", i.sector_size},
          {"sector_count", i.sector_count},
          {"size_bytes", uint64_t(i.sector_size) * i.sector_count},
          {"record_size", i.record_size},
          {"record_count", i.record_count},
          {"tree_fanout", i.tree_fanout},
          {"tree_levels", i.tree_levels},
          {"counter", i.counter},
          {"root", i.root},
          {"sealed_writes", i.sealed_writes},
          {"slots", slots},
          {"unlocked_slot", i.unlocked_slot}};
}

void PrintInfo(std::ostream& out, const VolumeInfo& i) {
  out << "store:          " << i.store << "\n"
      << "volume id:      " << i.volume_id << "\n"
      << "format version: " << i.format_version << "\n"
      << "cipher:         " << CipherSuiteName(i.suite) << "\n"
      << "geometry:       " << i.sector_count << " sectors x " << i.sector_size << " bytes = "
      << uint64_t(i.sector_count) * i.sector_size << " bytes (store: " << i.record_count << " records x "
      << i.record_size << " bytes)\n"
      << "hash tree:      fanout " << i.tree_fanout << ", " << i.tree_levels << " levels\n"
      << "commit counter: " << i.counter << "\n"
      << "root:           " << i.root << "\n"
      << "anchor:         " << i.anchor << "\n"
      << "key slots:     ";
  for (const auto& s : i.slots) {
    out << " " << s.index << ":" << KeySlotTypeName(s.type) << (s.index == i.unlocked_slot ? "(this key)" : "");
  }
  out << "\n";
}

}  // namespace

void RegisterVolumeCommands(CLI::App& app, Context& ctx) {
  CLI::App* vol = app.add_subcommand("volume", "Create and manage sealed (encrypted, authenticated) volumes");
  vol->require_subcommand(1);
  vol->footer(std::string("\n") + kSpecHelp + "\n" + kExitCodesHelp);

  // create
  {
    struct Opts : Common {
      std::string size = "4M";
      uint32_t sector_size = 4096;
      std::string cipher = "xchacha20-poly1305";
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = vol->add_subcommand("create", "Create a new sealed volume on a backing store");
    AddCommon(cmd, *o, false);
    AddArgon2(cmd, *o);
    cmd->add_option("--size", o->size, "usable size in bytes (suffix K, M, G allowed; default 4M)");
    cmd->add_option("--sector-size", o->sector_size, "sector (erase block) size, power of two >= 256 (default 4096)");
    cmd->add_option("--cipher", o->cipher, "xchacha20-poly1305 (default) or aes-256-gcm");
    cmd->footer(Footer("Creates the store (never overwriting an existing file) with a random master key wrapped in\n"
                       "one key slot for --key, and records commit 0 in the anchor.",
                       "  coffer key new dev.key\n"
                       "  coffer volume create file:vol.img --key dev.key --size 16M\n"
                       "  coffer volume create file:small.img --key pass: --size 1M --sector-size 256\n"
                       "  coffer volume create file:vol.img --key tpm2:pcrs=sha256:0,7 --anchor tpm2:nv=0x01800c00\n"));
    cmd->callback([&ctx, o] {
      auto size = ParseSize(o->size);
      if (!size.ok()) {
        ctx.exit_code = ReportError(ctx.console, size.status());
        ctx.exit_code = kExitUsage;
        return;
      }
      auto suite = ParseCipherSuite(o->cipher);
      if (!suite.ok()) {
        ReportError(ctx.console, suite.status());
        ctx.exit_code = kExitUsage;
        return;
      }
      auto v = CreateVolume(o->spec, o->key, {.size_bytes = *size, .sector_size = o->sector_size, .suite = *suite},
                            Access(*o));
      if (!v.ok()) {
        ctx.exit_code = ReportError(ctx.console, v.status());
        return;
      }
      VolumeInfo i = (*v)->Info();
      ctx.console.out << "created sealed volume " << i.volume_id << " on " << i.store << ": " << i.sector_count
                      << " sectors x " << i.sector_size << " bytes, " << CipherSuiteName(i.suite) << "\n";
      ctx.exit_code = kExitOk;
    });
  }
  // info
  {
    auto o = std::make_shared<Common>();
    CLI::App* cmd = vol->add_subcommand("info", "Unlock a volume and show its header (id, cipher, geometry, slots)");
    AddCommon(cmd, *o, true);
    cmd->footer(Footer("Opening checks the header checksum and MAC and the anchor (rollback).",
                       "  coffer volume info file:vol.img --key dev.key\n"
                       "  coffer volume info file:vol.img --key pass:fd:3 --json 3<passphrase.txt\n"));
    cmd->callback([&ctx, o] {
      auto v = OpenOrReport(ctx, *o);
      if (!v) return;
      VolumeInfo i = v->Info();
      if (o->json) {
        ctx.console.out << InfoJson(i).dump(2) << "\n";
      } else {
        PrintInfo(ctx.console.out, i);
      }
      ctx.exit_code = kExitOk;
    });
  }
  // verify
  {
    auto o = std::make_shared<Common>();
    CLI::App* cmd = vol->add_subcommand("verify", "Read and authenticate every sector and the whole hash tree");
    AddCommon(cmd, *o, true);
    cmd->footer(Footer("Exit status 3 if any sector or tree node fails authentication; each failure names the sector.",
                       "  coffer volume verify file:vol.img --key dev.key\n"
                       "  coffer volume verify file:vol.img --key dev.key --json\n"));
    cmd->callback([&ctx, o] {
      auto v = OpenOrReport(ctx, *o);
      if (!v) return;
      auto r = v->Verify();
      if (!r.ok()) {
        ctx.exit_code = ReportError(ctx.console, r.status());
        return;
      }
      if (o->json) {
        ctx.console.out << nlohmann::json{{"ok", r->ok()},
                                          {"sectors", r->sectors},
                                          {"written_sectors", r->written_sectors},
                                          {"failures", r->failures}}
                               .dump(2)
                        << "\n";
      } else {
        ctx.console.out << "checked " << r->sectors << " sectors (" << r->written_sectors << " written)\n";
      }
      if (!r->ok()) {
        for (const auto& f : r->failures) ctx.console.err << "coffer: error: " << f << "\n";
        ctx.console.err << "coffer: hint: " << DefaultHint(DataLoss("")) << "\n";
        ctx.exit_code = kExitIntegrity;
        return;
      }
      if (!o->json) ctx.console.out << "volume OK\n";
      ctx.exit_code = kExitOk;
    });
  }
  // add-key
  {
    struct Opts : Common {
      std::string new_key;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = vol->add_subcommand("add-key", "Add a key slot so another key file or passphrase opens the volume");
    AddCommon(cmd, *o, false);
    AddArgon2(cmd, *o);
    cmd->add_option("--new-key", o->new_key, "KEYSPEC for the new slot")->required();
    cmd->footer(Footer("Up to 8 slots. The new slot wraps the same master key; no data is re-encrypted.",
                       "  coffer key new backup.key\n"
                       "  coffer volume add-key file:vol.img --key dev.key --new-key backup.key\n"
                       "  coffer volume add-key file:vol.img --key dev.key --new-key pass:\n"));
    cmd->callback([&ctx, o] {
      auto v = OpenOrReport(ctx, *o);
      if (!v) return;
      KeySpecContext kc = Access(*o).keyspec_context;
      kc.creating = true;
      auto method = ParseKeySpec(o->new_key, kc);
      if (!method.ok()) {
        ctx.exit_code = ReportError(ctx.console, method.status());
        return;
      }
      auto slot = v->AddKeySlot(**method);
      if (!slot.ok()) {
        ctx.exit_code = ReportError(ctx.console, slot.status());
        return;
      }
      ctx.console.out << "added key slot " << *slot << " (" << (*method)->Describe() << ")\n";
      ctx.exit_code = kExitOk;
    });
  }
  // remove-key
  {
    struct Opts : Common {
      int slot = -1;
      std::string remove_key;
      bool yes = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = vol->add_subcommand("remove-key", "Remove a key slot (by index or by the key it holds)");
    AddCommon(cmd, *o, false);
    auto* slot_opt = cmd->add_option("--slot", o->slot, "slot index to remove (see 'volume info')");
    auto* key_opt = cmd->add_option("--remove-key", o->remove_key, "remove the slot that this KEYSPEC opens");
    slot_opt->excludes(key_opt);
    cmd->add_flag("--yes", o->yes, "allow removing the last slot, which destroys the data for good (crypto-erase)");
    cmd->footer(Footer("Removing the last slot crypto-erases the volume and needs --yes.",
                       "  coffer volume remove-key file:vol.img --key dev.key --slot 1\n"
                       "  coffer volume remove-key file:vol.img --key dev.key --remove-key old.key\n"));
    cmd->callback([&ctx, o] {
      if (o->slot < 0 && o->remove_key.empty()) {
        ctx.console.err << "coffer: error: remove-key needs --slot N or --remove-key KEYSPEC\n";
        ctx.exit_code = kExitUsage;
        return;
      }
      auto v = OpenOrReport(ctx, *o);
      if (!v) return;
      int index = o->slot;
      if (!o->remove_key.empty()) {
        auto method = ParseKeySpec(o->remove_key, Access(*o).keyspec_context);
        if (!method.ok()) {
          ctx.exit_code = ReportError(ctx.console, method.status());
          return;
        }
        auto found = v->FindKeySlot(**method);
        if (!found.ok()) {
          ctx.exit_code = ReportError(ctx.console, found.status());
          return;
        }
        index = *found;
      }
      bool last = v->Info().slots.size() == 1;
      Status s = v->RemoveKeySlot(index, o->yes);
      if (!s.ok()) {
        ctx.exit_code = ReportError(
            ctx.console, s, s.code() == StatusCode::kFailedPrecondition ? "pass --yes to crypto-erase the volume" : "");
        return;
      }
      ctx.console.out << "removed key slot " << index << (last ? "; the volume is crypto-erased" : "") << "\n";
      ctx.exit_code = kExitOk;
    });
  }
  // erase
  {
    struct Opts : Common {
      bool yes = false;
    };
    auto o = std::make_shared<Opts>();
    CLI::App* cmd = vol->add_subcommand("erase", "Crypto-erase a volume: remove every key slot (irreversible)");
    AddCommon(cmd, *o, false);
    cmd->add_flag("--yes", o->yes, "confirm that the data is to be destroyed for good");
    cmd->footer(Footer("The wrapped master key is overwritten in the header; without it the sectors can never be\n"
                       "decrypted. Copies of the store made earlier still open with their old keys.",
                       "  coffer volume erase file:vol.img --key dev.key --yes\n"));
    cmd->callback([&ctx, o] {
      if (!o->yes) {
        ctx.console.err << "coffer: error: refusing to crypto-erase without --yes\n"
                        << "coffer: hint: this destroys the volume's data for good; add --yes if you mean it\n";
        ctx.exit_code = kExitUsage;
        return;
      }
      auto v = OpenOrReport(ctx, *o);
      if (!v) return;
      Status s = v->CryptoErase();
      if (!s.ok()) {
        ctx.exit_code = ReportError(ctx.console, s);
        return;
      }
      ctx.console.out << "volume crypto-erased: its key slots are gone and its data can never be decrypted\n";
      ctx.exit_code = kExitOk;
    });
  }
}

}  // namespace coffer::cli
