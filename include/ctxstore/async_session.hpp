#pragma once

#include <atomic>
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

#include "ctxstore/detail/async_request.hpp"
#include "ctxstore/detail/recycled_value.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/protocol.hpp"
#include "ctxstore/pending.hpp"
#include "ctxstore/storage.hpp"

namespace ctxstore {

namespace actors {
class context;
} // namespace actors

namespace detail {

/// One open session of an actor, shared by its nested levels.
struct async_held {
  caf::event_based_actor* self = nullptr; // the holder
  caf::actor_addr holder; // the same, for use when it may be gone
  std::shared_ptr<const storage> home; // its client's: registry and board
  caf::actor owner;
  // Instead of `owner`: a direct session on the context's state machine (a
  // storage in this process), taken and ended without messages (see
  // actors/.../context.hpp).
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

/// The actor's open session on `key` of `registry`, or nullptr.
std::shared_ptr<async_held> find_async_held(const caf::event_based_actor* self,
                                            const caf::actor& registry,
                                            const messages::context_key& key);

/// Makes `held` findable by `find_async_held` while it is open.
void register_async_held(const std::shared_ptr<async_held>& held);

/// Forgets `held` once it closed (keeps the table small).
void forget_async_held(const async_held* held);

/// The last commit of `key` on `board` (a storage in this process), or
/// nothing: unknown key, or the storage stopped.
std::optional<messages::versioned_value>
read_board(const snapshot_board& board, const messages::context_key& key);

/// The owner of `key` when the storage runs in this process and the context
/// exists (its cell names the owner): requests may skip the registry. Else
/// null: ask the registry, which forwards them or answers itself.
caf::actor local_owner(const storage& st, const messages::context_key& key);

/// How often the registry of a storage in this process kept a retiring owner
/// because a request of this process was still on its way to it (the owner
/// retires when that request's answer arrives); 0 for a remote storage.
uint64_t owners_kept(const storage& st);

/// Normalizes a failure into a ctxstore error (CAF's own: storage_down).
caf::error to_ctxstore_error(caf::error err);

// -- the direct path of actors (a storage in this process) -------------------
// Like a blocking client's: a free context is taken under its state
// machine's mutex (see actors/.../context.hpp), and the holder commits,
// releases, aborts, stores and erases there. Answers still arrive later,
// through the actor's mailbox (respond_later). Everything else goes to the
// owner, counted on the context (inbound_ticket) so that nobody barges past
// it.

/// Counts one request of this process on its way to a context's owner (or
/// queued there) on the context's cell while it is out: meanwhile nobody takes
/// the context directly. It also counts on the storage's board by key
/// (snapshot_board::requests_out), also without a cell (a request to the
/// registry): meanwhile nobody creates the context directly. `done()` (or
/// the destructor: the actor died before the answer) ends the count once.
/// Nothing is counted for a storage in another process.
class inbound_ticket {
public:
  /// `board`: the storage's (null: in another process, nothing counted).
  /// `to_registry`: the request goes to the registry (also counted as such).
  inbound_ticket(const std::shared_ptr<snapshot_board>& board,
                 const messages::context_key& key,
                 std::shared_ptr<actors::context> cell, bool to_registry = false);
  ~inbound_ticket();
  inbound_ticket(const inbound_ticket&) = delete;
  inbound_ticket& operator=(const inbound_ticket&) = delete;

  /// The answer arrived.
  void done() noexcept;

private:
  std::shared_ptr<actors::context> cell_;
  std::shared_ptr<std::atomic<int>> out_; // the board's count of the key
  std::shared_ptr<std::atomic<int>> via_registry_; // the same, to_registry
};

using inbound_ticket_ptr = std::shared_ptr<inbound_ticket>;

/// How a request on a context travels when it does not take the direct path.
struct owner_route {
  caf::actor owner;          // null: ask the registry
  inbound_ticket_ptr ticket; // null: the storage is in another process
};

/// An actor's acquire queued in a context's queue: its turn
/// comes as a message to the actor (see await_turn). If the actor exits
/// before, its place in the queue is given up, or the session it was granted
/// meanwhile ends.
struct actor_waiter;

/// An acquire of `key` by `self`: a direct session if the context is free
/// (`held`, registered and watched: the session is aborted when `self`
/// dies); else, if `may_wait` and it may wait without the owner (see
/// actors::context::may_queue_direct), a place in its queue (`waiter`: pass it
/// to `await_turn` before returning to CAF); else the route to the owner.
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

/// What an acquire queued in a cell gets when its turn comes: the session
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
/// context's cell is free; else nothing and `route` tells where to send it.
std::optional<uint64_t> direct_store(const storage& st,
                                     const messages::context_key& key,
                                     const async_held* held,
                                     const caf::message& value,
                                     owner_route& route);

/// The route of a request that never goes direct (erase by a non-holder).
owner_route route_to_owner(const storage& st, const messages::context_key& key);

/// True if `held` is a direct session that is still open on its cell (not
/// ended, revoked by its lease or cut off by the storage's stop).
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

/// One level of a session; copies of an `async_session` share their level.
struct async_level {
  std::shared_ptr<async_held> held;
  bool outermost = true;
  bool done = false;

  // Dropping the last copy of an open outermost level aborts the session:
  // an async session commits only when told to.
  ~async_level() {
    if (!done && outermost && held && held->open) {
      held->open = false;
      forget_async_held(held.get());
      if (held->cell) {
        drop_direct(*held);
        return;
      }
      // The last copy may be dropped after the actor died (kept elsewhere):
      // then the owner, which monitors it, has ended the session already.
      if (auto holder = caf::actor_cast<caf::actor>(held->holder))
        caf::send_as(holder, held->owner, messages::abort_atom::value,
                     held->key, held->token);
    }
  }
};

} // namespace detail

/// Exclusive access to one context from an event-based actor (see
/// `async_client::acquire`); one level of a possibly nested session. Copies
/// share the level. Use it only inside the actor that acquired it.
/// Release it explicitly to commit; dropping the last copy of an open
/// session aborts it (so does the death of the actor).
template <class T>
class async_session {
public:
  async_session() = default;

  /// The working copy. Throws `error{session_expired}` once the session ended.
  T& operator*() {
    return *working();
  }

  /// Member access to the working copy; throws like `operator*`.
  T* operator->() {
    return working();
  }

  /// The working copy, to read: no copy of the value is made until the first
  /// write through `operator*` or `->` (until then it is the committed value
  /// the session started from). Valid until that write or the end of the
  /// session. Throws `error{session_expired}` once the session ended.
  const T& read() const {
    if (!*this)
      throw error{errc::session_expired, "the session has ended"};
    return level_->held->working.template get_as<T>(0);
  }

  /// Publishes the working copy and keeps the session; answers the version.
  pending<uint64_t> commit() {
    auto held = level_ ? level_->held : nullptr;
    return pending<uint64_t>{[held](auto on_ok, auto on_err) {
      if (!held || !held->open) {
        auto err = make_error(errc::session_expired, "the session has ended");
        return on_err(err);
      }
      auto on_version = [held, on_ok](uint64_t version) {
        held->version = version;
        on_ok(version);
      };
      if (held->cell) {
        auto version = detail::direct_commit(*held, false);
        detail::recycle(held->replaced);
        return detail::answer_later(held->self, std::move(on_version),
                                    error_handler(on_err), std::move(version));
      }
      // Shared, not copied: the holder's next change detaches its own copy.
      auto value = held->working;
      detail::request_then(held->self, held->owner, std::move(on_version),
                           error_handler(on_err), messages::commit_atom::value,
                           held->key, held->token,
                           messages::payload{std::move(value)});
    }};
  }

  /// Ends this level. The outermost level commits the working copy and ends
  /// the session (answers the new version); inner levels only end themselves.
  pending<uint64_t> release() {
    auto level = level_;
    return pending<uint64_t>{[level](auto on_ok, auto on_err) {
      if (!level || level->done || !level->held->open) {
        auto err = make_error(errc::session_expired, "the session has ended");
        return on_err(err);
      }
      level->done = true;
      auto held = level->held;
      if (!level->outermost)
        return on_ok(held->version);
      held->open = false;
      detail::forget_async_held(held.get());
      auto on_version = [held, on_ok](uint64_t version) {
        held->version = version;
        on_ok(version);
      };
      if (held->cell) {
        auto version = detail::direct_commit(*held, true);
        detail::recycle(held->replaced);
        return detail::answer_later(held->self, std::move(on_version),
                                    error_handler(on_err), std::move(version));
      }
      // The session ends here: its working copy goes as it is, no copy.
      auto value = std::move(held->working);
      detail::request_then(held->self, held->owner, std::move(on_version),
                           error_handler(on_err), messages::release_atom::value,
                           held->key, held->token,
                           messages::payload{std::move(value)});
    }};
  }

  /// Discards uncommitted changes and ends the whole session, at any level.
  pending<uint64_t> abort() {
    auto level = level_;
    return pending<uint64_t>{[level](auto on_ok, auto on_err) {
      if (!level || level->done || !level->held->open) {
        auto err = make_error(errc::session_expired, "the session has ended");
        return on_err(err);
      }
      level->done = true;
      auto held = level->held;
      held->open = false;
      detail::forget_async_held(held.get());
      auto on_version = [on_ok](uint64_t version) { on_ok(version); };
      if (held->cell)
        return detail::answer_later(held->self, std::move(on_version),
                                    error_handler(on_err),
                                    detail::direct_abort(*held));
      detail::request_then(held->self, held->owner, std::move(on_version),
                           error_handler(on_err), messages::abort_atom::value,
                           held->key, held->token);
    }};
  }

  /// The version of the value this session last saw or committed.
  uint64_t version() const {
    return level_ ? level_->held->version : 0;
  }

  /// The session's fencing token.
  uint64_t token() const {
    return level_ ? level_->held->token : 0;
  }

  /// False once this level was released or aborted.
  explicit operator bool() const noexcept {
    return level_ && !level_->done && level_->held->open;
  }

  /// @private: used by async_client.
  async_session(std::shared_ptr<detail::async_held> held, bool outermost)
      : level_(std::make_shared<detail::async_level>()) {
    level_->held = std::move(held);
    level_->outermost = outermost;
  }

private:
  /// Hands a failure to `on_err` as a ctxstore error.
  static auto error_handler(detail::error_callback on_err) {
    return [on_err = std::move(on_err)](caf::error& err) {
      auto e = detail::to_ctxstore_error(std::move(err));
      on_err(e);
    };
  }

  T* working() {
    if (!*this)
      throw error{errc::session_expired, "the session has ended"};
    return &detail::writable<T>(level_->held->working);
  }

  std::shared_ptr<detail::async_level> level_;
};

} // namespace ctxstore
