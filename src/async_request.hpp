#pragma once

#include <memory>
#include <utility>

#include <caf/atom.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/sec.hpp>

#include "answer_queue.hpp"
#include "remote_guard.hpp"

namespace ctxstore::detail {

/// `self->request(dest, caf::infinite, xs...).then(on_value, on_error)`, plus
/// a guard that answers `storage_down` if a remote `dest` becomes
/// unreachable. The guard lives as long as the response handlers.
template <class OnValue, class OnError, class... Ts>
void request_then(caf::event_based_actor* self, const caf::actor& dest,
                  OnValue on_value, OnError on_error, Ts&&... xs) {
  auto handle = self->request(dest, caf::infinite, std::forward<Ts>(xs)...);
  auto guard = remote_guard::make(dest, caf::strong_actor_ptr{self->ctrl()},
                                  handle.id());
  handle.then(std::move(on_value),
              [on_error, guard](caf::error& err) mutable { on_error(err); });
}

/// True for the answer of an actor that stopped before it read the request.
inline bool bounced(const caf::error& err) {
  return err.category() == caf::atom("system")
         && err.code() == static_cast<uint8_t>(caf::sec::request_receiver_down);
}

/// `request_then` to `owner` (found through the context's cell; may be null),
/// else to `registry`. An owner that stopped in between (its context was
/// erased and it retired) bounces the request unread: then it goes to the
/// registry, which answers for the key as it is now.
template <class OnValue, class OnError, class... Ts>
void request_routed(caf::event_based_actor* self, const caf::actor& owner,
                    const caf::actor& registry, OnValue on_value,
                    OnError on_error, Ts... xs) {
  if (!owner) {
    request_then(self, registry, std::move(on_value), std::move(on_error),
                 std::move(xs)...);
    return;
  }
  auto retry = [=](caf::error& err) mutable {
    if (bounced(err))
      request_then(self, registry, std::move(on_value), std::move(on_error),
                   std::move(xs)...);
    else
      on_error(err);
  };
  request_then(self, owner, on_value, std::move(retry), xs...);
}

} // namespace ctxstore::detail
