#pragma once

#include <memory>
#include <utility>

#include <caf/event_based_actor.hpp>

#include "ctxstore/detail/remote_guard.hpp"

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

} // namespace ctxstore::detail
