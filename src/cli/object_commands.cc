// `coffer objectd` (the trusted object daemon) and `coffer object put|get|rm|ls|mv|info` (its client).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <fstream>
#include <memory>

#include "cli/commands.h"
#include "coffer/base/bytes.h"
#include "coffer/base/file_util.h"
#include "coffer/objectd/server.h"
#include "coffer/objects/local_store.h"
#include "coffer/objects/protocol.h"

namespace coffer::cli {
namespace {

using objects::ObjectConnection;

struct ClientArgs {
  std::string socket;
  std::string id;
  bool id_hex = false;
  std::string share;
};

Result<uint64_t> ParseSize(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 15) return InvalidArgument("'" + text + "' is not a size in bytes");
  uint64_t v = std::stoull(text.substr(0, digits));
  std::string suffix = text.substr(digits);
  if (suffix.empty()) return v;
  if (suffix == "k" || suffix == "K" || suffix == "KiB") return v << 10;
  if (suffix == "M" || suffix == "m" || suffix == "MiB") return v << 20;
  if (suffix == "G" || suffix == "g" || suffix == "GiB") return v << 30;
  return InvalidArgument("'" + text + "' has an unknown size suffix (use K, M or G)");
}

Result<std::string> DecodeId(const std::string& text, bool hex, const char* what = "object id") {
  std::string id = text;
  if (hex) {
    auto raw = HexDecode(text);
    if (!raw.ok()) return InvalidArgument(std::string(what) + " given with --id-hex is not hex: " + raw.status().message());
    id.assign(raw->begin(), raw->end());
  }
  COFFER_RETURN_IF_ERROR(objects::ValidateId(id));
  return id;
}

// Shows an id as text when it is printable, else as hex:...
std::string ShowId(const std::string& id) {
  for (unsigned char c : id) {
    if (c < 0x20 || c >= 0x7f) return "hex:" + HexEncode(AsBytes(id));
  }
  return id;
}

void AddClientOptions(CLI::App* cmd, ClientArgs& a, bool with_id = true) {
  cmd->add_option("--socket", a.socket, "The object daemon's socket")->required();
  cmd->add_option("--share", a.share, "Use the shared namespace NAME (configured in the daemon) instead of your own");
  if (with_id) {
    cmd->add_option("ID", a.id, "Object id: 1 to 64 bytes, taken as given (raw bytes)")->required();
    cmd->add_flag("--id-hex", a.id_hex, "ID (and NEW_ID) are hex-encoded bytes (for ids with binary bytes)");
  }
}

int Fail(Context& ctx, const Status& st) {
  std::string hint;
  if (st.code() == StatusCode::kUnavailable) hint = "is 'coffer objectd' running on that --socket path?";
  if (st.code() == StatusCode::kAlreadyExists) hint = "the id is taken: remove it first, or pick another id";
  if (st.code() == StatusCode::kNoSpace) hint = "remove objects you no longer need, or raise the daemon's --quota";
  return ReportError(ctx.console, st, hint);
}

Status PutObject(ObjectConnection& c, const ClientArgs& a, const std::string& file, bool overwrite) {
  int fd = file == "-" ? 0 : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening " + file, errno);
  struct Closer {
    int fd;
    ~Closer() {
      if (fd > 0) ::close(fd);
    }
  } closer{fd};
  uint32_t flags = objects::kAccessRead | objects::kAccessWrite | objects::kAccessWriteMeta |
                   (overwrite ? objects::kOverwrite : 0);
  COFFER_ASSIGN_OR_RETURN(uint32_t h, c.Create(a.share, a.id, flags, {}));
  Bytes buf(objects::kMaxChunk);
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    Status st;
    if (n < 0) st = ErrnoStatus("reading " + file, errno);
    if (n > 0) st = c.Write(h, ByteSpan(buf.data(), size_t(n)));
    if (!st.ok()) {
      (void)c.CloseAndDelete(h);  // discard the half-written object; an older one stays
      return st;
    }
    if (n == 0) break;
  }
  return c.Close(h);  // commits: the new object replaces any old one atomically
}

Status GetObject(ObjectConnection& c, const ClientArgs& a, const std::string& file, uint64_t* size) {
  COFFER_ASSIGN_OR_RETURN(uint32_t h, c.Open(a.share, a.id, objects::kAccessRead | objects::kShareRead));
  std::string tmp;
  int fd = 1;
  if (file != "-") {
    tmp = file + ".coffer-tmp";
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      (void)c.Close(h);
      return ErrnoStatus("creating " + tmp, errno);
    }
  }
  Bytes buf(objects::kMaxChunk);
  Status st;
  *size = 0;
  while (st.ok()) {
    auto n = c.Read(h, buf);
    if (!n.ok()) {
      st = n.status();
      break;
    }
    if (*n == 0) break;
    size_t off = 0;
    while (off < *n) {
      ssize_t w = ::write(fd, buf.data() + off, *n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        st = ErrnoStatus("writing " + (tmp.empty() ? std::string("stdout") : file), errno);
        break;
      }
      off += size_t(w);
    }
    *size += *n;
  }
  Status closed = c.Close(h);
  if (st.ok()) st = closed;
  if (!tmp.empty()) {
    if (st.ok() && ::fsync(fd) != 0) st = ErrnoStatus("writing " + file, errno);
    ::close(fd);
    if (st.ok() && ::rename(tmp.c_str(), file.c_str()) != 0) st = ErrnoStatus("renaming onto " + file, errno);
    if (!st.ok()) ::unlink(tmp.c_str());
  }
  return st;
}

int RunDaemon(Context& ctx, const std::string& volume, const std::string& key, const std::string& socket,
              const std::string& quota_text, const std::string& share_config, const std::string& mode_text,
              bool memory) {
  objects::StoreOptions options;
  if (!quota_text.empty()) {
    auto q = ParseSize(quota_text);
    if (!q.ok()) return ReportError(ctx.console, q.status().WithContext("--quota"));
    options.quota_bytes = *q;
  }
  if (!share_config.empty()) {
    auto text = ReadFileBytes(share_config);
    if (!text.ok()) return ReportError(ctx.console, text.status());
    auto shares = objects::ParseShareConfig(AsStringView(*text));
    if (!shares.ok()) return ReportError(ctx.console, shares.status().WithContext(share_config));
    options.shares = std::move(shares).value();
  }
  mode_t mode = 0666;
  if (!mode_text.empty()) {
    char* end = nullptr;
    unsigned long m = std::strtoul(mode_text.c_str(), &end, 8);
    if (end == mode_text.c_str() || *end != '\0' || m > 0777) {
      ctx.console.err << "coffer: error: --socket-mode '" << mode_text << "' is not an octal mode like 0660\n";
      return kExitUsage;
    }
    mode = mode_t(m);
  }
  if (memory == !volume.empty()) {
    ctx.console.err << "coffer: error: give --volume SPEC with --key KEYSPEC (or --memory for a volatile test store)\n";
    return kExitUsage;
  }
  if (!memory && key.empty()) {
    ctx.console.err << "coffer: error: --volume needs --key KEYSPEC\n";
    return kExitUsage;
  }
  uint64_t quota = options.quota_bytes;
  auto local = memory ? objects::OpenMemoryStore(std::move(options))
                      : objects::OpenSealedStore(volume, key, std::move(options));
  if (!local.ok()) return ReportError(ctx.console, local.status());

  // Signals are taken synchronously by this thread; server threads inherit the blocked mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  objectd::ServerOptions so;
  so.socket_path = socket;
  so.socket_mode = mode;
  so.quota_bytes = quota;
  auto server = objectd::ObjectServer::Start((*local)->store(), so);
  if (!server.ok()) return ReportError(ctx.console, server.status());
  ctx.console.err << "coffer objectd: serving objects on " << socket << "\n" << std::flush;
  int sig = 0;
  sigwait(&sigs, &sig);
  ctx.console.err << "coffer objectd: signal " << sig << ", stopping\n";
  (*server)->Stop();
  Status closed = (*local)->Close();
  if (!closed.ok()) return ReportError(ctx.console, closed);
  return kExitOk;
}

}  // namespace

void RegisterObjectCommands(CLI::App& app, Context& ctx) {
  // ---- objectd ----
  struct DaemonArgs {
    std::string volume, key, socket, quota, share_config, mode;
    bool memory = false;
  };
  auto d = std::make_shared<DaemonArgs>();
  CLI::App* daemon = app.add_subcommand("objectd", "Run the trusted object daemon (the only process holding the keys)");
  daemon->add_option("--volume", d->volume, "Sealed volume holding the objects (e.g. file:/var/lib/objects.vol)");
  daemon->add_option("--key", d->key, "Key spec that unlocks the volume (e.g. a key file path)");
  daemon->add_option("--socket", d->socket, "Unix socket path to listen on")->required();
  daemon->add_option("--quota", d->quota, "Bytes each namespace may hold (e.g. 64M); default: the volume's capacity");
  daemon->add_option("--share-config", d->share_config,
                     "JSON file naming shared namespaces: {\"shares\": {\"NAME\": [uid, ...]}}");
  daemon->add_option("--socket-mode", d->mode, "Octal permissions of the socket (default 0666)");
  daemon->add_flag("--memory", d->memory, "Keep objects in memory only (tests; nothing is persisted)");
  daemon->footer(std::string(
                     "\nEach client gets a private namespace named by its uid, as the kernel reports it\n"
                     "(SO_PEERCRED); requests never name an identity. Stops on SIGINT/SIGTERM.\n\n"
                     "Examples:\n"
                     "  coffer objectd --volume file:/var/lib/coffer/objects.vol --key /etc/coffer/objects.key \\\n"
                     "      --socket /run/coffer/objects.sock --quota 64M\n\n") +
                 kExitCodesHelp);
  daemon->callback([&ctx, d] {
    ctx.exit_code = RunDaemon(ctx, d->volume, d->key, d->socket, d->quota, d->share_config, d->mode, d->memory);
  });

  // ---- object ... ----
  CLI::App* object = app.add_subcommand("object", "Store and fetch objects through the object daemon");
  object->require_subcommand(1);
  object->footer(std::string("\nExamples:\n"
                             "  coffer object put --socket /run/coffer/objects.sock 'object#1' ./data.bin\n"
                             "  coffer object get --socket /run/coffer/objects.sock 'object#1' ./back.bin\n"
                             "  coffer object ls --socket /run/coffer/objects.sock --json\n\n") +
                 kExitCodesHelp);
  auto a = std::make_shared<ClientArgs>();
  auto file = std::make_shared<std::string>();
  auto new_id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto no_overwrite = std::make_shared<bool>(false);

  auto connect = [a](Context& ctx) -> std::unique_ptr<ObjectConnection> {
    auto c = objects::ConnectObjectDaemon(a->socket);
    if (!c.ok()) {
      ctx.exit_code = Fail(ctx, c.status());
      return nullptr;
    }
    return std::move(c).value();
  };
  auto decode = [a](Context& ctx) -> bool {
    auto id = DecodeId(a->id, a->id_hex);
    if (!id.ok()) {
      ctx.console.err << "coffer: error: " << id.status().message() << "\n";
      ctx.exit_code = kExitUsage;
      return false;
    }
    a->id = *id;
    return true;
  };

  CLI::App* put = object->add_subcommand("put", "Store FILE (or - for stdin) as object ID, replacing it atomically");
  AddClientOptions(put, *a);
  put->add_option("FILE", *file, "File to store, or - for standard input")->required();
  put->add_flag("--no-overwrite", *no_overwrite, "Fail if the object exists instead of replacing it");
  put->footer(std::string("\nReaders see the old object or the new one, never a mix; if the upload fails the\n"
                          "old object stays.\n\nExample:\n  coffer object put --socket S 'object#1' ./data.bin\n"
                          "  coffer object put --socket S --id-hex 00ff2e2e ./data.bin\n\n") +
              kExitCodesHelp);
  put->callback([&ctx, a, file, no_overwrite, connect, decode] {
    if (!decode(ctx)) return;
    auto c = connect(ctx);
    if (!c) return;
    Status st = PutObject(*c, *a, *file, !*no_overwrite);
    if (!st.ok()) ctx.exit_code = Fail(ctx, st);
  });

  CLI::App* get = object->add_subcommand("get", "Write object ID to FILE (or - for stdout)");
  AddClientOptions(get, *a);
  get->add_option("FILE", *file, "Output file (written whole, then renamed into place), or - for stdout")->required();
  get->footer(std::string("\nExample:\n  coffer object get --socket S 'object#1' ./back.bin\n\n") + kExitCodesHelp);
  get->callback([&ctx, a, file, connect, decode] {
    if (!decode(ctx)) return;
    auto c = connect(ctx);
    if (!c) return;
    uint64_t size = 0;
    Status st = GetObject(*c, *a, *file, &size);
    if (!st.ok()) ctx.exit_code = Fail(ctx, st);
  });

  CLI::App* rm = object->add_subcommand("rm", "Delete object ID");
  AddClientOptions(rm, *a);
  rm->footer(std::string("\nExample:\n  coffer object rm --socket S 'object#1'\n\n") + kExitCodesHelp);
  rm->callback([&ctx, a, connect, decode] {
    if (!decode(ctx)) return;
    auto c = connect(ctx);
    if (!c) return;
    auto h = (*c).Open(a->share, a->id, objects::kAccessWriteMeta);
    Status st = h.ok() ? c->CloseAndDelete(*h) : h.status();
    if (!st.ok()) ctx.exit_code = Fail(ctx, st);
  });

  CLI::App* mv = object->add_subcommand("mv", "Rename object ID to NEW_ID (fails if NEW_ID exists)");
  AddClientOptions(mv, *a);
  mv->add_option("NEW_ID", *new_id, "The new id")->required();
  mv->footer(std::string("\nExample:\n  coffer object mv --socket S 'object#1' 'object#2'\n\n") + kExitCodesHelp);
  mv->callback([&ctx, a, new_id, connect, decode] {
    if (!decode(ctx)) return;
    auto to = DecodeId(*new_id, a->id_hex, "new object id");
    if (!to.ok()) {
      ctx.console.err << "coffer: error: " << to.status().message() << "\n";
      ctx.exit_code = kExitUsage;
      return;
    }
    auto c = connect(ctx);
    if (!c) return;
    auto h = c->Open(a->share, a->id, objects::kAccessWriteMeta);
    Status st = h.ok() ? c->Rename(*h, *to) : h.status();
    if (h.ok()) {
      Status closed = c->Close(*h);
      if (st.ok()) st = closed;
    }
    if (!st.ok()) ctx.exit_code = Fail(ctx, st);
  });

  CLI::App* ls = object->add_subcommand("ls", "List your objects (or a share's)");
  AddClientOptions(ls, *a, false);
  ls->add_flag("--json", *json, "Print a JSON array of {id, id_hex}");
  ls->footer(std::string("\nIds with unprintable bytes are shown as hex:...\n\nExample:\n"
                         "  coffer object ls --socket S\n\n") +
             kExitCodesHelp);
  ls->callback([&ctx, a, json, connect] {
    auto c = connect(ctx);
    if (!c) return;
    auto ids = objects::ListAll(*c, a->share);
    if (!ids.ok()) {
      ctx.exit_code = Fail(ctx, ids.status());
      return;
    }
    if (*json) {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& id : *ids) {
        arr.push_back({{"id", ShowId(id)}, {"id_hex", HexEncode(AsBytes(id))}});
      }
      ctx.console.out << arr.dump(2) << "\n";
    } else {
      for (const auto& id : *ids) ctx.console.out << ShowId(id) << "\n";
    }
  });

  CLI::App* info = object->add_subcommand("info", "Show an object's size and owner");
  AddClientOptions(info, *a);
  info->add_flag("--json", *json, "Print JSON");
  info->footer(std::string("\nExample:\n  coffer object info --socket S 'object#1' --json\n\n") + kExitCodesHelp);
  info->callback([&ctx, a, json, connect, decode] {
    if (!decode(ctx)) return;
    auto c = connect(ctx);
    if (!c) return;
    auto h = c->Open(a->share, a->id, objects::kShareRead | objects::kShareWrite);
    if (!h.ok()) {
      ctx.exit_code = Fail(ctx, h.status());
      return;
    }
    auto i = c->Info(*h);
    (void)c->Close(*h);
    if (!i.ok()) {
      ctx.exit_code = Fail(ctx, i.status());
      return;
    }
    bool immutable = i->meta.object_flags & objects::kObjectImmutable;
    if (*json) {
      nlohmann::json j = {{"id", ShowId(i->id)},       {"id_hex", HexEncode(AsBytes(i->id))},
                          {"size", i->meta.size},       {"owner_uid", i->meta.owner_uid},
                          {"write_once", immutable}};
      ctx.console.out << j.dump(2) << "\n";
    } else {
      ctx.console.out << "id: " << ShowId(i->id) << "\nsize: " << i->meta.size << "\nowner uid: " << i->meta.owner_uid
                      << "\nwrite-once: " << (immutable ? "yes" : "no") << "\n";
    }
  });
}

}  // namespace coffer::cli
