#pragma once

#include <atomic>
#include <cstdint>

namespace ctxstore::actors {

/// Counts shared by a registry and its owners; `stats` reads them. Each owner
/// updates them before it answers the request that changed them, so a caller
/// that got its answer sees its own change in the next `stats`.
struct counters {
  std::atomic<int64_t> contexts{0};
  std::atomic<int64_t> sessions{0};
  std::atomic<int64_t> waiters{0};
  std::atomic<int64_t> owners{0};
  /// The last session token issued by any owner of the storage.
  std::atomic<uint64_t> last_token{0};
  /// Times the registry kept a retiring owner because a request of this
  /// process was still on its way to it (see registry.cpp).
  std::atomic<uint64_t> owners_kept{0};
  /// Durable contexts that left memory (passivated) and that were read from
  /// the backend (activated).
  std::atomic<uint64_t> passivations{0};
  std::atomic<uint64_t> activations{0};
};

} // namespace ctxstore::actors
