// `coffer pki init|issue|revoke` (the fleet CA and per-device certificates) and `coffer certs generate`
// (secure-store's single self-signed certificate).
#include "cli/fleet_cli.h"
#include "coffer/pki/pki.h"

namespace coffer::cli {
namespace {

const char* const kPkiHelp = R"(The fleet CA lives in one directory (keep it off the devices and the key server):
  ca.crt ca.key(0600) crl.pem devices/ID.crt devices/ID.key(0600) servers/NAME.crt servers/NAME.key(0600)
Examples:
  coffer pki init --dir fleet-ca
  coffer pki issue --dir fleet-ca --device pump-0042 --days 365
  coffer pki issue --dir fleet-ca --server keys.example --host keys.example --host 10.0.0.5
  coffer pki revoke --dir fleet-ca pump-0042      # then copy crl.pem to the key servers (reloaded live))";

}  // namespace

void RegisterPkiCommands(CLI::App& app, Context& ctx) {
  CLI::App* pki = app.add_subcommand("pki", "Fleet CA: per-device client certificates and revocation");
  pki->require_subcommand(1);
  pki->footer(std::string(kPkiHelp) + "\n\n" + kExitCodesHelp);

  struct Args {
    std::string dir, device, server, name = "coffer fleet CA", id;
    std::vector<std::string> hosts;
    int days = 365, ca_days = 3650;
  };
  auto a = std::make_shared<Args>();

  CLI::App* init = pki->add_subcommand("init", "Create a fleet CA (ECDSA P-256) in --dir");
  init->footer(std::string(kPkiHelp) + "\n\n" + kExitCodesHelp);
  init->add_option("--dir", a->dir, "CA directory (created 0700)")->required();
  init->add_option("--name", a->name, "CA common name");
  init->add_option("--days", a->ca_days, "CA validity in days (default 3650)");
  init->callback([&ctx, a] {
    pki::CaOptions o;
    o.name = a->name;
    o.days = a->ca_days;
    Status s = pki::InitCa(a->dir, o);
    if (!s.ok()) { ctx.exit_code = ReportError(ctx.console, s); return; }
    ctx.console.out << "fleet CA created in " << a->dir << " (ca.crt, ca.key 0600, crl.pem)\n";
    ctx.exit_code = kExitOk;
  });

  CLI::App* issue = pki->add_subcommand("issue", "Issue a device client certificate (or a server certificate)");
  issue->footer(std::string(kPkiHelp) + "\n\n" + kExitCodesHelp);
  issue->add_option("--dir", a->dir, "CA directory")->required();
  auto* dev = issue->add_option("--device", a->device, "Device id (1-64 of A-Z a-z 0-9 . _ -)");
  auto* srv = issue->add_option("--server", a->server, "Issue a server certificate with this name instead");
  dev->excludes(srv);
  issue->add_option("--host", a->hosts, "Server certificate DNS name or IP (repeatable; default the name)");
  issue->add_option("--days", a->days, "Validity in days, 1..3650 (default 365)");
  issue->callback([&ctx, a] {
    if (a->device.empty() == a->server.empty()) {
      ctx.exit_code = ReportError(ctx.console, InvalidArgument("give --device ID or --server NAME"));
      return;
    }
    pki::IssueOptions o;
    o.days = a->days;
    o.server = !a->server.empty();
    o.hosts = a->hosts;
    auto r = pki::Issue(a->dir, o.server ? a->server : a->device, o);
    if (!r.ok()) { ctx.exit_code = ReportError(ctx.console, r.status()); return; }
    ctx.console.out << "certificate " << r->cert_path << "\nkey " << r->key_path << " (0600)\nserial " << r->serial_hex
                    << "\n";
    ctx.exit_code = kExitOk;
  });

  CLI::App* revoke = pki->add_subcommand("revoke", "Revoke a device certificate (updates crl.pem)");
  revoke->footer(std::string(kPkiHelp) + "\n\n" + kExitCodesHelp);
  revoke->add_option("--dir", a->dir, "CA directory")->required();
  revoke->add_option("id", a->id, "Device id")->required();
  revoke->callback([&ctx, a] {
    Status s = pki::Revoke(a->dir, a->id);
    if (!s.ok()) { ctx.exit_code = ReportError(ctx.console, s); return; }
    ctx.console.out << "revoked " << a->id << "; servers reading " << a->dir << "/crl.pem refuse it now\n";
    ctx.exit_code = kExitOk;
  });

  // ---- certs generate (secure-store compatible single certificate) ----
  struct CertArgs {
    std::string hostname = "localhost", out = ".";
    bool base64 = false;
    int days = 365;
  };
  auto c = std::make_shared<CertArgs>();
  CLI::App* certs = app.add_subcommand("certs", "secure-store's single mTLS certificate setup");
  certs->require_subcommand(1);
  CLI::App* gen = certs->add_subcommand("generate", "Write one self-signed certificate and key (key 0600)");
  gen->footer(std::string(R"(Writes OUT/cert.pem and OUT/key.pem (0600), and with --base64 also cert.pem.b64 and
key.pem.b64 (0600) for fleet variables. This is the original single shared certificate: prefer
'coffer pki' (per-device certificates that can be revoked).
Examples:
  coffer certs generate --hostname store.local --out keys
  coffer certs generate --hostname store.local --base64 --out keys)") + "\n\n" + kExitCodesHelp);
  gen->add_option("--hostname", c->hostname, "Server host name (CN and SAN; default localhost)");
  gen->add_option("--out", c->out, "Output directory (default .)");
  gen->add_flag("--base64", c->base64, "Also write base64 forms (*.b64)");
  gen->add_option("--days", c->days, "Validity in days (default 365)");
  gen->callback([&ctx, c] {
    Status s = pki::GenerateSingleCert(c->out, c->hostname, c->days, c->base64);
    if (!s.ok()) { ctx.exit_code = ReportError(ctx.console, s); return; }
    ctx.console.out << "wrote " << c->out << "/cert.pem and " << c->out << "/key.pem (0600)"
                    << (c->base64 ? " and their .b64 forms" : "") << "\n";
    ctx.exit_code = kExitOk;
  });
}

}  // namespace coffer::cli
