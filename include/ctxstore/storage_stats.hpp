#pragma once

#include <cstdint>

#include <caf/meta/type_name.hpp>

namespace ctxstore {

/// Counts of one storage, as of the moment it answered.
struct storage_stats {
  /// Stored contexts.
  uint64_t contexts = 0;
  /// Open exclusive sessions.
  uint64_t sessions = 0;
  /// Requests (acquire, store, erase) queued behind a holder.
  uint64_t waiters = 0;
  /// Owner actors alive, including those of erased contexts still retiring.
  uint64_t owners = 0;
  /// Watches (`watch`, `watch_all`) registered, of this node and of others.
  uint64_t watchers = 0;
};

/// Lets CAF serialize `storage_stats` (it travels as a reply).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, storage_stats& x) {
  return f(caf::meta::type_name("ctxstore.stats"), x.contexts, x.sessions,
           x.waiters, x.owners, x.watchers);
}

} // namespace ctxstore
