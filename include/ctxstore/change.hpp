#pragma once

#include <cstdint>
#include <optional>

#include "ctxstore/context_id.hpp"

namespace ctxstore {

/// One change of a watched context (see `blocking_client::watch`).
///
/// Per context, a watcher gets changes in version order. Versions start
/// again at 1 when an erased context is created again: `incarnation` tells
/// the lives of a context apart. A change with an empty `value` says that
/// the context was erased (its version: the one after the last commit, or 0
/// if that is unknown).
template <class T>
struct change {
  context_id id;          ///< The context that changed.
  uint64_t version = 0;   ///< Its version after the change.
  std::optional<T> value; ///< The committed value; empty: erased.
  /// How many changes of this context before this one the watcher did not
  /// get: it fell more than `storage_options::watch_buffer` behind, or asked
  /// for versions that are no longer retained. Never a silent gap.
  uint64_t skipped = 0;
  /// Which life of the context `version` counts in: a number (never 0) the
  /// storage picks whenever the context comes to be (created, created again
  /// after an erase, or read again from a backend); an erase carries the
  /// number of the life it ends. Resume with both numbers
  /// (`watch(id, version, incarnation)`). 0: unknown.
  uint64_t incarnation = 0;
};

} // namespace ctxstore
