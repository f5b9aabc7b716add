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

/// Loads CAF's OpenSSL module (`caf::openssl::manager`) into `cfg`, the one
/// call that TLS needs besides the options of the `openssl` group. Call it
/// after `cfg.load<caf::io::middleman>()` (CAF starts the modules in load
/// order and the OpenSSL one needs the middleman) and before the actor system
/// exists.
/// With the module loaded and no `openssl` group option set, `publish` and
/// `connect` stay plain.
void load_tls(caf::actor_system_config& cfg);

/// True if CAF's configuration of `sys` sets any option of the `openssl` group
/// (certificate, key, passphrase, cafile, capath): then `publish` and
/// `connect` use mutual TLS, and CAF verifies the peer's certificate against
/// the CA on both sides.
bool tls_configured(const caf::actor_system& sys);

/// How `publish` makes a storage reachable.
struct publish_options {
  /// The address to listen on: "127.0.0.1" (this machine only), "0.0.0.0"
  /// (every interface) or one interface's address. A plain publication on
  /// anything but loopback needs `allow_plain_remote`.
  std::string address = "127.0.0.1";
  /// Peers may take snapshots, views and stats, and nothing else: every
  /// acquire, store, update, commit, release and erase fails with
  /// `errc::forbidden` and changes nothing.
  bool read_only = false;
  /// Allows a plain (not TLS) publication on an address other than loopback
  /// (also: the CAF option `ctxstore.allow-plain-remote`). Without it such
  /// a publication fails with `errc::forbidden`: anyone who reaches the
  /// port reads and changes every context (README, "Remote access").
  bool allow_plain_remote = false;
};

/// Makes `st` reachable from other CAF nodes on `opts.address`:`port`
/// through CAF's middleman (load `caf::io::middleman` into the config). Port
/// 0 picks a free port. Returns the port.
///
/// With any option of the `openssl` group set (see `tls_configured`) the
/// port speaks mutual TLS only (caf::openssl's sessions): a peer must present a
/// certificate that chains to `openssl.cafile` / `openssl.capath`. Errors:
/// `errc::bad_request` if those options are incomplete (certificate, key
/// and a CA are all needed), do not load, or `load_tls` was not called;
/// `errc::forbidden` for a plain publication while `ctxstore.require-tls` is
/// true, or on an address other than loopback unless allowed (see
/// `publish_options::allow_plain_remote`); `errc::storage_down` if the port
/// cannot be opened.
///
/// A plain port bounds what an unauthenticated peer costs the node: BASP
/// messages of at most 64 KiB before the peer's handshake and
/// `max_value_bytes` + 64 MiB after it (no bound without max_value_bytes),
/// a handshake within `ctxstore.handshake-timeout`, at most
/// `ctxstore.max-connections` connections, no busy loop when the process
/// runs out of file descriptors.
///
/// Only this storage is reachable through the port, only by the requests of
/// its protocol (messages/protocol.hpp); see the README, "Remote access".
caf::expected<uint16_t> publish(caf::actor_system& sys, const storage& st,
                                uint16_t port, const publish_options& opts);

/// `publish(sys, st, port, publish_options{address})`: read and write.
caf::expected<uint16_t> publish(caf::actor_system& sys, const storage& st,
                                uint16_t port,
                                const std::string& address = "127.0.0.1");

/// Connects to a storage that another node published on `host`:`port`. The
/// handle works with `blocking_client` and `async_client` like a local one.
/// Nothing listening, or a lost connection later, is `errc::storage_down`.
/// TLS as for `publish`: with options of the `openssl` group set the
/// connection is mutual TLS (a server whose certificate does not chain to our CA, or a
/// plain server, is `errc::storage_down`); `errc::bad_request` and
/// `errc::forbidden` as there.
caf::expected<storage> connect(caf::actor_system& sys, const std::string& host,
                               uint16_t port);

} // namespace ctxstore
