#pragma once

#include <cstdint>
#include <string>

#include <caf/fwd.hpp>

// Who holds or waits for a context, as the wait-for graph (wait_graph.hpp)
// sees it: a thread of this process or an actor. A thread is its OS thread id
// (odd: id * 2 + 1, what `top -H` and debuggers show); an actor is the address
// of its control block (even: aligned), unique while it lives. 0: nobody.

namespace ctxstore::actors {

using party = uintptr_t;

/// The OS thread id of the calling thread, read once per thread.
uint64_t os_thread_id() noexcept;

/// The calling thread: cached, a load and a branch after the first call.
inline party this_thread_party() noexcept {
  static thread_local party cached = 0;
  if (cached == 0)
    cached = static_cast<party>(os_thread_id()) * 2 + 1;
  return cached;
}

/// The actor behind `ctrl` (none: 0).
inline party actor_party(const caf::actor_control_block* ctrl) noexcept {
  return reinterpret_cast<party>(ctrl);
}

/// "thread 1234" for the calling thread.
std::string this_thread_name();

/// "actor 42" (an actor of this node) or "actor 42 on NODE".
std::string actor_name(const caf::actor_addr& who);

} // namespace ctxstore::actors
