#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "ctxstore/actors/context_index.hpp"
#include "ctxstore/storage_options.hpp"

namespace ctxstore::actors {

/// The name under which the default storage's registry is kept in the actor
/// system's registry of named actors.
constexpr caf::atom_value default_storage_name = caf::atom("ctxstore");

/// A new storage: its registry and its board of contexts.
struct spawned_storage {
  caf::actor registry;
  std::shared_ptr<actors::context_index> board;
};

/// Spawns the registry of a new storage: it finds contexts on the storage's
/// board (see context_index.hpp), creates them on the first store, spawns a
/// context's owner actor when the context first needs one, answers
/// snapshots and stats, and forwards every other request to the owner.
/// `hide` keeps the registry and its owners out of the actors that the
/// system awaits at shutdown.
spawned_storage spawn_registry(caf::actor_system& sys, storage_options options,
                               bool hide);

} // namespace ctxstore::actors
