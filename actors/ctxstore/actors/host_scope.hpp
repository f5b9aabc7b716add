#pragma once

#include <caf/fwd.hpp>

// The worker that runs the actor whose code this thread runs now. A message
// that ctxstore puts into a mailbox on that actor's behalf (a turn in a
// context's queue, a change for a watcher) goes with it as host: a receiver
// that must be scheduled goes to that worker's own queue, as with CAF's
// `send` from inside an actor, and no other worker is woken for it. Null on
// threads outside CAF's scheduler (and outside a scope): the scheduler picks
// a worker then.

namespace ctxstore::actors {

/// This thread's host now (see above); null if none.
inline thread_local caf::execution_unit* current_host = nullptr;

/// Sets `current_host` for its lifetime (set it only to the unit running the
/// current thread's actor: `self->context()`).
class host_scope {
public:
  explicit host_scope(caf::execution_unit* host) noexcept
      : prev_(current_host) {
    current_host = host;
  }

  host_scope(const host_scope&) = delete;
  host_scope& operator=(const host_scope&) = delete;

  ~host_scope() {
    current_host = prev_;
  }

private:
  caf::execution_unit* prev_;
};

} // namespace ctxstore::actors
