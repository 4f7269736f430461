// HttpBackingStore: protocol v1 client (docs/format/blockhost_protocol.md).
#include <cstdlib>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "coffer/base/random.h"
#include "coffer/blockhost/protocol.h"
#include "remote/transport.h"

namespace coffer::remote {
namespace {

using nlohmann::json;

struct Target {
  net::Url url;
  std::string base;  // /v1/volumes/NAME
};

Result<Target> ParseTarget(const std::string& spec) {
  COFFER_ASSIGN_OR_RETURN(net::Url url, net::ParseUrl(spec));
  if (url.scheme != "http" && url.scheme != "https") return InvalidArgument("'" + spec + "' is not an http(s) URL");
  constexpr std::string_view kPrefix = "/v1/volumes/";
  if (url.path.rfind(kPrefix, 0) != 0 || !blockhost::IsValidVolumeName(url.path.substr(kPrefix.size()))) {
    return InvalidArgument("'" + spec + "' should look like https://HOST:PORT/v1/volumes/NAME (NAME: 1-64 of A-Z a-z 0-9 . _ -)");
  }
  return Target{url, url.path};
}

}  // namespace

class HttpBackingStore : public BackingStore {
 public:
  HttpBackingStore(std::unique_ptr<HttpTransport> t, std::string describe, std::string base, const RemoteOptions& o)
      : transport_(std::move(t)), describe_(std::move(describe)), base_(std::move(base)), options_(o) {}

  Status Init() {
    COFFER_ASSIGN_OR_RETURN(HttpReply r, transport_->Send("POST", base_ + "/open", "", "application/json"));
    if (r.status != 200) return StatusFromReply(r, "open " + describe_);
    json j = json::parse(r.body, nullptr, false);
    if (!j.is_object() || !j.value("record_size", json()).is_number_unsigned() ||
        !j.value("record_count", json()).is_number_unsigned() || !j.value("generation", json()).is_number_unsigned()) {
      return IoError("open " + describe_ + ": host sent a malformed volume description");
    }
    record_size_ = j["record_size"].get<uint32_t>();
    record_count_ = j["record_count"].get<uint64_t>();
    generation_ = j["generation"].get<uint64_t>();
    if (record_size_ == 0 || record_size_ > blockhost::kMaxRecordSize || record_count_ == 0) {
      return IoError("open " + describe_ + ": host reports an impossible geometry");
    }
    return Status::Ok();
  }

  uint32_t record_size() const override { return record_size_; }
  uint64_t record_count() const override { return record_count_; }
  std::string Describe() const override { return describe_; }

  Status Read(uint64_t first, uint32_t count, std::span<uint8_t> out) override {
    COFFER_RETURN_IF_ERROR(CheckRead(first, count, out.size()));
    uint64_t done = 0;
    while (done < count) {
      uint64_t index = first + done;
      if (cache_count_ && index >= cache_first_ && index < cache_first_ + cache_count_) {
        uint64_t n = std::min<uint64_t>(count - done, cache_first_ + cache_count_ - index);
        std::memcpy(out.data() + done * record_size_, cache_.data() + (index - cache_first_) * record_size_,
                    n * record_size_);
        done += n;
        continue;
      }
      // Fetch what is asked plus read-ahead, bounded by the volume and a per-request size.
      uint64_t want = std::max<uint64_t>(count - done, options_.readahead_records);
      uint64_t limit = std::max<uint64_t>(1, (4u << 20) / record_size_);
      want = std::min({want, record_count_ - index, limit});
      COFFER_ASSIGN_OR_RETURN(HttpReply r, transport_->Send("GET", base_ + "/records?first=" + std::to_string(index) +
                                                                       "&count=" + std::to_string(want)));
      if (r.status != 200) return StatusFromReply(r, "read " + describe_);
      if (r.body.size() != want * record_size_) {
        return IoError("read " + describe_ + ": host sent " + std::to_string(r.body.size()) + " bytes for " +
                       std::to_string(want) + " records");
      }
      cache_.assign(r.body.begin(), r.body.end());
      cache_first_ = index;
      cache_count_ = want;
    }
    return Status::Ok();
  }

  Status WriteBatch(std::span<const RecordWrite> writes) override {
    COFFER_RETURN_IF_ERROR(CheckBatch(writes));
    if (writes.empty()) return Status::Ok();
    blockhost::BatchId id;
    FillRandom(id);
    Bytes body = blockhost::EncodeBatch(id, generation_, record_size_, writes);
    // Retries reuse the batch id, so a batch whose reply was lost is applied once.
    COFFER_ASSIGN_OR_RETURN(HttpReply r, transport_->Send("POST", base_ + "/batch", std::string(AsStringView(body))));
    if (r.status != 200) return StatusFromReply(r, "write " + describe_);
    for (const RecordWrite& w : writes) {
      if (cache_count_ && w.index >= cache_first_ && w.index < cache_first_ + cache_count_) {
        std::memcpy(cache_.data() + (w.index - cache_first_) * record_size_, w.data.data(), record_size_);
      }
    }
    return Status::Ok();
  }

 private:
  std::unique_ptr<HttpTransport> transport_;
  std::string describe_, base_;
  RemoteOptions options_;
  uint32_t record_size_ = 0;
  uint64_t record_count_ = 0;
  uint64_t generation_ = 0;
  Bytes cache_;
  uint64_t cache_first_ = 0, cache_count_ = 0;
};

Result<std::unique_ptr<BackingStore>> OpenHttpStore(const std::string& spec, const RemoteOptions& options) {
  COFFER_ASSIGN_OR_RETURN(Target t, ParseTarget(spec));
  COFFER_ASSIGN_OR_RETURN(auto transport, HttpTransport::Create(t.url, options));
  auto store = std::make_unique<HttpBackingStore>(std::move(transport), spec, t.base, options);
  COFFER_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<BackingStore>(std::move(store));
}

Result<std::unique_ptr<BackingStore>> CreateHttpStore(const std::string& spec, uint32_t record_size,
                                                      uint64_t record_count, const RemoteOptions& options) {
  COFFER_ASSIGN_OR_RETURN(Target t, ParseTarget(spec));
  {
    COFFER_ASSIGN_OR_RETURN(auto transport, HttpTransport::Create(t.url, options));
    json req = {{"record_size", record_size}, {"record_count", record_count}};
    COFFER_ASSIGN_OR_RETURN(HttpReply r, transport->Send("PUT", t.base, req.dump(), "application/json"));
    if (r.status == 409) return AlreadyExists("create " + spec + ": volume already exists on the host");
    if (r.status != 201) return StatusFromReply(r, "create " + spec);
  }
  return OpenHttpStore(spec, options);
}

Status DeleteHttpVolume(const std::string& spec, const RemoteOptions& options) {
  COFFER_ASSIGN_OR_RETURN(Target t, ParseTarget(spec));
  COFFER_ASSIGN_OR_RETURN(auto transport, HttpTransport::Create(t.url, options));
  COFFER_ASSIGN_OR_RETURN(HttpReply r, transport->Send("DELETE", t.base));
  if (r.status != 204) return StatusFromReply(r, "delete " + spec);
  return Status::Ok();
}

bool IsRemoteSpec(const std::string& spec) {
  return spec.rfind("http://", 0) == 0 || spec.rfind("https://", 0) == 0 || spec.rfind("diskhost://", 0) == 0;
}

Result<std::string> ApplySpecOptions(const std::string& spec, RemoteOptions& o) {
  auto env = [](const char* name, std::string& out) {
    if (const char* v = std::getenv(name); v && *v) out = v;
  };
  env("COFFER_REMOTE_CA", o.tls.ca_file);
  env("COFFER_REMOTE_CERT", o.tls.cert_file);
  env("COFFER_REMOTE_KEY", o.tls.key_file);
  env("COFFER_REMOTE_TOKEN_FILE", o.token_file);
  size_t q = spec.find('?');
  if (q == std::string::npos) return spec;
  std::string query = spec.substr(q + 1);
  size_t start = 0;
  while (start <= query.size()) {
    size_t amp = query.find('&', start);
    std::string kv = query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    size_t eq = kv.find('=');
    if (eq == std::string::npos) return InvalidArgument("spec option '" + kv + "' should be NAME=VALUE");
    std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "ca") o.tls.ca_file = v;
    else if (k == "cert") o.tls.cert_file = v;
    else if (k == "key") o.tls.key_file = v;
    else if (k == "token-file") o.token_file = v;
    else return InvalidArgument("unknown spec option '" + k + "' (known: ca, cert, key, token-file)");
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  return spec.substr(0, q);
}

Result<std::unique_ptr<BackingStore>> OpenRemoteStore(const std::string& spec_with_options, bool create,
                                                      uint32_t record_size, uint64_t record_count) {
  RemoteOptions options;
  COFFER_ASSIGN_OR_RETURN(std::string spec, ApplySpecOptions(spec_with_options, options));
  // The original disk host has a fixed geometry: creating there just opens it (callers read the
  // store's record_size()/record_count()).
  if (spec.rfind("diskhost://", 0) == 0) return OpenDiskHostStore(spec, options);
  if (create) return CreateHttpStore(spec, record_size, record_count, options);
  return OpenHttpStore(spec, options);
}

Result<std::unique_ptr<BackingStore>> CreateRemoteStore(const std::string& spec_with_options, uint32_t record_size,
                                                        uint64_t record_count, bool overwrite) {
  if (overwrite && spec_with_options.rfind("diskhost://", 0) != 0) {
    RemoteOptions options;
    COFFER_ASSIGN_OR_RETURN(std::string spec, ApplySpecOptions(spec_with_options, options));
    Status s = DeleteHttpVolume(spec, options);
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
  }
  return OpenRemoteStore(spec_with_options, true, record_size, record_count);
}

}  // namespace coffer::remote
