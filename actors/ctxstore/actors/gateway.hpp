#pragma once

#include <cstddef>
#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "ctxstore/actors/context_index.hpp"

namespace ctxstore::actors {

/// What one publication lets its peers do.
struct gateway_options {
  /// Refuse every request that could change a context (acquire, store,
  /// erase, commit, release, abort) with `errc::forbidden`.
  bool read_only = false;
  /// Refuse a store, commit or release whose value took more than this many
  /// bytes on the wire with `errc::bad_request`. Zero: no limit.
  size_t max_value_bytes = 0;
};

/// Spawns the actor that `publish` hands to the middleman for `registry`.
/// It forwards every request to the registry (the original sender stays the
/// sender), but references it only weakly: the middleman keeps published
/// actors alive until it stops, after the actor system has waited for its
/// actors, so publishing the registry itself would keep the storage alive and
/// the system's shutdown waiting forever. Hidden, for the same reason; it
/// stops when the registry stops. A snapshot of a context on the storage's
/// `board` is answered by the gateway itself (one actor less on the way).
/// Only the requests of the protocol (messages/protocol.hpp) pass; anything
/// else is `errc::bad_request` without reaching the storage (the registry's
/// internal messages among them).
caf::actor spawn_gateway(caf::actor_system& sys, const caf::actor& registry,
                         std::shared_ptr<actors::context_index> board,
                         gateway_options opts = {});

} // namespace ctxstore::actors
