#pragma once

#include <memory>
#include <typeinfo>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>

#include "ctxstore/actors/context.hpp"
#include "ctxstore/actors/counters.hpp"
#include "ctxstore/actors/context_index.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/storage_options.hpp"

namespace ctxstore::actors {

/// Everything an owner needs at spawn time.
struct owner_config {
  messages::context_key key;
  std::shared_ptr<context> ctx; // holds the first value
  storage_options options;
  std::shared_ptr<counters> stats;
  caf::actor_addr registry; // weak: the registry owns its owners, not back
  std::shared_ptr<actors::context_index> board; // has `ctx` already
  /// Spawned for a store of a durable context that is not in memory: if
  /// that store is its first message, it is made durable in one backend
  /// step, without reading the context first (owner_durable.cpp,
  /// await_first_store).
  bool first_store = false;
};

/// Spawns an owner monitored by `registry_self` (not linked: a link puts an
/// entry on the registry's own list of attachables, which CAF searches
/// linearly whenever a linked owner exits, so that each retirement would
/// cost O(owners)); `hide` keeps it out of the count of actors that the
/// actor system awaits at shutdown. The registry stops its owners when it
/// stops (registry.cpp).
caf::actor spawn_owner(caf::local_actor* registry_self, owner_config cfg,
                       bool hide);

} // namespace ctxstore::actors
