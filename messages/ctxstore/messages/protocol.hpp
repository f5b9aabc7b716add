#pragma once

#include <caf/actor_system_config.hpp>

#include "ctxstore/context_info.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/atoms.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/grant.hpp"
#include "ctxstore/messages/payload.hpp"
#include "ctxstore/messages/versioned_value.hpp"
#include "ctxstore/storage_stats.hpp"

// The ctxstore protocol. Requests go to the registry actor, which forwards
// (delegates) them to the owner of the context; the owner answers the client.
//
//   (snapshot_atom, context_key)                      -> versioned_value
//   (acquire_atom, context_key, int64 wait_ms)        -> grant
//        wait_ms < 0: wait forever; 0: try once
//   (store_atom, context_key, payload, uint64 token)  -> uint64 version
//        token: the caller's session token, 0 if it holds none
//   (erase_atom, context_key, uint64 token)           -> bool existed
//   (stats_atom)                                      -> storage_stats
//   (info_atom, context_key)                          -> context_info
//   (metrics_atom)                                    -> string (Prometheus)
// Session requests go straight to `grant::owner`, or to the storage, which
// forwards them, when the grant has no owner (remote holders):
//   (commit_atom, context_key, uint64 token, payload)  -> uint64 version
//   (release_atom, context_key, uint64 token, payload) -> uint64 version
//   (abort_atom, context_key, uint64 token)            -> uint64 version
// Failures are `caf::error`s of category "ctxstore" (see ctxstore::errc).

/// @namespace ctxstore::messages
/// The wire protocol between clients, the registry and the owner actors:
/// atoms, message types and their `inspect()` overloads. Clients need it only
/// to talk to a storage without `blocking_client` or `async_client`.
namespace ctxstore::messages {

/// Registers the protocol's message types and the error renderer with `cfg`,
/// so that they can cross the network. Idempotent.
void add_protocol_types(caf::actor_system_config& cfg);

} // namespace ctxstore::messages

namespace ctxstore::messages {

/// The error for a missing context; the text mirrors the reference's
/// `KeyError("No {Type} context known for {id}")`.
caf::error missing_context(const context_key& key);

/// Checks what a client can get wrong in a key: an empty or unregistered
/// type name (`unknown_type`) or a nil id (`bad_request`).
caf::error validate_key(const context_key& key);

} // namespace ctxstore::messages
