#pragma once

#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>

#include "async_request.hpp"
#include "ctxstore/actors/context_index.hpp"
#include "ctxstore/actors/party.hpp"
#include "ctxstore/actors/wait_graph.hpp"
#include "ctxstore/detail/blocking_core.hpp"
#include "ctxstore/error.hpp"
#include "remote_guard.hpp"

// The requesters of blocking clients: a scoped_actor sends a thread's
// requests and blocks for their answers. Spawning one costs microseconds, so
// each blocking client keeps a pool (blocking_core::take_requester); a
// session through the owner keeps its requester, which the owner monitors as
// the holder.

namespace ctxstore::detail {

class requester {
public:
  explicit requester(caf::actor_system& sys) : self_(sys) {
    // nop
  }

  ~requester() {
    if (stands_in_)
      stands_in_->forget_agent(actors::actor_party(self_->ctrl()));
  }

  requester(const requester&) = delete;
  requester& operator=(const requester&) = delete;

  /// This requester acquires for the calling thread in `board`'s storage:
  /// its waits and what it holds are the thread's for deadlock detection
  /// (see wait_graph::act_for).
  void act_for_this_thread(const std::shared_ptr<actors::context_index>& board) {
    if (!board)
      return; // a storage of another node: its graph cannot see our threads
    stands_in_ = board->defaults().waits;
    stands_in_->act_for(actors::actor_party(self_->ctrl()),
                        actors::this_thread_party(),
                        actors::this_thread_name());
  }

  /// Sends a request and blocks for its answer; throws ctxstore::error.
  template <class R, class... Ts>
  R call(const caf::actor& dest, Ts&&... xs) {
    R result{};
    if (auto err = try_call(dest, result, std::forward<Ts>(xs)...))
      throw_error(err);
    return result;
  }

  /// Like `call`, to `owner` (may be null) or else `registry`; an owner that
  /// stopped before it read the request (see request_routed) passes it on to
  /// the registry.
  template <class R, class... Ts>
  R call_routed(const caf::actor& owner, const caf::actor& registry,
                const Ts&... xs) {
    R result{};
    if (owner) {
      auto err = try_call(owner, result, xs...);
      if (!err)
        return result;
      if (!bounced(err))
        throw_error(err);
    }
    return call<R>(registry, xs...);
  }

private:
  template <class R, class... Ts>
  caf::error try_call(const caf::actor& dest, R& result, Ts&&... xs) {
    if (!dest)
      throw error{errc::storage_down, "no storage behind this handle"};
    caf::error err;
    auto handle = self_->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    auto guard = remote_guard::make(dest, caf::strong_actor_ptr{self_->ctrl()},
                                    handle.id());
    handle.receive([&](R& x) { result = std::move(x); },
                   [&](caf::error& x) { err = std::move(x); });
    return err;
  }

  caf::scoped_actor self_;
  std::shared_ptr<actors::wait_graph> stands_in_; // see act_for_this_thread
};

/// Borrows a requester of `core`'s pool for one call (to `owner`, or the
/// registry if null).
template <class R, class... Ts>
R call_via_pool(blocking_core& core, const caf::actor& owner, Ts&&... xs) {
  auto req = core.take_requester();
  try {
    auto result = req->call_routed<R>(owner, core.target().registry(), xs...);
    core.give_back(req.release());
    return result;
  } catch (...) {
    core.give_back(req.release());
    throw;
  }
}

} // namespace ctxstore::detail
