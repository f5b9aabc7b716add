#pragma once

#include <cstdint>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/expected.hpp>

#include "ctxstore/storage.hpp"

namespace ctxstore {

/// Sets CAF options that cut the latency of a remote round trip, for a node
/// that publishes a storage or connects to one. Call it on the config before
/// the actor system is created (CAF reads these when it starts) and before
/// `cfg.parse(...)`; an option the config already has (set by the user, a
/// config file or the command line) is never changed, so CAF's own
/// configuration overrides each of them:
/// - `middleman.workers = 0`: the middleman's I/O thread deserializes
///   incoming messages itself instead of handing each one to a worker thread
///   (one thread wake-up less per message; CAF's default is 1).
/// - `work-stealing.moderate-poll-attempts = 0`: an idle scheduler thread
///   goes from its short busy poll straight to waiting on a condition
///   variable, which a new message wakes at once. With CAF's default (500
///   polls with 50 us sleeps in between) a message that arrives from the
///   network waits for the end of such a sleep: most of CAF's ~250 us
///   loopback round trip. Idle threads then look for work to steal only
///   every `work-stealing.relaxed-sleep-duration` (10 ms).
/// Nagle's algorithm needs nothing: CAF sets TCP_NODELAY on its connections.
/// No effect on a `scheduler.policy=sharing` scheduler beyond the first.
void apply_remote_defaults(caf::actor_system_config& cfg);

/// Makes `st` reachable from other CAF nodes on `address`:`port` through
/// CAF's middleman (load `caf::io::middleman` into the config). Port 0 picks
/// a free port. Returns the port, or an `errc::storage_down` error.
caf::expected<uint16_t> publish(caf::actor_system& sys, const storage& st,
                                uint16_t port,
                                const std::string& address = "127.0.0.1");

/// Connects to a storage that another node published on `host`:`port`. The
/// handle works with `blocking_client` and `async_client` like a local one.
/// Nothing listening, or a lost connection later, is `errc::storage_down`.
caf::expected<storage> connect(caf::actor_system& sys, const std::string& host,
                               uint16_t port);

} // namespace ctxstore
