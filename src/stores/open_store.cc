#include "coffer/stores/open_store.h"

#include <string>

#include "coffer/blockdev/file_backing_store.h"
#include "coffer/blockdev/memory_backing_store.h"
#include "coffer/remote/remote_store.h"

namespace coffer {
namespace {

constexpr std::string_view kKnown =
    "file:PATH, mem:, https://HOST:PORT/v1/volumes/NAME (or http://), diskhost://HOST:PORT";

Status NoScheme(std::string_view spec) {
  return InvalidArgument("store spec '" + std::string(spec) + "' has no scheme: use " + std::string(kKnown));
}
Status UnknownScheme(std::string_view spec) {
  return Unsupported("unknown store scheme in '" + std::string(spec) + "': this coffer knows " + std::string(kKnown));
}

}  // namespace

std::string_view StoreScheme(std::string_view spec) {
  auto colon = spec.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  std::string_view scheme = spec.substr(0, colon);
  if (scheme.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789+-.") != std::string_view::npos) return {};
  return scheme;
}

Result<std::unique_ptr<BackingStore>> OpenStore(std::string_view spec) {
  std::string_view scheme = StoreScheme(spec);
  if (scheme.empty()) return NoScheme(spec);
  std::string_view rest = spec.substr(scheme.size() + 1);
  if (scheme == "file") {
    if (rest.empty()) return InvalidArgument("store spec 'file:' needs a path (file:PATH)");
    COFFER_ASSIGN_OR_RETURN(auto store, FileBackingStore::Open(std::string(rest)));
    return std::unique_ptr<BackingStore>(std::move(store));
  }
  if (remote::IsRemoteSpec(std::string(spec))) {  // block host (protocol v1) or the original disk host
    return remote::OpenRemoteStore(std::string(spec), false, 0, 0);
  }
  if (scheme == "mem") {
    return Unsupported("a mem: store lives only inside the process that created it, so it cannot be opened "
                       "again; use file:PATH");
  }
  return UnknownScheme(spec);
}

Result<std::unique_ptr<BackingStore>> CreateStore(std::string_view spec, const StoreCreateOptions& options) {
  std::string_view scheme = StoreScheme(spec);
  if (scheme.empty()) return NoScheme(spec);
  std::string_view rest = spec.substr(scheme.size() + 1);
  if (options.record_size == 0 || options.record_count == 0) {
    return InvalidArgument("a new store needs a record size and count");
  }
  if (scheme == "file") {
    if (rest.empty()) return InvalidArgument("store spec 'file:' needs a path (file:PATH)");
    COFFER_ASSIGN_OR_RETURN(auto store, FileBackingStore::Create(std::string(rest), options.record_size,
                                                                 options.record_count, options.overwrite));
    return std::unique_ptr<BackingStore>(std::move(store));
  }
  if (remote::IsRemoteSpec(std::string(spec))) {
    // The block host creates the volume with this geometry; diskhost:// has a fixed one (callers
    // read the store's record_size()/record_count()).
    return remote::CreateRemoteStore(std::string(spec), options.record_size, options.record_count,
                                     options.overwrite);
  }
  if (scheme == "mem") {
    if (uint64_t(options.record_size) * options.record_count > (uint64_t(4) << 30)) {
      return InvalidArgument("a mem: store is limited to 4 GiB");
    }
    return std::unique_ptr<BackingStore>(new MemoryBackingStore(options.record_size, options.record_count));
  }
  return UnknownScheme(spec);
}

}  // namespace coffer
