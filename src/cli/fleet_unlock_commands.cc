// `coffer unlock` (get this device's key from the key server: escrow or Tang) and `coffer keyserver`
// (enroll devices, rotate Tang keys, bind a Tang key, report to the freshness witness).
#include <nlohmann/json.hpp>

#include "cli/fleet_cli.h"
#include "cli/fleet_keyserver_source.h"
#include "coffer/base/file_util.h"
#include "coffer/keyserver/client.h"
#include "coffer/keyserver/server.h"
#include "coffer/keyserver/jose.h"
#include "coffer/keyserver/tang.h"

namespace coffer::cli {
namespace {

const char* const kUnlockHelp = R"(Gets this device's key from the fleet key server over mutual TLS and writes it to --out
(0600, atomic). Servers are tried in order; unreachable ones are retried with exponential backoff and
jitter (cap 5 s) until --deadline. Escrow mode (default) fetches the secret enrolled for this device;
--binding FILE recovers a server-blind Tang key made by 'coffer keyserver bind' (works with tangd too).

Examples:
  coffer unlock --keyserver https://keys:8443 --keyserver https://keys2:8443 \
      --tls-cert dev.crt --tls-key dev.key --ca fleet-ca.pem --out /run/coffer/env.pw
  coffer unlock --binding /etc/coffer/tang.json --tls-cert dev.crt --tls-key dev.key --ca fleet-ca.pem --out /run/vol.key

Exit status: 0 unlocked; 4 the key server refused (certificate revoked/expired/unknown, not this device's
secret, address not allowed); 3 the witness saw a newer state (rolled back); 1 no server reachable
before the deadline, or other error; 2 usage error.)";

keyserver::ClientOptions ClientFrom(const KeyserverSourceOptions& o, Console& console) {
  keyserver::ClientOptions c;
  c.urls = o.urls;
  c.cert = o.tls_cert;
  c.key = o.tls_key;
  c.ca = o.ca;
  c.deadline = std::chrono::milliseconds(int64_t(o.deadline_seconds * 1000));
  Console* con = &console;
  c.on_retry = [con](const std::string& m) { con->err << "coffer: " << m << "\n"; };
  return c;
}

// Refusals are unlock failures (exit 4) with the server's reason; rollbacks stay kDataLoss (exit 3).
Status AsUnlockError(const Status& s) {
  if (s.code() == StatusCode::kPermissionDenied || s.code() == StatusCode::kNotFound) {
    return Unauthenticated("key server refused: " + s.message());
  }
  if (s.code() == StatusCode::kUnavailable) return Unavailable("key server unreachable: " + s.message());
  return s;
}

}  // namespace

void AddKeyserverSourceOptions(CLI::App* cmd, KeyserverSourceOptions& o) {
  cmd->add_option("--keyserver", o.urls, "Key server URL https://HOST:PORT (repeatable: tried in order)");
  cmd->add_option("--tls-cert", o.tls_cert, "This device's client certificate (PEM)");
  cmd->add_option("--tls-key", o.tls_key, "This device's client key (PEM, 0600)");
  cmd->add_option("--ca", o.ca, "CA certificate that signed the key server's certificate");
  cmd->add_option("--deadline", o.deadline_seconds, "Give up after this many seconds (default 30)");
  cmd->add_option("--secret-name", o.name, "Which of this device's escrowed secrets (default 'default')");
}

Result<SecretBytes> FetchEscrowSecret(const KeyserverSourceOptions& o, Console& console) {
  if (o.urls.empty()) return InvalidArgument("no --keyserver URL given");
  keyserver::KeyServerClient client(ClientFrom(o, console));
  auto s = client.GetSecret(o.name);
  if (!s.ok()) return AsUnlockError(s.status());
  return s;
}

void RegisterUnlockCommands(CLI::App& app, Context& ctx) {
  struct Args {
    KeyserverSourceOptions ks;
    std::string out, binding, data, device, name = "default", secret_file, trust, volume, root;
    bool replace = false;
    uint64_t counter = 0;
  };
  auto a = std::make_shared<Args>();

  CLI::App* unlock = app.add_subcommand("unlock", "Get this device's key from the fleet key server");
  unlock->footer(kUnlockHelp);
  AddKeyserverSourceOptions(unlock, a->ks);
  unlock->add_option("--binding", a->binding, "Tang binding file (server-blind mode)");
  unlock->add_option("--out", a->out, "Write the key here (0600, atomic)")->required();
  unlock->callback([&ctx, a] {
    Console& con = ctx.console;
    SecretBytes key;
    if (!a->binding.empty()) {
      auto text = ReadFileBytes(a->binding);
      if (!text.ok()) { ctx.exit_code = ReportError(con, text.status()); return; }
      auto j = nlohmann::json::parse(text->begin(), text->end(), nullptr, false);
      auto b = tang::TangBinding::FromJson(j);
      if (!b.ok()) { ctx.exit_code = ReportError(con, b.status()); return; }
      KeyserverSourceOptions ks = a->ks;
      if (ks.urls.empty()) ks.urls = {b->url};
      keyserver::KeyServerClient client(ClientFrom(ks, con));
      auto k = client.TangRecover(*b);
      if (!k.ok()) { ctx.exit_code = ReportError(con, AsUnlockError(k.status())); return; }
      key = std::move(*k);
    } else {
      auto k = FetchEscrowSecret(a->ks, con);
      if (!k.ok()) { ctx.exit_code = ReportError(con, k.status()); return; }
      key = std::move(*k);
    }
    Status s = WriteFileAtomic(a->out, key.reveal(), {0600, true});
    if (!s.ok()) { ctx.exit_code = ReportError(con, s); return; }
    con.err << "coffer: unlocked; key written to " << a->out << " (0600)\n";
    ctx.exit_code = kExitOk;
  });

  CLI::App* ks = app.add_subcommand("keyserver", "Key server administration and device-side setup");
  ks->require_subcommand(1);
  ks->footer(std::string("\n") + kExitCodesHelp);

  CLI::App* enroll = ks->add_subcommand("enroll", "Store an escrow secret for a device (DATA/devices/ID/NAME.secret)");
  enroll->footer(std::string(R"(Without --secret-file a random 256-bit secret (base64url text) is generated. The secret is never
printed; use the file (0600) on the admin machine to encrypt values for the device, e.g.
  coffer keyserver enroll --data /var/lib/coffer-keys --device pump-0042
  coffer env encrypt API_KEY --password-file /var/lib/coffer-keys/devices/pump-0042/default.secret < key.txt)") +
                 "\n\n" + kExitCodesHelp);
  enroll->add_option("--data", a->data, "Key server data directory")->required();
  enroll->add_option("--device", a->device, "Device id (the CN of its certificate)")->required();
  enroll->add_option("--name", a->name, "Secret name (default 'default', the one /key serves)");
  enroll->add_option("--secret-file", a->secret_file, "Take the secret from this file instead of generating one");
  enroll->add_flag("--replace", a->replace, "Replace an existing secret");
  enroll->callback([&ctx, a] {
    Console& con = ctx.console;
    std::string secret;
    if (!a->secret_file.empty()) {
      auto p = ReadFleetPasswordFile(a->secret_file);
      if (!p.ok()) { ctx.exit_code = ReportError(con, p.status()); return; }
      secret = std::string(p->reveal_string());
    } else {
      SecretBytes r = SecretBytes::Random(32);
      secret = jose::B64UrlEncode(r.reveal());
    }
    Status s = keyserver::EnrollDevice(a->data, a->device, a->name, secret, a->replace);
    std::fill(secret.begin(), secret.end(), '\0');
    if (!s.ok()) { ctx.exit_code = ReportError(con, s); return; }
    con.out << "enrolled " << a->device << " secret '" << a->name << "' in " << a->data << "/devices/" << a->device
            << "/" << a->name << ".secret (0600)\n";
    ctx.exit_code = kExitOk;
  });

  CLI::App* rotate = ks->add_subcommand("rotate", "Rotate the Tang keys (old keys keep answering recovery)");
  rotate->footer(std::string("Example:\n  coffer keyserver rotate --data /var/lib/coffer-keys\n\n") + kExitCodesHelp);
  rotate->add_option("--data", a->data, "Key server data directory")->required();
  rotate->callback([&ctx, a] {
    Status s = keyserver::RotateTangKeys(a->data);
    if (!s.ok()) { ctx.exit_code = ReportError(ctx.console, s); return; }
    ctx.console.out << "rotated Tang keys in " << a->data << "/tang (previous keys hidden, still recoverable)\n";
    ctx.exit_code = kExitOk;
  });

  CLI::App* bind = ks->add_subcommand("bind", "Make a server-blind (Tang) key: writes the binding and the key");
  bind->footer(std::string(R"(Fetches the server's signed advertisement, checks it (and with --trust THP that it is signed by
that key), and derives a fresh key with the McCallum-Relyea exchange. The binding holds only public
values; the key goes to --out (0600). Works with coffer's server (https, mTLS) and plain tangd (http).
Example:
  coffer keyserver bind --keyserver http://tang.local:9090 --trust <thumbprint> --binding tang.json --out vol.key)") +
               "\n\n" + kExitCodesHelp);
  AddKeyserverSourceOptions(bind, a->ks);
  bind->add_option("--trust", a->trust, "Thumbprint of the server signing key to require");
  bind->add_option("--binding", a->binding, "Write the binding here")->required();
  bind->add_option("--out", a->out, "Write the key here (0600)")->required();
  bind->callback([&ctx, a] {
    Console& con = ctx.console;
    if (a->ks.urls.size() != 1) { ctx.exit_code = ReportError(con, InvalidArgument("give exactly one --keyserver")); return; }
    keyserver::KeyServerClient client(ClientFrom(a->ks, con));
    auto adv = client.TangAdvertisement();
    if (!adv.ok()) { ctx.exit_code = ReportError(con, AsUnlockError(adv.status())); return; }
    auto b = tang::Bind(a->ks.urls[0], *adv, a->trust);
    if (!b.ok()) { ctx.exit_code = ReportError(con, b.status()); return; }
    Status s = WriteFileAtomic(a->binding, AsBytes(b->binding.ToJson().dump(2) + "\n"), {0644, true});
    if (s.ok()) s = WriteFileAtomic(a->out, b->key.reveal(), {0600, true});
    if (!s.ok()) { ctx.exit_code = ReportError(con, s); return; }
    con.out << "bound to " << a->ks.urls[0] << " key " << b->binding.kid << "\n";
    ctx.exit_code = kExitOk;
  });

  CLI::App* wit = ks->add_subcommand("witness", "Report (volume, counter, root) to the freshness witness");
  wit->footer(std::string(R"(The server refuses a report older than the newest it has seen for this device's volume (exit 3).
Example:
  coffer keyserver witness --keyserver https://keys:8443 --tls-cert dev.crt --tls-key dev.key --ca ca.pem \
      --volume 5f2a... --counter 42 --root 9c0e...)") + "\n\n" + kExitCodesHelp);
  AddKeyserverSourceOptions(wit, a->ks);
  wit->add_option("--volume", a->volume, "Volume id (hex)")->required();
  wit->add_option("--counter", a->counter, "Anchor counter")->required();
  wit->add_option("--root", a->root, "Root hash (hex)")->required();
  wit->callback([&ctx, a] {
    Console& con = ctx.console;
    keyserver::KeyServerClient client(ClientFrom(a->ks, con));
    auto r = client.ReportWitness(a->volume, a->counter, a->root);
    if (!r.ok()) { ctx.exit_code = ReportError(con, AsUnlockError(r.status())); return; }
    con.out << "witness accepted counter " << r->counter << "\n";
    ctx.exit_code = kExitOk;
  });
}

}  // namespace coffer::cli
