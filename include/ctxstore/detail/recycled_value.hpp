#pragma once

#include <utility>

#include <caf/message.hpp>

namespace ctxstore::detail {

// A session's working copy shares the committed value until its first write
// (copy-on-write). Copy-constructing a T on that write allocates as often as
// T has parts (strings, vector, map nodes), and the commit that the session's
// release replaces is then destroyed, freeing as often. Instead, a replaced
// commit that nobody else holds any more is kept, one per thread and type,
// and the next first write copy-assigns into it: assignment reuses its
// allocations (vector capacity, map nodes, string buffers). Readers are safe
// either way: a message that is shared after all is copied by CAF's own
// copy-on-write before anything is written into it.

/// This thread's spare T (a message of one T that only we hold), or empty.
template <class T>
caf::message& spare_value() {
  thread_local caf::message spare;
  return spare;
}

/// True if `x` holds a value that no other handle shares.
inline bool unshared(const caf::message& x) noexcept {
  return x.cvals() && x.cvals()->unique();
}

/// `to = from`, in a frame of its own: ThreadSanitizer cannot see the
/// reference count that orders this write after the last reader, and
/// tests/tsan.supp names this file (an inlined frame has no file).
template <class T>
[[gnu::noinline]] void assign_recycled(T& to, const T& from) {
  to = from;
}

/// The T in `working` (a message of one T), ready to be written: detached
/// from anyone it shares it with, into this thread's spare if there is one.
template <class T>
T& writable(caf::message& working) {
  if (working.cvals() && !unshared(working)) {
    auto& spare = spare_value<T>();
    if (unshared(spare)) {
      assign_recycled(spare.template get_mutable_as<T>(0),
                      working.template get_as<T>(0));
      working = std::move(spare);
      spare = caf::message{};
    }
  }
  return working.template get_mutable_as<T>(0); // copies only if still shared
}

/// Keeps `replaced` (a commit that a session's commit or release replaced)
/// as this thread's spare T if nobody else holds it; drops it otherwise.
template <class T>
void recycle(caf::message& replaced) {
  if (unshared(replaced) && !spare_value<T>().cvals()
      && replaced.template match_elements<T>())
    spare_value<T>() = std::move(replaced);
  replaced = caf::message{};
}

} // namespace ctxstore::detail
