#pragma once

#include <cstddef>
#include <cstdint>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/fwd.hpp>

// Bounds on what a remote peer can make a node hold. CAF 0.17's middleman
// queues everything it sends to a peer in the connection's write buffer,
// without any bound: a peer that stops reading (a stopped process, a full
// network) makes the node hold every answer it asked for (50 snapshots of a
// 20 MiB context: 1.1 GB), and the middleman's shutdown waits until that
// buffer is written, that is forever (its connections close gracefully: the
// multiplexer's thread, which the actor system joins, runs until each has
// sent everything). Two remedies, both carried out on the middleman's own
// thread through the BASP broker's connections:
// - while writing a value for a peer (messages::save_payload), the bytes
//   already waiting in that connection's buffer are compared with
//   `ctxstore.max-pending-bytes`; past it the peer is cut off (the socket is
//   shut down, CAF then closes the connection and frees its buffers) and the
//   value is not written;
// - when a published storage stops, the connections whose socket cannot
//   take more data (its send buffer is full: the peer does not read) are cut
//   off, so that the node stops at once.

namespace ctxstore::actors {

/// Default of `ctxstore.max-pending-bytes`: 128 MiB.
inline constexpr int64_t default_max_pending_bytes = int64_t{128} << 20;

/// Called by the value codec with the serializer that writes a value for
/// another node. True if the connection it writes to has more than
/// `ctxstore.max-pending-bytes` waiting: the peer was cut off and the value
/// must not be written. Only on the middleman's thread (else false).
bool peer_over_limit(caf::serializer& sink);

/// Spawns the actor that cuts off the connections that cannot take more
/// data when `registry` stops (see above). It is not hidden, so that the
/// actor system waits for it before it stops the middleman; it waits for the
/// middleman's thread at most a second.
caf::actor spawn_stop_sweeper(caf::actor_system& sys,
                              const caf::actor& registry);

} // namespace ctxstore::actors
