#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "ctxstore/actors/snapshot_board.hpp"
#include "ctxstore/storage_options.hpp"

namespace ctxstore::actors {

/// The name under which the default storage's registry is kept in the actor
/// system's registry of named actors.
constexpr caf::atom_value default_storage_name = caf::atom("ctxstore");

/// Spawns the registry of a new storage: it maps (type name, id) to the owner
/// actor of that context, spawns owners on the first store, answers stats,
/// and forwards every other request to the owner. `hide` keeps the registry
/// and its owners out of the actors that the system awaits at shutdown.
/// `board`, if any, gets every context's last commit (see snapshot_board).
caf::actor spawn_registry(caf::actor_system& sys, storage_options options,
                          bool hide,
                          std::shared_ptr<detail::snapshot_board> board);

} // namespace ctxstore::actors
