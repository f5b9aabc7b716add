#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp> // CAF_ERROR_CODE_ENUM needs it

namespace ctxstore {

/// Reasons an operation on a context fails; values are stable on the wire.
enum class errc : uint8_t {
  /// Nothing is stored under this (type, id).
  no_such_context = 1,
  /// The value does not have the C++ type registered for the context type.
  type_mismatch,
  /// The session ended (lease revoked, aborted, erased, or a stale token).
  session_expired,
  /// The request names a session that the sender does not hold.
  not_holder,
  /// An acquire waited longer than it was allowed to.
  timeout,
  /// The storage (or the connection to it) is gone.
  storage_down,
  /// Too many requests are queued on this context.
  overloaded,
  /// The request is malformed: nil id, empty value, out-of-protocol message.
  bad_request,
  /// The context type name is not registered with `add_context_type`.
  unknown_type,
  /// The backend could not make the operation durable: nothing changed.
  backend_failure,
  /// Another writer (a storage that took over the backend) got there first.
  conflict,
  /// The operation is not allowed through this publication (read-only).
  forbidden,
  /// Waiting would close a cycle of holders waiting for each other.
  deadlock,
};

/// Returns the name of `code`, e.g. "no_such_context".
std::string to_string(errc code);

/// What the blocking API throws; `code()` is the same code that the async API
/// reports as a `caf::error`.
class error : public std::runtime_error {
public:
  /// An error with reason `code`; `what` is the readable text of `what()`.
  error(errc code, const std::string& what)
      : std::runtime_error(what), code_(code) {
    // nop
  }

  /// The reason of the failure.
  errc code() const noexcept {
    return code_;
  }

private:
  errc code_;
};

/// Makes a `caf::error` of ctxstore's category with a readable `detail`.
caf::error make_error(errc code, std::string detail);

/// Converts any `caf::error` that a ctxstore request produced into ctxstore's
/// codes: CAF's own failures (receiver down, lost connection, ...) become
/// `storage_down`. No error gives `errc{}` (zero).
errc to_errc(const caf::error& err);

/// Returns a readable description of `err` (detail text when present).
std::string describe(const caf::error& err);

/// Throws `ctxstore::error` for `err`.
[[noreturn]] void throw_error(const caf::error& err);

} // namespace ctxstore

CAF_ERROR_CODE_ENUM(ctxstore::errc, "ctxstore")
