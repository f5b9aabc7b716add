#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "port_census.hpp"

// BASP connections (plain or TLS) that an unauthenticated peer cannot use to
// exhaust the node, or a client that connects to a malicious node.
// CAF 0.17's BASP believes the payload length of every header it reads and
// makes the connection's buffer that large at once (a 32-byte header
// announcing 0xFFFFFFFF bytes: 4 GiB, zero-filled), and its acceptor neither
// times out a connection that never finishes the handshake, nor bounds how
// many there are, nor survives running out of file descriptors (accept()
// fails, the listening socket stays readable: the I/O thread spins).
//
// The guarded publication and connection replace CAF's default doorman and
// scribe (caf/io/network/doorman_impl.hpp, scribe_impl.hpp; for TLS those of
// caf::openssl, whose TLS session, caf/openssl/session.hpp, they use) with ones
// that the BASP broker is handed exactly as the middleman actor hands it
// its own (publish_atom / connect_atom messages). They read the BASP
// framing as it goes by:
// - a header whose payload is over the limit (below) is made invalid (its
//   operation byte) before BASP sees it: BASP drops the connection as
//   malformed and allocates nothing;
// - a connection that has not finished its handshake within
//   `handshake_timeout` is shut down;
// - a publication accepts at most `max_connections` at a time (beyond:
//   accepted and closed at once);
// - out of file descriptors, the doorman accepts and closes with a spare
//   descriptor kept for that, or stops accepting for a short while: never a
//   busy loop.
// The pieces, a file each: the census of a publication (port_census.hpp:
// handshake deadlines, connection cap, spare descriptor), the guarded scribe
// (guarded_scribe.hpp: BASP framing, payload bounds, the TLS policy) and the
// guarded doorman (guarded_doorman.hpp: accepting); guarded_port.cpp hands
// them to BASP and runs the watchdog that times handshakes out.
// Everything here leans on CAF 0.17.6's internals: see caf_internals.hpp.

namespace ctxstore::detail {

/// The limits from the CAF options `ctxstore.handshake-timeout` and
/// `ctxstore.max-connections`; messages may take `max_value_bytes` (0: no
/// bound) plus 64 MiB.
port_limits port_limits_from(const caf::actor_system& sys,
                             size_t max_value_bytes);

/// Payload bytes a message may take beyond the largest allowed value.
inline constexpr uint64_t message_overhead_bytes = uint64_t{64} << 20;

/// Publishes `whom` on `address`:`port` through a guarded doorman, plain
/// BASP or (`tls`) BASP over caf::openssl's TLS sessions. Returns the port.
caf::expected<uint16_t> publish_guarded(caf::actor_system& sys,
                                        const caf::actor& whom, uint16_t port,
                                        const std::string& address,
                                        const port_limits& limits, bool tls);

/// Connects to the actor published at `host`:`port` through a guarded
/// scribe (`tls`: over a caf::openssl TLS session); fails after
/// `limits.handshake_timeout` without a handshake.
caf::expected<caf::actor> connect_guarded(caf::actor_system& sys,
                                          const std::string& host,
                                          uint16_t port,
                                          const port_limits& limits, bool tls);

/// True if `address` names this machine only (127.0.0.0/8, ::1,
/// localhost).
bool is_loopback(const std::string& address);

} // namespace ctxstore::detail
