#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "ctxstore/actors/context_index.hpp"
#include "ctxstore/storage_options.hpp"

namespace ctxstore::actors {

/// The name of the marker actor that tells which actor system the default
/// storage of a table entry belongs to (see default_storage). Not the
/// storage's registry itself: CAF 0.17's middleman delivers messages from any
/// connected node to any named actor (BASP's named receivers), which would
/// let a peer of any publication reach the default storage directly. The
/// marker drops everything.
constexpr caf::atom_value default_storage_name = caf::atom("ctxstore");

/// True if `registry` is the registry of `sys`'s default storage.
bool is_default_storage(caf::actor_system& sys, const caf::actor& registry);

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
