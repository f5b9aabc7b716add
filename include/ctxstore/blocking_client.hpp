#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/message.hpp>

#include "ctxstore/change.hpp"
#include "ctxstore/context_id.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/detail/blocking_core.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/session.hpp"
#include "ctxstore/shared_value.hpp"
#include "ctxstore/snapshot_view.hpp"
#include "ctxstore/storage.hpp"
#include "ctxstore/storage_stats.hpp"
#include "ctxstore/versioned.hpp"
#include "ctxstore/watcher.hpp"

namespace ctxstore {

/// Access to a storage from any thread; every call blocks until the storage
/// answered. Failures throw `ctxstore::error`. Cheap to copy; copies share
/// their pool of requesting actors. Destroy clients before the actor system.
///
/// Reentrancy: the holder of a session is the thread. While a thread holds a
/// session on a key (through any `blocking_client` of the same storage
/// handle), its nested `acquire`, `store`, `erase` and `snapshot` of that key
/// proceed at once instead of waiting for itself.
class blocking_client {
public:
  /// A client of storage `st` in actor system `sys`; it spawns its
  /// requesting actors in `sys` on demand.
  blocking_client(caf::actor_system& sys, storage st)
      : core_(std::make_shared<detail::blocking_core>(sys, std::move(st))) {
    // nop
  }

  /// Creates or replaces the context. Waits behind a session held by someone
  /// else; from the holder it replaces the committed value and the holder's
  /// working copy at once.
  template <class T>
  void store(const context_id& id, T value) {
    store(id, shared_value<T>{std::move(value)});
  }

  /// `store` without a copy of `T`: the context shares `value` (see
  /// `shared_value`). From the holder, its working copy shares it too until
  /// its next write.
  template <class T>
  void store(const context_id& id, const shared_value<T>& value) {
    auto key = key_of<T>(id);
    if (auto held = detail::find_held(*core_, key)) {
      try {
        held->version = core_->commit(*held, value.message());
        // The holder's later changes apply on top of what it stored.
        held->working = value.message();
        return;
      } catch (const error& e) {
        if (e.code() != errc::session_expired)
          throw;
        held->open = false; // revoked: store like anybody else
      }
    }
    core_->store(key, value.message());
  }

  /// The last committed value. Never waits for a session; never shows
  /// uncommitted changes. Throws `error{no_such_context}` if missing.
  template <class T>
  T snapshot(const context_id& id) {
    return snapshot_versioned<T>(id).value;
  }

  /// The last committed value with its version.
  template <class T>
  versioned<T> snapshot_versioned(const context_id& id) {
    auto result = core_->snapshot(key_of<T>(id));
    return versioned<T>{detail::unpack<T>(result.value), result.version};
  }

  /// The last committed value as a read-only view that shares it instead of
  /// copying it (a `T` with heap members costs microseconds to copy). Like
  /// `snapshot`: never waits, never shows uncommitted changes.
  template <class T>
  snapshot_view<T> view(const context_id& id) {
    auto result = core_->snapshot(key_of<T>(id));
    detail::unpack_check<T>(result.value);
    return snapshot_view<T>{std::move(result.value.value), result.version};
  }

  /// Opens (or, for the holder thread, re-enters) an exclusive session;
  /// blocks until it is granted. Throws `error{no_such_context}` at once if
  /// the context does not exist.
  template <class T>
  session<T> acquire(const context_id& id) {
    return acquire_impl<T>(id, -1);
  }

  /// Like `acquire(id)`, but gives up with `error{timeout}` after waiting for
  /// `wait` (zero: try once). A request that gave up is never granted later.
  template <class T>
  session<T> acquire(const context_id& id, std::chrono::milliseconds wait) {
    return acquire_impl<T>(id, wait.count() < 0 ? 0 : wait.count());
  }

  /// Runs `fn(T&)` in a session and releases it; if `fn` throws, the session
  /// is aborted (nothing of it is committed) and the exception propagates.
  template <class T, class F>
  void update(const context_id& id, F&& fn) {
    auto s = acquire<T>(id);
    fn(*s);
    s.release();
  }

  /// Removes the context (waits behind a session like `store`). Returns false
  /// if there was nothing to remove. From the holder it also ends its session.
  template <class T>
  bool erase(const context_id& id) {
    auto key = key_of<T>(id);
    if (auto held = detail::find_held(*core_, key))
      return core_->erase_held(*held);
    return core_->erase(key);
  }

  /// Watches the context: `next` yields its changes (commits, and erases as
  /// a change without a value), in version order, from any thread that
  /// commits them, local or remote. The context need not exist yet (its
  /// first store is a change). `after_version` 0 starts with the current
  /// value (if any). A version alone cannot tell this context from an
  /// earlier one of the same id (erased, created again: versions start
  /// again at 1), so `after_version` > 0 starts with the current value and
  /// `change::skipped` > 0; resume with the incarnation too (below) to get
  /// the changes since. Throws `bad_request` (nil id), `unknown_type`,
  /// `type_mismatch` (the context holds another type; if it does not exist
  /// yet, the first `next` that meets one throws it).
  template <class T>
  watcher<T> watch(const context_id& id, uint64_t after_version = 0) {
    return watch<T>(id, after_version, 0);
  }

  /// Resumes a watch after `after_version` of the context's life
  /// `incarnation` (both from the last change the watcher got). The changes
  /// since are replayed as far as the storage retains them (the last few
  /// per watched context), an erase and the new life included; the rest is
  /// announced by `change::skipped` (never a silent gap: another life, or
  /// versions no longer retained, give the current value with skipped > 0).
  template <class T>
  watcher<T> watch(const context_id& id, uint64_t after_version,
                   uint64_t incarnation) {
    return watcher<T>{core_->watch(key_of<T>(id), false, after_version,
                                   incarnation, typeid(T))};
  }

  /// Watches every context of type T: their changes from now on (each
  /// context's in version order). `after_version` > 0 also replays, for the
  /// contexts whose last changes the storage retains (those watched now),
  /// the retained changes after that version.
  template <class T>
  watcher<T> watch_all(uint64_t after_version = 0) {
    return watcher<T>{core_->watch(key_of<T>(context_id{}), true,
                                   after_version, 0, typeid(T))};
  }

  /// Counts of the storage, reflecting every call this thread completed.
  storage_stats stats() {
    return core_->stats();
  }

  /// Who holds the context `id` of type T and who waits for it (holder:
  /// "thread 1234", "actor 42", "actor 42 on NODE"). Throws
  /// error{no_such_context} if there is none. A read: allowed through a
  /// read-only publication.
  template <class T>
  context_info info(const context_id& id) {
    return core_->info(key_of<T>(id));
  }

  /// The storage's metrics in the Prometheus text format 0.0.4 (of the
  /// storage node, for a remote storage).
  std::string metrics() {
    return core_->metrics();
  }

  /// The storage this client talks to.
  const storage& target() const noexcept {
    return core_->target();
  }

private:
  template <class T>
  static messages::context_key key_of(const context_id& id) {
    return messages::context_key{detail::type_name_of<T>(), id};
  }

  template <class T>
  session<T> acquire_impl(const context_id& id, int64_t wait_ms) {
    auto key = key_of<T>(id);
    if (auto held = detail::find_held(*core_, key)) {
      held->depth += 1;
      return session<T>{held->shared_from_this(), false};
    }
    session<T> result{core_->acquire(key, wait_ms), true};
    if (!result.held_->working.template match_elements<T>()) {
      result.abort();
      throw error{errc::type_mismatch,
                  "the stored value does not have the requested type"};
    }
    return result;
  }

  std::shared_ptr<detail::blocking_core> core_;
};

} // namespace ctxstore
