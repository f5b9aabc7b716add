#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "ctxstore/actors/context_index.hpp"

namespace ctxstore::actors {

/// Spawns the actor that `publish` hands to the middleman for `registry`.
/// It forwards every request to the registry (the original sender stays the
/// sender), but references it only weakly: the middleman keeps published
/// actors alive until it stops, after the actor system has waited for its
/// actors, so publishing the registry itself would keep the storage alive and
/// the system's shutdown waiting forever. Hidden, for the same reason; it
/// stops when the registry stops. A snapshot of a context on the storage's
/// `board` is answered by the gateway itself (one actor less on the way).
caf::actor spawn_gateway(caf::actor_system& sys, const caf::actor& registry,
                         std::shared_ptr<actors::context_index> board);

} // namespace ctxstore::actors
