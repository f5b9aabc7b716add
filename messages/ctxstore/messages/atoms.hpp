#pragma once

#include <caf/atom.hpp>

// Every atom of the ctxstore protocol (text at most 10 characters).
namespace ctxstore::messages {

/// Opens or re-enters an exclusive session (answer: `grant`).
using acquire_atom = caf::atom_constant<caf::atom("acquire")>;
/// Publishes the holder's value and keeps the session (answer: version).
using commit_atom = caf::atom_constant<caf::atom("commit")>;
/// Publishes the holder's value and ends the session (answer: version).
using release_atom = caf::atom_constant<caf::atom("release")>;
/// Ends the session without publishing (answer: version).
using abort_atom = caf::atom_constant<caf::atom("abort")>;
/// Creates or replaces a context (answer: version).
using store_atom = caf::atom_constant<caf::atom("store")>;
/// Asks for the last committed value (answer: `versioned_value`).
using snapshot_atom = caf::atom_constant<caf::atom("snapshot")>;
/// Removes a context (answer: whether it existed).
using erase_atom = caf::atom_constant<caf::atom("erase")>;
/// Asks a storage for its counts (answer: `storage_stats`).
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// Asks who holds a context and who waits (answer: `context_info`).
using info_atom = caf::atom_constant<caf::atom("info")>;
/// Asks a storage for its metrics (answer: Prometheus text, a string).
using metrics_atom = caf::atom_constant<caf::atom("metrics")>;
/// Starts a watch for a watcher on another node: `(watch_atom, key, all,
/// after_version, incarnation, sink)`; the sink actor then gets `(watch_atom,
/// buffer)` (the storage's watch_buffer, for its queue) and `change_atom`
/// messages (answer: `ok_atom`). See src/feed_remote.cpp.
using watch_atom = caf::atom_constant<caf::atom("watch")>;
/// One change for a remote watcher's sink: `(change_atom, key, version,
/// skipped, incarnation, payload)` (an empty payload: erased), or
/// `(change_atom, error)`: the watch ended.
using change_atom = caf::atom_constant<caf::atom("change")>;

/// Internal: an owner of an erased context with nothing left to do asks the
/// registry to forget it. The registry answers `retire_check_atom`; the owner
/// answers `retire_confirm_atom` if it handled nothing in between; the
/// registry then answers `retired_atom` (the owner stops) or
/// `retire_denied_atom` (it goes on). See registry.cpp.
using retire_atom = caf::atom_constant<caf::atom("retire")>;
/// Internal: the registry's first answer to `retire_atom` (everything it
/// forwarded to the owner before is in the owner's mailbox ahead of it).
using retire_check_atom = caf::atom_constant<caf::atom("rtcheck")>;
/// Internal: the owner handled nothing since it asked to retire.
using retire_confirm_atom = caf::atom_constant<caf::atom("rtconfirm")>;
/// Internal: the registry forgot the owner; the owner then stops.
using retired_atom = caf::atom_constant<caf::atom("retired")>;
/// Internal: the registry keeps the owner (a request may still reach it);
/// `true`: try again at once, `false`: wait for a handover.
using retire_denied_atom = caf::atom_constant<caf::atom("rtdenied")>;
/// Internal: an owner's timer for the lease of the current session.
using lease_atom = caf::atom_constant<caf::atom("lease")>;
/// Internal: an owner's timer for a queued acquire's wait limit.
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;

/// Internal: a client of this process ended a session without the owner
/// while a request was parked there, or erased the context: the owner runs
/// its queue (or retires).
using handover_atom = caf::atom_constant<caf::atom("handover")>;

/// Internal: threads stored durable contexts that wait for an owner (the
/// board's adoption_queue): the registry takes them.
using adopt_atom = caf::atom_constant<caf::atom("adopt")>;

/// Internal: a durable owner's backend answered its write (sequence number;
/// the outcome waits in the owner's hand-off).
using persisted_atom = caf::atom_constant<caf::atom("persisted")>;

/// Internal: a durable owner's backend answered its load (sequence number;
/// the outcome waits in the owner's hand-off).
using loaded_atom = caf::atom_constant<caf::atom("loaded")>;

/// Internal: a durable owner's timer: nothing happened since message N
/// (then the context leaves memory).
using idle_atom = caf::atom_constant<caf::atom("idle")>;

/// Internal: the registry asks a durable owner to leave memory if nothing
/// involves its context (max_resident).
using evict_atom = caf::atom_constant<caf::atom("evict")>;

/// The category atom of ctxstore's error codes.
constexpr caf::atom_value error_category = caf::atom("ctxstore");

} // namespace ctxstore::messages
