// Client backing stores for remote block hosts:
// - HttpBackingStore: coffer's block host protocol v1 at http(s)://HOST:PORT/v1/volumes/NAME —
//   one keep-alive connection, range reads with read-ahead, each WriteBatch one atomic request
//   (retried with the same batch id, so it is applied once), a write fence taken at open.
// - DiskHostBackingStore: the original disk host protocol at diskhost://HOST:PORT — 16384 records
//   of 272 bytes, opaque to coffer; atomic batches through an on-store journal (see
//   docs/format/blockhost_protocol.md section 5).
// Both retry transport errors and 503 with exponential backoff and jitter, never 4xx. One thread at
// a time per store (the BackingStore contract); stores hold no secrets except a bearer token.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "coffer/blockdev/backing_store.h"
#include "coffer/net/net.h"

namespace coffer::remote {

struct RemoteOptions {
  net::TlsClientConfig tls;           // https: CA to trust, optional client certificate (mTLS)
  std::string token_file;             // file holding a bearer token (first line)
  net::BackoffPolicy retry{10, std::chrono::milliseconds(50), std::chrono::milliseconds(2000), 2.0};
  std::chrono::seconds connect_timeout{5};
  std::chrono::seconds io_timeout{30};
  uint32_t readahead_records = 64;    // http: records fetched past a small read
};

// Fills options from the spec's query (?ca=F&cert=F&key=F&token-file=F) and then the environment
// (COFFER_REMOTE_CA, COFFER_REMOTE_CERT, COFFER_REMOTE_KEY, COFFER_REMOTE_TOKEN_FILE); returns the spec
// without its query.
Result<std::string> ApplySpecOptions(const std::string& spec, RemoteOptions& options);

class HttpBackingStore;
class DiskHostBackingStore;

// Opens an existing volume; takes the write fence (later writers with older fences are refused).
Result<std::unique_ptr<BackingStore>> OpenHttpStore(const std::string& url, const RemoteOptions& options);
// Creates the volume on the host with this geometry (kAlreadyExists if it exists), then opens it.
Result<std::unique_ptr<BackingStore>> CreateHttpStore(const std::string& url, uint32_t record_size,
                                                      uint64_t record_count, const RemoteOptions& options);
// Deletes a volume on the host.
Status DeleteHttpVolume(const std::string& url, const RemoteOptions& options);
// Opens the original-protocol host; replays (or rejects, if tampered) a committed journal.
Result<std::unique_ptr<BackingStore>> OpenDiskHostStore(const std::string& url, const RemoteOptions& options);

// Geometry the diskhost store offers coffer: 272-byte records, 16384 minus the journal area.
inline constexpr uint32_t kDiskHostRecordSize = 272;
inline constexpr uint64_t kDiskHostRawRecords = 16384;
inline constexpr uint64_t kDiskHostJournalSlots = 1024;
inline constexpr uint64_t kDiskHostIndexRecords = 8;  // 8 x 136 uint16 indices >= 1024
inline constexpr uint64_t kDiskHostDataRecords =
    kDiskHostRawRecords - kDiskHostJournalSlots - kDiskHostIndexRecords - 1;

// CreateStore's remote branch: like OpenRemoteStore(spec, true, ...), and with `overwrite` an existing
// volume on the block host is deleted first.
Result<std::unique_ptr<BackingStore>> CreateRemoteStore(const std::string& spec, uint32_t record_size,
                                                        uint64_t record_count, bool overwrite);

// True for http://, https:// and diskhost:// specs.
bool IsRemoteSpec(const std::string& spec);
// One entry for OpenStore-style factories: http(s) (create with the geometry when `create`) or
// diskhost (fixed geometry: `create` opens it; callers read record_size()/record_count()).
Result<std::unique_ptr<BackingStore>> OpenRemoteStore(const std::string& spec, bool create, uint32_t record_size,
                                                      uint64_t record_count);

}  // namespace coffer::remote
