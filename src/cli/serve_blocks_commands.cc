// `coffer serve blocks`: runs the block host (src/blockhost) until SIGTERM/SIGINT, then drains
// in-flight requests and exits 0.
#include <pthread.h>
#include <signal.h>

#include <fstream>
#include <thread>

#include "cli/commands.h"
#include "coffer/blockhost/server.h"

namespace coffer::cli {
namespace {

struct ServeBlocksArgs {
  std::string data, listen = "127.0.0.1:8443";
  std::string tls_cert, tls_key, client_ca, crl, token_file, compat, access_log = "-";
  std::vector<std::string> allow;
  bool insecure_plaintext = false;
  int max_connections = 64;
  size_t max_body = 64 << 20, max_range = 16 << 20;
  uint64_t max_volume = uint64_t(64) << 30;
};

int RunServeBlocks(Context& ctx, const ServeBlocksArgs& a) {
  auto hp = net::ParseHostPort(a.listen);
  if (!hp.ok()) return ReportError(ctx.console, hp.status(), "use --listen HOST:PORT, e.g. 127.0.0.1:8443");
  blockhost::ServerOptions o;
  o.data_dir = a.data;
  o.listen_host = hp->first;
  o.listen_port = hp->second;
  if (!a.tls_cert.empty() || !a.tls_key.empty()) {
    if (a.tls_cert.empty() || a.tls_key.empty()) {
      ctx.console.err << "coffer: error: --tls-cert and --tls-key go together\n";
      return kExitUsage;
    }
    o.tls = net::TlsServerConfig{a.tls_cert, a.tls_key, a.client_ca, a.crl};
  } else if (!a.client_ca.empty() || !a.crl.empty()) {
    ctx.console.err << "coffer: error: --client-ca and --crl need --tls-cert and --tls-key\n";
    return kExitUsage;
  }
  o.insecure_plaintext = a.insecure_plaintext;
  o.token_file = a.token_file;
  o.allow = a.allow;
  o.compat_volume = a.compat;
  o.max_connections = a.max_connections;
  o.max_body_bytes = a.max_body;
  o.max_range_bytes = a.max_range;
  o.max_volume_bytes = a.max_volume;
  std::ofstream log_file;
  if (a.access_log == "-") {
    o.access_log = &ctx.console.err;
  } else if (a.access_log != "off") {
    log_file.open(a.access_log, std::ios::app);
    if (!log_file) return ReportError(ctx.console, IoError("cannot open access log " + a.access_log));
    o.access_log = &log_file;
  }
  auto server = blockhost::BlockHostServer::Create(std::move(o));
  if (!server.ok()) {
    int code = ReportError(ctx.console, server.status());
    return server.status().code() == StatusCode::kInvalidArgument ? kExitUsage : code;
  }
  // Signals go to one waiting thread (the handler-safe way to call Stop()).
  sigset_t set, old;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, &old);
  Status s = (*server)->Start();
  if (!s.ok()) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return ReportError(ctx.console, s);
  }
  ctx.console.err << "coffer: block host listening on " << (a.tls_cert.empty() ? "http://" : "https://")
                  << hp->first << ":" << (*server)->port() << " (data " << a.data << ")\n";
  blockhost::BlockHostServer* srv = server->get();
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != SIGUSR1) ctx.console.err << "coffer: signal " << sig << ": draining and stopping\n";
    srv->Stop();
  });
  s = (*server)->Run();
  pthread_kill(waiter.native_handle(), SIGUSR1);
  waiter.join();
  server->reset();
  // Swallow a pending SIGUSR1 before unblocking (in-process callers keep running).
  timespec zero{0, 0};
  while (sigtimedwait(&set, nullptr, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (!s.ok()) return ReportError(ctx.console, s);
  ctx.console.err << "coffer: block host stopped\n";
  return kExitOk;
}

}  // namespace

void RegisterServeBlocksCommands(CLI::App& serve, Context& ctx) {
  auto a = std::make_shared<ServeBlocksArgs>();
  CLI::App* c = serve.add_subcommand("blocks", "Run the block host: remote storage for sealed volumes");
  c->description(
      "Serve block host protocol v1 (/v1/volumes/NAME: create, info, delete, open, range reads, atomic batches)\n"
      "and optionally the original disk host protocol (/ReadBlock, /WriteBlock). Every acknowledged write is\n"
      "fsync'ed; batches are atomic across crashes. /healthz answers 200 when ready; /metrics is Prometheus text.\n"
      "TLS is required unless --insecure-plaintext is given with a loopback --listen address.");
  c->add_option("--data", a->data, "Directory holding the volumes (created if missing)")->required();
  c->add_option("--listen", a->listen, "HOST:PORT to listen on")->capture_default_str();
  c->add_option("--tls-cert", a->tls_cert, "Server certificate chain (PEM)");
  c->add_option("--tls-key", a->tls_key, "Server private key (PEM)");
  c->add_option("--client-ca", a->client_ca, "Require client certificates issued by this CA (mutual TLS)");
  c->add_option("--crl", a->crl, "Certificate revocation list (PEM) for client certificates");
  c->add_option("--token-file", a->token_file, "Per-device bearer tokens: lines '<device-id> <token>'");
  c->add_option("--allow", a->allow, "Only accept clients from this CIDR (repeatable)");
  c->add_flag("--insecure-plaintext", a->insecure_plaintext, "Plain HTTP (only on a loopback address; for tests)");
  c->add_option("--compat-disk-host", a->compat,
                "Also serve the original /ReadBlock and /WriteBlock from this volume (16384 x 272 bytes)");
  c->add_option("--max-connections", a->max_connections, "Concurrent connections (worker threads)")
      ->capture_default_str();
  c->add_option("--max-body-bytes", a->max_body, "Largest request body")->capture_default_str();
  c->add_option("--max-range-bytes", a->max_range, "Largest range read")->capture_default_str();
  c->add_option("--max-volume-bytes", a->max_volume, "Largest volume a client may create")->capture_default_str();
  c->add_option("--access-log", a->access_log, "Access log file, '-' for stderr, 'off' to disable (no data bytes)")
      ->capture_default_str();
  c->footer(std::string("\nExamples:\n"
                        "  coffer serve blocks --data /srv/coffer --listen 0.0.0.0:8443 \\\n"
                        "      --tls-cert host.pem --tls-key host.key --client-ca fleet-ca.pem --crl fleet.crl\n"
                        "  coffer serve blocks --data /srv/coffer --listen 10.0.0.5:8443 --tls-cert host.pem \\\n"
                        "      --tls-key host.key --token-file tokens.txt --allow 10.0.0.0/24\n"
                        "  coffer serve blocks --data /tmp/d --listen 127.0.0.1:5000 --insecure-plaintext \\\n"
                        "      --compat-disk-host legacy      # the original device app works unchanged\n\n") +
            kExitCodesHelp);
  c->callback([&ctx, a] { ctx.exit_code = RunServeBlocks(ctx, *a); });
}

}  // namespace coffer::cli
