#pragma once

#include <cstdint>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>
#include <caf/result.hpp>

#include "ctxstore/actors/context_index.hpp"
#include "ctxstore/actors/feed.hpp"
#include "ctxstore/messages/context_key.hpp"

// The change feed across nodes (issue 22). On the storage's node, a
// forwarder actor per remote watch watches like a local actor and sends each
// change to the watcher's sink actor, which it monitors: when the sink dies
// or its node disconnects, the forwarder ends and its watch with it. On the
// watcher's node, a receiver actor is that sink: it queues the changes in a
// feed_sink (the watcher's queue, bounded by the storage's watch_buffer,
// which the forwarder sends first) and monitors the storage. Implemented in
// src/feed_remote.cpp.

namespace ctxstore::actors {

/// The registry's answer to `(watch_atom, key, all, after, incarnation,
/// sink)`: checks the request and spawns its forwarder.
caf::result<caf::ok_atom>
start_forwarder(caf::local_actor* registry,
                const std::shared_ptr<context_index>& board,
                const messages::context_key& key, bool all, uint64_t after,
                uint64_t incarnation, const caf::actor& sink);

/// Spawns the receiver that fills `sink` with the changes from the storage
/// behind `registry` (failing it with `storage_down` if that goes away).
caf::actor spawn_feed_receiver(caf::actor_system& sys,
                               std::shared_ptr<feed_sink> sink,
                               const caf::actor& registry);

} // namespace ctxstore::actors
