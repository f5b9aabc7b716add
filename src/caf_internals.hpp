#pragma once

#include <caf/fwd.hpp>
#include <caf/message_id.hpp>
#include <caf/timespan.hpp>

// Every use ctxstore makes of CAF 0.17.6 beyond its documented API: protected
// members, hand-built mailbox elements, response handlers without a request.
// Each may change with CAF's version; nothing else in ctxstore goes behind
// CAF's back, so this file (and caf_internals.cpp) is what a CAF upgrade
// checks first. Some files go deeper, each for one concern: the guarded
// port (guarded_port.cpp, guarded_doorman.cpp, guarded_scribe.cpp,
// port_census.cpp: CAF's doorman, scribe and acceptor replaced, the BASP
// framing read as it passes; guarded_scribe.cpp reaches CAF's OpenSSL
// session through an explicit template instantiation) and the bounds on a
// peer's pending bytes (actors/ctxstore/actors/peer_limits.cpp).

namespace ctxstore::detail {

/// The option set of `cfg` that `opt_group`s add to (protected in CAF).
caf::config_option_set& custom_options(caf::actor_system_config& cfg);

/// A fresh response id of `self`, for an answer that `self` will send to
/// itself (see on_own_response).
caf::message_id new_response_id(caf::event_based_actor* self);

/// Runs `handler` in `self` when a response with id `rid` reaches it: a
/// response to ourselves, which no behavior of the actor (nor `become`) can
/// intercept.
void on_own_response(caf::event_based_actor* self, caf::message_id rid,
                     caf::behavior handler);

// The responses below are mailbox elements that hold their value (one
// allocation); a `caf::message` inside an element would be a second one.

/// Puts `ok_atom` into `self`'s own mailbox as the response `rid` (called
/// from inside `self`).
void respond_ok_to_self(caf::event_based_actor* self, caf::message_id rid);

/// Puts `ok_atom` into `to`'s mailbox as the response `rid`, sent by `from`
/// (may be null), from any thread; `host` (may be null, or of another actor
/// system: then ignored) is the worker to run `to` on if it must be
/// scheduled: the one running this thread (actors/host_scope.hpp).
void enqueue_ok(const caf::strong_actor_ptr& to,
                const caf::strong_actor_ptr& from, caf::message_id rid,
                caf::execution_unit* host);

/// Like `enqueue_ok` with `err` as the response.
void enqueue_error(const caf::strong_actor_ptr& to,
                   const caf::strong_actor_ptr& from, caf::message_id rid,
                   caf::error err, caf::execution_unit* host);

/// Delivers `content` to `to` as a message from itself after `delay`, from
/// any thread (its own timer: nobody else can send it).
void schedule_to_self(const caf::strong_actor_ptr& to, caf::timespan delay,
                      caf::message content);

} // namespace ctxstore::detail
