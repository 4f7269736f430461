// Status and Result<T>: how every coffer library reports success and failure.
// A Status is a code plus a human message; OK carries no allocation. Result<T> holds a T or a
// non-OK Status. Integrity failures (kDataLoss) are never folded into I/O or not-found: callers
// map codes to exit statuses, -errno, LFS_ERR_* or C API codes only at the outer edge.
// Both types are plain values: copyable, movable, not thread-safe to mutate concurrently.
#pragma once

#include <cassert>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace coffer {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // caller's input is malformed (bad spec, bad size, hostile path...)
  kNotFound,            // the named thing does not exist
  kAlreadyExists,       // create refused: the thing exists
  kIoError,             // the OS or a remote peer failed to read or write
  kDataLoss,            // stored data failed authentication or freshness: tampering, replay, rollback
  kUnauthenticated,     // unlock failed: wrong key or passphrase, no usable key slot
  kPermissionDenied,    // the caller is not allowed (server refused, wrong identity)
  kNoSpace,             // device or quota full
  kUnavailable,         // a remote peer cannot be reached right now; retrying may help
  kFailedPrecondition,  // the operation does not fit the current state (not formatted, busy...)
  kOutOfRange,          // offset or index beyond the end
  kUnsupported,         // unknown format version, cipher suite, or feature
  kCorrupt,             // structure is malformed (bad magic, bad CRC) without a claim of tampering
  kInternal,            // a bug: an invariant did not hold
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  static Status Ok() { return Status(); }

  bool ok() const { return rep_ == nullptr; }
  StatusCode code() const { return rep_ ? rep_->code : StatusCode::kOk; }
  const std::string& message() const;
  // "DataLoss: sector 12 failed authentication" style text for logs and errors.
  std::string ToString() const;
  // Returns a copy whose message is "<context>: <message>", same code.
  Status WithContext(std::string_view context) const;

 private:
  struct Rep {
    StatusCode code;
    std::string message;
  };
  std::shared_ptr<const Rep> rep_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status DataLoss(std::string m) { return {StatusCode::kDataLoss, std::move(m)}; }
inline Status Unauthenticated(std::string m) { return {StatusCode::kUnauthenticated, std::move(m)}; }
inline Status PermissionDenied(std::string m) { return {StatusCode::kPermissionDenied, std::move(m)}; }
inline Status NoSpace(std::string m) { return {StatusCode::kNoSpace, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status Unsupported(std::string m) { return {StatusCode::kUnsupported, std::move(m)}; }
inline Status Corrupt(std::string m) { return {StatusCode::kCorrupt, std::move(m)}; }
inline Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
// errno-style failure: "<what>: <strerror(err)>" with kNotFound for ENOENT, kNoSpace for ENOSPC,
// kPermissionDenied for EACCES/EPERM, else kIoError.
Status ErrnoStatus(std::string_view what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.ok() && "Result constructed from an OK status without a value");
    if (status_.ok()) status_ = Internal("Result built from OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;  // OK iff value_ is set
};

}  // namespace coffer

#define COFFER_CONCAT_INNER_(a, b) a##b
#define COFFER_CONCAT_(a, b) COFFER_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (a Status) is not OK.
#define COFFER_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::coffer::Status coffer_status_ = (expr);        \
    if (!coffer_status_.ok()) return coffer_status_; \
  } while (0)

// `COFFER_ASSIGN_OR_RETURN(auto x, MakeX());` declares x from a Result, or returns its Status.
#define COFFER_ASSIGN_OR_RETURN(lhs, expr) \
  COFFER_ASSIGN_OR_RETURN_IMPL_(COFFER_CONCAT_(coffer_result_, __LINE__), lhs, expr)
#define COFFER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()
