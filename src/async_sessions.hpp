#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <typeinfo>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>

#include "answer_queue.hpp"
#include "ctxstore/actors/context.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/storage.hpp"
#include "fast_path.hpp"

// The sessions of actors (async_client): which actor holds which session
// (reentrancy), and the fast path of actors on a storage in this process —
// a free context taken under its state machine's lock, a held one waited for
// in its queue with a turn message, and the holder's commit, release, abort,
// store and erase there. Answers still arrive later, through the actor's
// mailbox (respond_later).

namespace ctxstore::detail {

/// One open session of an actor, shared by its nested levels.
struct async_held {
  caf::event_based_actor* self = nullptr; // the holder
  caf::actor_addr holder; // the same, for use when it may be gone
  std::shared_ptr<const storage> home; // its client's: registry and board
  caf::actor owner;
  // Instead of `owner`: a session taken on the fast path (a storage in this
  // process), ended without messages.
  std::shared_ptr<actors::context> cell;
  messages::context_key key;
  uint64_t token = 0;
  uint64_t version = 0;
  caf::message working;  // one T, copy-on-write
  caf::message replaced; // the commit our last direct commit or release
                         // replaced, for detail::recycle
  bool open = true;

  // A direct session still open when the last reference goes (e.g. its grant
  // was never delivered: the actor died first) is aborted: nobody else can
  // end it.
  ~async_held();
};

/// One level of a session; copies of an `async_session` share their level.
/// Dropping the last copy of an open outermost level aborts the session: an
/// async session commits only when told to.
struct async_level {
  std::shared_ptr<async_held> held;
  bool outermost = true;
  bool done = false;

  ~async_level();
};

/// The actor's open session on `key` of `registry`, or nullptr.
std::shared_ptr<async_held> find_async_held(const caf::event_based_actor* self,
                                            const caf::actor& registry,
                                            const messages::context_key& key);

/// Makes `held` findable by `find_async_held` while it is open.
void register_async_held(const std::shared_ptr<async_held>& held);

/// Forgets `held` once it closed (keeps the table small).
void forget_async_held(const async_held* held);

/// The end of `held`'s session (not on the fast path) is on its way to the
/// owner: see context::holder_leaving (a storage of this process only).
void announce_leaving(const async_held& held);

// -- the fast path of actors -------------------------------------------------------------

/// An actor's acquire waiting in a context's queue: its turn comes as a
/// message to the actor (see await_turn). If the actor exits before, its
/// place in the queue is given up, or the session it was granted meanwhile
/// ends.
struct actor_waiter;

/// An acquire of `key` by `self`: a direct session if the context is free
/// (`held`, registered and watched: the session is aborted when `self`
/// dies); else, if `may_wait` and it may wait without the owner (see
/// actors::context::may_queue_direct), a place in its queue (`waiter`: pass
/// it to `await_turn` before returning to CAF); else the route to the owner.
/// `type`: the requested C++ type; a context of another type is left to the
/// owner (which answers as ever). An error in `waiter_error` (the queue is
/// full) is the answer.
struct acquire_route {
  std::shared_ptr<async_held> held;
  std::shared_ptr<actor_waiter> waiter;
  caf::error waiter_error;
  owner_route route;
};

acquire_route direct_acquire(caf::event_based_actor* self,
                             const std::shared_ptr<const storage>& home,
                             const messages::context_key& key,
                             const std::type_info& type, bool may_wait);

/// The direct session of `self` on `key` if the context is free for one
/// (registered and watched, like one of `direct_acquire`), else null and
/// nothing happened.
std::shared_ptr<async_held>
take_free(caf::event_based_actor* self,
          const std::shared_ptr<const storage>& home,
          const messages::context_key& key, const std::type_info& type);

/// What an acquire queued in a context gets when its turn comes: the session
/// (registered and watched like one of `direct_acquire`), or null and why.
using turn_handler
  = std::function<void(std::shared_ptr<async_held>, caf::error&)>;

/// Runs `on_turn` in `self` when the turn of `waiter` (queued by
/// `direct_acquire` of `self` on storage `home` in this handler) comes.
void await_turn(caf::event_based_actor* self,
                std::shared_ptr<actor_waiter> waiter,
                std::shared_ptr<const storage> home, turn_handler on_turn);

/// A store of `value` by `self`: done directly (the new version) when
/// `held` is the actor's open direct session on the key, or when the
/// context is free; else nothing and `route` tells where to send it.
std::optional<uint64_t> direct_store(const storage& st,
                                     const messages::context_key& key,
                                     const async_held* held,
                                     const caf::message& value,
                                     owner_route& route);

/// True if `held` is a direct session that is still open (not ended, revoked
/// by its lease or cut off by the storage's stop).
bool direct_open(const async_held& held);

/// Commit (`end` false) or release (`end` true) of the direct session
/// `held` with its working copy: the new version, or `session_expired` /
/// `storage_down`.
caf::expected<uint64_t> direct_commit(async_held& held, bool end);

/// Abort of the direct session `held`: the version it leaves, or an error.
caf::expected<uint64_t> direct_abort(async_held& held);

/// Erase by the holder of the direct session `held` (ends the session).
caf::expected<bool> direct_erase(async_held& held);

/// Ends the direct session `held` without an answer (the session was
/// dropped): like an abort, if it is still open.
void drop_direct(const async_held& held) noexcept;

/// Normalizes a failure into a ctxstore error (CAF's own: storage_down).
caf::error to_ctxstore_error(caf::error err);

/// Answers a request of `self` later with `x` (a value or an error), like
/// `respond_later`.
template <class R, class OnValue, class OnError>
void answer_later(caf::event_based_actor* self, OnValue on_value,
                  OnError on_error, caf::expected<R> x) {
  if (x)
    respond_later(self, std::move(on_value), std::move(on_error),
                  std::move(*x));
  else
    respond_later(self, std::move(on_value), std::move(on_error),
                  std::move(x.error()));
}

} // namespace ctxstore::detail
