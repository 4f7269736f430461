#include "coffer/keys/unlock.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>

#include "coffer/base/file_util.h"
#include "coffer/base/random.h"
#include "coffer/keys/anchor.h"
#include "coffer/keys/key_file.h"

namespace coffer {
namespace {

class KeyFileMethod : public UnlockMethod {
 public:
  explicit KeyFileMethod(std::string path) : path_(std::move(path)) {}
  KeySlotType slot_type() const override { return KeySlotType::kKeyFile; }
  std::string Describe() const override { return "key file " + path_; }
  Result<Bytes> NewSlotParams() override { return Bytes{}; }
  Result<SecretBytes> UnlockSecret(ByteSpan params) override {
    if (!params.empty()) return InvalidArgument("key-file slot has unexpected parameters");
    if (key_.empty()) {
      COFFER_ASSIGN_OR_RETURN(key_, ReadKeyFile(path_));
    }
    return key_.Clone();
  }
  std::string DefaultAnchorPath() const override { return path_ + ".anchor"; }

 private:
  std::string path_;
  SecretBytes key_;
};

// Slot parameters: alg(1)=1 Argon2id v1.3, reserved(3), ops(4 LE), mem KiB(4 LE), salt(16) = 28 bytes.
class PassphraseMethod : public UnlockMethod {
 public:
  PassphraseMethod(std::string source, std::function<Result<SecretBytes>()> read, Argon2Params argon2)
      : source_(std::move(source)), read_(std::move(read)), argon2_(argon2) {}
  KeySlotType slot_type() const override { return KeySlotType::kPassphrase; }
  std::string Describe() const override { return "passphrase (" + source_ + ")"; }
  Result<Bytes> NewSlotParams() override {
    Bytes p(28, 0);
    p[0] = 1;
    PutLe32(p.data() + 4, uint32_t(argon2_.ops));
    PutLe32(p.data() + 8, uint32_t(argon2_.mem_bytes >> 10));
    FillRandom({p.data() + 12, 16});
    return p;
  }
  Result<SecretBytes> UnlockSecret(ByteSpan params) override {
    if (params.size() != 28 || params[0] != 1) {
      return InvalidArgument("passphrase slot has unknown parameters (algorithm " +
                             std::to_string(params.empty() ? 0 : params[0]) + ")");
    }
    Argon2Params a{.ops = GetLe32(params.data() + 4), .mem_bytes = uint64_t(GetLe32(params.data() + 8)) << 10};
    if (passphrase_.empty()) {
      COFFER_ASSIGN_OR_RETURN(passphrase_, read_());
    }
    return Argon2id(passphrase_.reveal(), params.subspan(12, 16), a, 32);
  }
  std::string DefaultAnchorPath() const override { return DefaultStateAnchorPath(); }

 private:
  std::string source_;
  std::function<Result<SecretBytes>()> read_;
  Argon2Params argon2_;
  SecretBytes passphrase_;
};

// Drops one trailing "\n" or "\r\n"; refuses an empty passphrase.
Result<SecretBytes> TrimPassphrase(SecretBytes raw, const std::string& where) {
  size_t n = raw.size();
  if (n > 0 && raw.reveal()[n - 1] == '\n') n--;
  if (n > 0 && raw.reveal()[n - 1] == '\r') n--;
  if (n == 0) return InvalidArgument("the passphrase from " + where + " is empty");
  return SecretBytes::CopyOf(raw.reveal().subspan(0, n));
}

Result<SecretBytes> ReadPassphraseFd(int fd) {
  SecretBytes buf(4097);
  size_t done = 0;
  while (done < buf.size()) {
    ssize_t r = ::read(fd, buf.reveal().data() + done, buf.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("read passphrase from fd " + std::to_string(fd), errno);
    if (r == 0) break;
    done += size_t(r);
  }
  if (done > 4096) return InvalidArgument("passphrase from fd " + std::to_string(fd) + " is longer than 4096 bytes");
  return TrimPassphrase(SecretBytes::CopyOf(buf.reveal().subspan(0, done)), "fd " + std::to_string(fd));
}

std::mutex& RegistryMutex() {
  static std::mutex mu;
  return mu;
}
std::map<std::string, UnlockMethodFactory>& Registry() {
  static std::map<std::string, UnlockMethodFactory> registry;
  return registry;
}

Result<std::unique_ptr<UnlockMethod>> MakeKeyFile(std::string_view rest, const KeySpecContext&) {
  if (rest.empty()) return InvalidArgument("KEYSPEC 'file:' needs a path (file:PATH)");
  return std::unique_ptr<UnlockMethod>(new KeyFileMethod(std::string(rest)));
}

Result<std::unique_ptr<UnlockMethod>> MakePassphrase(std::string_view rest, const KeySpecContext& ctx) {
  Argon2Params argon2 = ctx.argon2;
  if (rest.empty()) {
    auto prompt = ctx.prompt ? ctx.prompt : PromptPassphraseOnTty;
    bool creating = ctx.creating;
    std::function<Result<SecretBytes>()> read = [prompt, creating]() -> Result<SecretBytes> {
      COFFER_ASSIGN_OR_RETURN(SecretBytes a, prompt("Passphrase: "));
      COFFER_ASSIGN_OR_RETURN(SecretBytes p, TrimPassphrase(std::move(a), "the terminal"));
      if (creating) {
        COFFER_ASSIGN_OR_RETURN(SecretBytes b, prompt("Repeat passphrase: "));
        COFFER_ASSIGN_OR_RETURN(SecretBytes q, TrimPassphrase(std::move(b), "the terminal"));
        if (!p.Equals(q)) return InvalidArgument("the two passphrases differ");
      }
      return p;
    };
    return std::unique_ptr<UnlockMethod>(new PassphraseMethod("prompt", read, argon2));
  }
  if (rest.starts_with("file:")) {
    std::string path(rest.substr(5));
    if (path.empty()) return InvalidArgument("KEYSPEC 'pass:file:' needs a path");
    auto read = [path]() -> Result<SecretBytes> {
      COFFER_ASSIGN_OR_RETURN(SecretBytes raw, ReadSecretFile(path, 4096));
      return TrimPassphrase(std::move(raw), path);
    };
    return std::unique_ptr<UnlockMethod>(new PassphraseMethod("file " + path, read, argon2));
  }
  if (rest.starts_with("fd:")) {
    std::string n(rest.substr(3));
    if (n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("KEYSPEC 'pass:fd:" + n + "' needs a file descriptor number");
    }
    int fd = std::stoi(n);
    auto read = [fd]() { return ReadPassphraseFd(fd); };
    return std::unique_ptr<UnlockMethod>(new PassphraseMethod("fd " + n, read, argon2));
  }
  return InvalidArgument("KEYSPEC 'pass:" + std::string(rest) +
                         "' is not understood: use pass: (prompt), pass:file:PATH or pass:fd:N "
                         "(passphrases are never taken from the command line)");
}

void RegisterBuiltins() {
  static std::once_flag once;
  std::call_once(once, [] {
    std::lock_guard lock(RegistryMutex());
    Registry().emplace("file", MakeKeyFile);
    Registry().emplace("pass", MakePassphrase);
  });
}

}  // namespace

std::string_view KeySlotTypeName(KeySlotType type) {
  switch (type) {
    case KeySlotType::kEmpty: return "empty";
    case KeySlotType::kKeyFile: return "key-file";
    case KeySlotType::kPassphrase: return "passphrase";
    case KeySlotType::kKeyServer: return "keyserver";
    case KeySlotType::kTpm2: return "tpm2";
  }
  return "unknown";
}

void RegisterKeySpecScheme(const std::string& scheme, UnlockMethodFactory factory) {
  RegisterBuiltins();
  std::lock_guard lock(RegistryMutex());
  Registry()[scheme] = std::move(factory);
}

Result<std::unique_ptr<UnlockMethod>> ParseKeySpec(std::string_view spec, const KeySpecContext& ctx) {
  RegisterBuiltins();
  if (spec.empty()) return InvalidArgument("empty KEYSPEC: give a key file path, file:PATH or pass:");
  auto colon = spec.find(':');
  if (colon != std::string_view::npos && colon > 0) {
    std::string scheme(spec.substr(0, colon));
    bool looks_like_scheme = scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+-") == std::string::npos;
    UnlockMethodFactory factory;
    {
      std::lock_guard lock(RegistryMutex());
      auto it = Registry().find(scheme);
      if (it != Registry().end()) factory = it->second;
    }
    if (factory) return factory(spec.substr(colon + 1), ctx);
    struct stat st;
    if (looks_like_scheme && ::stat(std::string(spec).c_str(), &st) != 0) {
      std::string known;
      {
        std::lock_guard lock(RegistryMutex());
        for (auto& [name, f] : Registry()) known += (known.empty() ? "" : ", ") + name + ":";
      }
      return Unsupported("unknown KEYSPEC scheme '" + scheme + ":' (this coffer knows " + known +
                         " or a plain key file path)");
    }
  }
  return MakeKeyFile(spec, ctx);
}

Result<SecretBytes> PromptPassphraseOnTty(const std::string& prompt) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return FailedPrecondition("no terminal to ask for the passphrase; use pass:file:PATH or pass:fd:N");
  }
  (void)!::write(fd, prompt.data(), prompt.size());
  struct termios old_t {};
  bool have_t = ::tcgetattr(fd, &old_t) == 0;
  if (have_t) {
    struct termios t = old_t;
    t.c_lflag &= ~tcflag_t(ECHO);
    ::tcsetattr(fd, TCSAFLUSH, &t);
  }
  SecretBytes buf(4097);
  size_t n = 0;
  while (n < buf.size()) {
    char c;
    ssize_t r = ::read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || c == '\n') break;
    buf.reveal()[n++] = uint8_t(c);
  }
  if (have_t) ::tcsetattr(fd, TCSAFLUSH, &old_t);
  (void)!::write(fd, "\n", 1);
  ::close(fd);
  if (n > 4096) return InvalidArgument("passphrase is longer than 4096 bytes");
  return TrimPassphrase(SecretBytes::CopyOf(buf.reveal().subspan(0, n)), "the terminal");
}

}  // namespace coffer
