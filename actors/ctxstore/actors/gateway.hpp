#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

namespace ctxstore::actors {

/// Spawns the actor that `publish` hands to the middleman for `registry`.
/// It forwards every request to the registry (the original sender stays the
/// sender), but references it only weakly: the middleman keeps published
/// actors alive until it stops, after the actor system has waited for its
/// actors, so publishing the registry itself would keep the storage alive and
/// the system's shutdown waiting forever. Hidden, for the same reason; it
/// stops when the registry stops.
caf::actor spawn_gateway(caf::actor_system& sys, const caf::actor& registry);

} // namespace ctxstore::actors
