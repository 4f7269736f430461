// `coffer serve keys`: the fleet key server (mTLS escrow, secure-store /key compatibility, Tang, witness).
#include <signal.h>

#include "cli/commands.h"
#include "coffer/keyserver/server.h"

namespace coffer::cli {
namespace {

const char* const kServeKeysHelp = R"(Serves device secrets over HTTPS with mutual TLS. Each device is identified by its client
certificate (CN = device id, issued by 'coffer pki issue'); it may read only its own secrets.
Certificates revoked in --crl are refused (the file is re-read when it changes). Every request is
written to DATA/audit.log (who, when, what, allowed or denied; never a secret).
Data directory: DATA/devices/ID/NAME.secret (enrolled with 'coffer keyserver enroll'), DATA/tang/*.jwk
(Tang keys, tangd's layout; rotate with 'coffer keyserver rotate'), DATA/witness/ID/VOLUME.json.
Endpoints: /v1/secret/NAME, /key (with --compat-key-endpoint: 201 {"password": ...} for secure-store
clients), /v1/witness, /adv and /rec/KID (Tang, behind the same mTLS identity). --tang-listen adds a
plain-HTTP Tang listener for stock clevis clients (no identity there: use --allow).

Examples:
  coffer serve keys --data /var/lib/coffer-keys --listen 0.0.0.0:8443 \
      --tls-cert fleet-ca/servers/keys.crt --tls-key fleet-ca/servers/keys.key \
      --client-ca fleet-ca/ca.crt --crl fleet-ca/crl.pem --allow 10.0.0.0/8
  coffer serve keys ... --compat-key-endpoint            # existing secure-store clients
  coffer serve keys ... --tang-listen 127.0.0.1:9090     # clevis encrypt tang '{"url":"http://..."}')";

Status SplitHostPort(const std::string& s, std::string& host, int& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("'" + s + "' is not HOST:PORT");
  host = s.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string p = s.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos || std::stoi(p) > 65535) {
    return InvalidArgument("'" + s + "' has a bad port");
  }
  port = std::stoi(p);
  return Status::Ok();
}

}  // namespace

void RegisterServeKeysCommands(CLI::App& serve, Context& ctx) {
  struct Args {
    keyserver::ServerOptions o;
    std::string listen = "127.0.0.1:8443", tang_listen;
  };
  auto a = std::make_shared<Args>();
  CLI::App* keys = serve.add_subcommand("keys", "Run the fleet key server (mTLS, escrow, Tang, witness)");
  keys->footer(std::string(kServeKeysHelp) + "\n\n" + kExitCodesHelp);
  keys->add_option("--data", a->o.data_dir, "State directory (created 0700)")->required();
  keys->add_option("--listen", a->listen, "HOST:PORT for HTTPS (default 127.0.0.1:8443; port 0 picks one)");
  keys->add_option("--tls-cert", a->o.tls_cert, "Server certificate (PEM)")->required();
  keys->add_option("--tls-key", a->o.tls_key, "Server key (PEM)")->required();
  keys->add_option("--client-ca", a->o.client_ca, "CA that issues device certificates (PEM)")->required();
  keys->add_option("--crl", a->o.crl, "Revocation list of that CA (PEM; re-read when it changes)");
  keys->add_option("--allow", a->o.allow, "Allowed client address or CIDR (repeatable; default all)");
  keys->add_option("--rate", a->o.rate_per_second, "Requests per second per device (default 20)");
  keys->add_option("--burst", a->o.burst, "Burst size per device (default 40)");
  keys->add_flag("--compat-key-endpoint", a->o.compat_key_endpoint,
                 "Serve secure-store's GET /key (201 {\"password\": <device's 'default' secret>})");
  keys->add_option("--tang-listen", a->tang_listen, "Also serve plain-HTTP Tang (/adv, /rec) on HOST:PORT");
  keys->callback([&ctx, a] {
    Console& con = ctx.console;
    Status s = SplitHostPort(a->listen, a->o.host, a->o.port);
    if (s.ok() && !a->tang_listen.empty()) s = SplitHostPort(a->tang_listen, a->o.tang_host, a->o.tang_port);
    if (!s.ok()) { ctx.exit_code = ReportError(con, s); return; }
    auto server = keyserver::KeyServer::Create(a->o);
    if (!server.ok()) { ctx.exit_code = ReportError(con, server.status()); return; }
    // Signals are taken synchronously by this thread; the server threads inherit the mask.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    s = (*server)->Start();
    if (!s.ok()) { ctx.exit_code = ReportError(con, s); return; }
    con.err << "coffer: key server listening on https://" << a->o.host << ":" << (*server)->port();
    if ((*server)->tang_port() > 0) con.err << " (plain Tang on http://" << a->o.tang_host << ":" << (*server)->tang_port() << ")";
    con.err << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    (*server)->Stop();
    con.err << "coffer: key server stopped\n";
    ctx.exit_code = kExitOk;
  });
}

}  // namespace coffer::cli
