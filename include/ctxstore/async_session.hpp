#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include <caf/actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>

#include "ctxstore/detail/async_request.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/protocol.hpp"
#include "ctxstore/pending.hpp"
#include "ctxstore/storage.hpp"

namespace ctxstore {

namespace detail {

/// One open session of an actor, shared by its nested levels.
struct async_held {
  caf::event_based_actor* self = nullptr; // the holder
  caf::actor registry;
  caf::actor owner;
  messages::context_key key;
  uint64_t token = 0;
  uint64_t version = 0;
  caf::message working; // one T, copy-on-write
  bool open = true;
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

/// Normalizes a failure into a ctxstore error (CAF's own: storage_down).
caf::error to_ctxstore_error(caf::error err);

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
      caf::send_as(caf::actor_cast<caf::actor>(held->self), held->owner,
                   messages::abort_atom::value, held->key, held->token);
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

  /// Publishes the working copy and keeps the session; answers the version.
  pending<uint64_t> commit() {
    auto held = level_ ? level_->held : nullptr;
    return pending<uint64_t>{[held](auto on_ok, auto on_err) {
      if (!held || !held->open) {
        auto err = make_error(errc::session_expired, "the session has ended");
        return on_err(err);
      }
      // Shared, not copied: the holder's next change detaches its own copy.
      auto value = held->working;
      detail::request_then(
        held->self, held->owner,
        [held, on_ok](uint64_t version) {
          held->version = version;
          on_ok(version);
        },
        [on_err](caf::error& err) {
          auto e = detail::to_ctxstore_error(std::move(err));
          on_err(e);
        },
        messages::commit_atom::value, held->key, held->token,
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
      // The session ends here: its working copy goes as it is, no copy.
      auto value = std::move(held->working);
      detail::request_then(
        held->self, held->owner,
        [held, on_ok](uint64_t version) {
          held->version = version;
          on_ok(version);
        },
        [on_err](caf::error& err) {
          auto e = detail::to_ctxstore_error(std::move(err));
          on_err(e);
        },
        messages::release_atom::value, held->key, held->token,
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
      detail::request_then(
        held->self, held->owner, [on_ok](uint64_t version) { on_ok(version); },
        [on_err](caf::error& err) {
          auto e = detail::to_ctxstore_error(std::move(err));
          on_err(e);
        },
        messages::abort_atom::value, held->key, held->token);
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
  T* working() {
    if (!*this)
      throw error{errc::session_expired, "the session has ended"};
    return &level_->held->working.template get_mutable_as<T>(0);
  }

  std::shared_ptr<detail::async_level> level_;
};

} // namespace ctxstore
