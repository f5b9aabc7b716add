#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>

#include <caf/event_based_actor.hpp>
#include <caf/message.hpp>

#include "ctxstore/context_id.hpp"
#include "ctxstore/context_info.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/detail/watch_core.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/versioned_value.hpp"
#include "ctxstore/pending.hpp"
#include "ctxstore/storage.hpp"
#include "ctxstore/storage_stats.hpp"
#include "ctxstore/watch_handle.hpp"

namespace ctxstore::detail {

/// One level of an actor's session (an `async_session` and its copies);
/// defined in the library.
struct async_level;

using async_level_ptr = std::shared_ptr<async_level>;

/// Type-erased half of `async_client`, compiled once in the library. Every
/// operation answers later, inside the actor, through exactly one of its two
/// callbacks; errors are ctxstore errors.
class async_core {
public:
  // The handler of a `pending<uint64_t>` as it is: passed on without a
  // wrapper (one closure per answer, not three).
  using version_handler = pending<uint64_t>::value_handler;
  using value_handler = std::function<void(messages::versioned_value&)>;
  using level_handler = std::function<void(async_level_ptr)>;

  async_core(caf::event_based_actor* self, storage st);

  /// The last commit of `key` read without a message (a storage in this
  /// process that has it), else nothing: then ask with `snapshot`.
  std::optional<messages::versioned_value>
  local_snapshot(const messages::context_key& key) const;

  /// A session taken at once, without waiting and without a message: the
  /// actor's own direct session on `key` again (a nested level), or a free
  /// context of `type` in this process. Else nothing happened: ask with
  /// `acquire`.
  async_level_ptr acquire_now(const messages::context_key& key,
                              const std::type_info& type) const;

  /// Runs `answer` later in the actor, never inside this call (answers that
  /// need no other actor run in batches, see src/answer_queue.hpp).
  void answer_later(std::function<void()> answer) const;

  /// The last commit of `key` (a value of `type`, else `type_mismatch`).
  void snapshot(const messages::context_key& key, const std::type_info& type,
                value_handler on_value, error_callback on_err) const;

  /// Creates or replaces the context with `value` (one value of the key's
  /// type): its new version.
  void store(const messages::context_key& key, caf::message value,
             version_handler on_version, error_callback on_err) const;

  /// Opens (or re-enters) a session on a context of `type`; `wait_ms` < 0:
  /// as long as it takes.
  void acquire(const messages::context_key& key, const std::type_info& type,
               int64_t wait_ms, level_handler on_level,
               error_callback on_err) const;

  /// Removes the context: whether it existed.
  void erase(const messages::context_key& key,
             std::function<void(bool)> on_erased, error_callback on_err) const;

  /// A change for `watch`'s handler; false ends the watch.
  using change_handler = std::function<bool(raw_change&)>;

  /// Starts watching `key` (`all`: every context of `key.type`) for values
  /// of `type`, after version `after` of life `incarnation` (0: unknown):
  /// `on_change` runs in the actor for each change, in order;
  /// `on_err` once if the watch ends with an error (src/feed_clients.cpp).
  std::shared_ptr<async_watch> watch(const messages::context_key& key,
                                     bool all, uint64_t after,
                                     uint64_t incarnation,
                                     const std::type_info& type,
                                     change_handler on_change,
                                     error_callback on_err) const;

  /// The storage's counts.
  void stats(std::function<void(storage_stats&)> on_stats,
             error_callback on_err) const;

  /// Who holds the context and who waits.
  void info(const messages::context_key& key,
            std::function<void(context_info&)> on_info,
            error_callback on_err) const;

  /// The storage's metrics (Prometheus text).
  void metrics(std::function<void(std::string&)> on_text,
               error_callback on_err) const;

  /// The storage this core talks to.
  const storage& target() const noexcept {
    return *home_;
  }

  /// The key of `id` for a context of type T, or an empty key after
  /// reporting (through `on_err`) a missing storage or an unregistered type.
  template <class T>
  messages::context_key key_of(const context_id& id,
                               const error_callback& on_err) const {
    if (!home_->registry()) {
      fail(on_err, errc::storage_down, "no storage behind this handle");
      return messages::context_key{};
    }
    try {
      return messages::context_key{type_name_of<T>(), id};
    } catch (const error& e) {
      fail(on_err, e.code(), e.what());
      return messages::context_key{};
    }
  }

  /// Hands `on_err` an error with `code` and `what`.
  static void fail(const error_callback& on_err, errc code, const char* what);

private:
  caf::event_based_actor* self_;
  // Shared by this client's requests and sessions: copying it touches a count
  // only this actor uses, whereas copies of the storage handle would bounce
  // the counts that every actor of the process shares between the cores.
  std::shared_ptr<const storage> home_;
};

// -- one level of a session -----------------------------------------------------------

/// True while `level` is open (not ended, its session not ended).
bool level_open(const async_level& level) noexcept;

/// The session's working copy (the level is open).
caf::message& level_working(const async_level& level) noexcept;

/// The version the session last saw or committed.
uint64_t level_version(const async_level& level) noexcept;

/// The session's fencing token.
uint64_t level_token(const async_level& level) noexcept;

/// Publishes the working copy and keeps the session.
void commit_level(const async_level_ptr& level,
                  async_core::version_handler on_version,
                  error_callback on_err);

/// Ends the level; the outermost commits and ends the session.
void release_level(const async_level_ptr& level,
                   async_core::version_handler on_version,
                   error_callback on_err);

/// Discards uncommitted changes and ends the whole session.
void abort_level(const async_level_ptr& level,
                 async_core::version_handler on_version,
                 error_callback on_err);

} // namespace ctxstore::detail
