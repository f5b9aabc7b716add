#pragma once

#include <chrono>
#include <cstddef>

namespace ctxstore {

/// Limits that apply to every context of one storage.
struct storage_options {
  /// Longest time a holder may keep a context; past it the session is revoked
  /// and the late holder's commit fails with `errc::session_expired`.
  /// Zero: sessions never expire.
  std::chrono::milliseconds lease{0};

  /// Most requests (acquire, store, erase) that may queue on one context
  /// behind its holder; past it they fail at once with `errc::overloaded`.
  /// Zero: unbounded.
  std::size_t max_waiters = 0;
};

} // namespace ctxstore
