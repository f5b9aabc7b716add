#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include <caf/fwd.hpp>

namespace ctxstore {

class backend;

/// Limits that apply to every context of one storage.
///
/// They can also come from CAF's configuration, group `ctxstore` (in
/// `caf-application.ini` or on the command line, like every CAF option):
///
/// | option                 | type     | default | field         |
/// |------------------------|----------|---------|---------------|
/// | `ctxstore.lease`       | timespan | `0s`    | `lease`       |
/// | `ctxstore.max-waiters` | integer  | `0`     | `max_waiters` |
/// | `ctxstore.local-fast-path` | boolean | `true` | `local_fast_path` |
/// | `ctxstore.backend`     | string   | none    | `backend` (opened: see `open_backend`) |
/// | `ctxstore.idle-timeout` | timespan | `0s`   | `idle_timeout` |
/// | `ctxstore.max-resident` | integer | `0`     | `max_resident` |
/// | `ctxstore.max-value-bytes` | integer | `0`  | `max_value_bytes` |
/// | `ctxstore.require-tls` | boolean  | `false` | (read by `publish`, `connect`) |
///
/// `spawn_storage(sys)` and `default_storage(sys)` use them. (CAF 0.17's
/// command line treats a boolean as a flag that can only be set to true:
/// turn `local-fast-path` off in `caf-application.ini`.)
struct storage_options {
  /// Longest time a holder may keep a context; past it the session is revoked
  /// and the late holder's commit fails with `errc::session_expired`.
  /// Zero: sessions never expire.
  std::chrono::milliseconds lease{0};

  /// Most requests (acquire, store, erase) that may queue on one context
  /// behind its holder; past it they fail at once with `errc::overloaded`.
  /// Zero: unbounded.
  std::size_t max_waiters = 0;

  /// Lets blocking and async clients in the storage's process take a free
  /// context (nobody holds it, nobody waits) and create, store, commit and
  /// release without a message, the way a futex takes a free lock; a thread
  /// (or an actor, without a deadline) waits for a held context in the
  /// context's own queue, in one arrival order with the requests queued at
  /// the owner. Same rules either way; false
  /// sends every request through the registry and the owner (for comparison
  /// and diagnosis).
  bool local_fast_path = true;

  /// Where contexts are kept durable (`open_sqlite`, `open_redis`); null:
  /// in memory only. With a backend, a store, commit, committing release,
  /// update or erase is answered only once the backend made it durable (a
  /// failure: `errc::backend_failure` or `errc::conflict`, and nothing
  /// changed); snapshots never show a change before that. A context that is
  /// not in memory is read from the backend by the first request on it,
  /// with its version. Changes go through the context's owner actor (the
  /// local fast path is off: beside an fsync, a message costs little).
  std::shared_ptr<ctxstore::backend> backend;

  /// With a backend: a context that nobody held, waited for or changed for
  /// this long leaves memory (its owner stops; the next request reads it
  /// again). Zero: never for idleness. Without a backend it has no effect.
  std::chrono::milliseconds idle_timeout{0};

  /// With a backend: about how many contexts stay in memory; beyond it, each
  /// context read from the backend makes one of the least recently used
  /// that nothing involves leave memory (sampled, like Redis's LRU: a bound
  /// kept on average, not at every instant). Zero: no bound. Without a
  /// backend it has no effect.
  std::size_t max_resident = 0;

  /// Most bytes a value sent by another node (through `publish`) may take on
  /// the wire; a store, commit or release with a larger one fails with
  /// `errc::bad_request` and changes nothing. Zero: no limit. Values stored
  /// in this process are not measured. (CAF has read the whole message by
  /// then: this limits what is kept, not what a peer makes CAF read.)
  std::size_t max_value_bytes = 0;

  /// How many changes a watcher (`watch`, `watch_all`) may fall behind: past
  /// it, a context's queued changes give way to its newest, which counts
  /// them in `change::skipped`. Also the bound of what a context retains for
  /// watchers that resume from a version (at most 64 changes). Zero: 1.
  std::size_t watch_buffer = 1024;
};

/// Declares the `ctxstore` option group on `cfg`, so that the command line
/// and `caf-application.ini` accept (and type-check) it and `--help` lists it.
/// `add_context_type` calls it; calling it again does nothing.
void add_storage_options(caf::actor_system_config& cfg);

/// The options of the `ctxstore` group of `cfg`; defaults for those not set.
/// Throws `std::invalid_argument` for a negative value, and
/// `ctxstore::error` if `ctxstore.backend` is set and does not open (each
/// call opens it: a backend is held exclusively).
storage_options storage_options_from(const caf::actor_system_config& cfg);

} // namespace ctxstore
