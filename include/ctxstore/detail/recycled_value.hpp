#pragma once

#include <utility>

#include <caf/message.hpp>

#include "ctxstore/detail/memory_limits.hpp"
#include "ctxstore/detail/type_table.hpp"

namespace ctxstore::detail {

// A session's working copy shares the committed value until its first write
// (copy-on-write). Copy-constructing a T on that write allocates as often as
// T has parts (strings, vector, map nodes), and the commit that the session's
// release replaces is then destroyed, freeing as often. Instead, a replaced
// commit that nobody else holds any more is kept, one per thread (by whoever
// replaced it: a local client, or the owner actor for its holders), and the
// next first write of a value of its type on that thread copy-assigns into
// it: assignment reuses its allocations (vector capacity, map nodes, string
// buffers). Readers are safe either way: a message that is shared after all
// is copied by CAF's own copy-on-write before anything is written into it.

/// This thread's spare value (a message of one value that only we hold), or
/// empty.
inline caf::message& spare_value() {
  thread_local caf::message spare;
  return spare;
}

/// True if `x` holds a value that no other handle shares.
inline bool unshared(const caf::message& x) noexcept {
  return x.cvals() && x.cvals()->unique();
}

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer cannot see the reference count that orders the reuse after
// the last reader (it is counted inside libcaf, which is not instrumented),
// so it would report every reuse as a race: under TSan nothing is recycled.
// The specifications check the reuse in the other builds.
inline constexpr bool recycle_values = false;
#else
inline constexpr bool recycle_values = true;
#endif

/// The T in `working` (a message of one T), ready to be written: detached
/// from anyone it shares it with, into this thread's spare if there is one.
template <class T>
T& writable(caf::message& working) {
  if (working.cvals() && !unshared(working)) {
    auto& spare = spare_value();
    if (unshared(spare) && spare.template match_elements<T>()) {
      spare.template get_mutable_as<T>(0) = working.template get_as<T>(0);
      working = std::move(spare);
      spare = caf::message{};
    }
  }
  return working.template get_mutable_as<T>(0); // copies only if still shared
}

/// Keeps `replaced` (a commit that a commit, release or store replaced) as
/// this thread's spare if nobody else holds it, there is none yet and it
/// holds at most kept_buffer_bytes (a spare lives as long as its thread, and
/// a large one would keep its memory after its context is gone); drops it
/// otherwise.
inline void recycle(caf::message& replaced) {
  if (recycle_values && replaced.size() == 1 && unshared(replaced)
      && !spare_value().cvals()
      && !value_larger_than(replaced, kept_buffer_bytes))
    spare_value() = std::move(replaced);
  replaced = caf::message{};
}

} // namespace ctxstore::detail
