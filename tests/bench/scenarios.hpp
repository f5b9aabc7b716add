#pragma once

// The groups of the bench; each adds its rows to the table (stats.hpp).

#include <memory>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "stats.hpp"

namespace bench {

/// The config of every actor system of the bench (both processes): the
/// bench's context types, the CAF options of the command line, and the
/// middleman when `remote`. Null after printing why the options are bad.
std::unique_ptr<caf::actor_system_config> make_config(const options& opts,
                                                      bool remote);

/// Describes the CAF scheduler (and middleman) settings of `cfg`, as text
/// and as a JSON object; stores both in `opts`.
void describe_settings(const caf::actor_system_config& cfg, options& opts);

/// Scenarios 1-5 in this process.
void run_local(const options& opts, caf::actor_system& sys);

/// Scenario 7: many small contexts.
void run_scale(const options& opts, caf::actor_system& sys);

/// Bare CAF round trips and the std::mutex + std::unordered_map baseline.
void run_baselines(const options& opts, caf::actor_system& sys);

/// The durable backends (SQLite, Redis) beside their bare C APIs.
void run_durable(const options& opts, caf::actor_system& sys);

/// Group `resident`: --scale durable contexts in SQLite (filled through the
/// backend), each read once through a storage with max_resident = 10,000;
/// the process's peak resident memory against the bound of the durable issue.
void run_durable_resident(const options& opts, caf::actor_system& sys);

/// Scenario 6 and the remote round trips, against a child process.
void run_remote(const options& opts);

/// Group tls: remote snapshots and session cycles over mutual TLS and plain,
/// alternating, each against its own serving child (certificates made at
/// run time by tests/tls/make-certs.sh in a temporary directory).
void run_tls(const options& opts);

/// Group feed, in this process: commit -> watching actor's handler, and
/// fan-out to 100 watchers, beside a bare async CAF round trip.
void run_feed(const options& opts, caf::actor_system& sys);

/// Group feed, remote: the storage in a serving child, the writer and the
/// watcher here, beside a bare remote round trip.
void run_feed_remote(const options& opts);

/// The child's side of `run_remote` (`--serve`): publishes a storage and an
/// echo actor, prints their ports, serves until stdin closes.
int serve_main(const options& opts);

} // namespace bench
