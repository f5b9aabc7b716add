#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace ctxstore {

/// Who holds one context and who waits for it, as of the moment the storage
/// answered (`blocking_client::info`, `async_client::info`).
struct context_info {
  /// The last committed version.
  uint64_t version = 0;
  /// True while a session is open.
  bool held = false;
  /// The holder, readable: "thread 1234" (its OS thread id), "actor 42", or
  /// "actor 42 on NODE" for a holder of another node; empty if not held.
  std::string holder;
  /// How long the open session has been held (0 if not held).
  std::chrono::nanoseconds held_for{0};
  /// Requests (acquire, store, erase) queued behind the holder.
  std::size_t waiters = 0;
  /// How long the oldest of them has been waiting (0 if none).
  std::chrono::nanoseconds oldest_wait{0};
};

/// Lets CAF serialize `context_info` (it travels as a reply).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, context_info& x) {
  return f(caf::meta::type_name("ctxstore.info"), x.version, x.held, x.holder,
           x.held_for, x.waiters, x.oldest_wait);
}

} // namespace ctxstore
