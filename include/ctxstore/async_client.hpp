#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <typeinfo>
#include <utility>

#include <caf/event_based_actor.hpp>

#include "ctxstore/async_session.hpp"
#include "ctxstore/change.hpp"
#include "ctxstore/context_id.hpp"
#include "ctxstore/detail/async_core.hpp"
#include "ctxstore/pending.hpp"
#include "ctxstore/shared_value.hpp"
#include "ctxstore/storage.hpp"
#include "ctxstore/storage_stats.hpp"
#include "ctxstore/versioned.hpp"
#include "ctxstore/watch_handle.hpp"

namespace ctxstore {

/// Access to a storage from an event-based actor: every operation is a
/// request whose answer arrives later, in the actor (`pending::then`); the
/// actor never blocks. Use it only inside the actor given to it.
///
/// Reentrancy: the holder of a session is the actor. While it holds a session
/// on a key, its nested `acquire`, `store`, `erase` and `snapshot` of that key
/// proceed at once; a nested acquire shares the holder's working copy.
class async_client {
public:
  /// A client that sends its requests as `self` to storage `st`.
  async_client(caf::event_based_actor* self, storage st)
      : core_(self, std::move(st)) {
    // nop
  }

  /// A client of the same actor and storage. (Copied, never moved from: a
  /// moved-from client still names its storage.)
  async_client(const async_client&) = default;

  /// Makes this a copy of `other` (see the copy constructor).
  async_client& operator=(const async_client& other) = default;

  /// The last committed value with its version; never waits for a session.
  /// A storage in this process answers from its board of last commits (no
  /// other actor involved); the answer still arrives later, like any other.
  template <class T>
  pending<versioned<T>> snapshot_versioned(const context_id& id) {
    auto core = core_;
    return pending<versioned<T>>{[core, id](auto on_ok, auto on_err) {
      auto key = core.template key_of<T>(id, on_err);
      if (key.type.empty())
        return;
      auto hit = core.local_snapshot(key); // as in `snapshot`
      if (hit && hit->value.value.template match_elements<T>()) {
        core.answer_later(
          [on_ok = std::move(on_ok), hit = std::move(*hit)]() mutable {
            on_ok(versioned<T>{hit.value.value.template get_as<T>(0),
                               hit.version});
          });
        return;
      }
      core.snapshot(
        key, typeid(T),
        [on_ok = std::move(on_ok)](messages::versioned_value& x) {
          on_ok(versioned<T>{x.value.value.template get_as<T>(0), x.version});
        },
        std::move(on_err));
    }};
  }

  /// The last committed value; never waits for a session. A handler that
  /// takes `const T&` reads the stored value in place (no copy).
  template <class T>
  pending<T> snapshot(const context_id& id) {
    auto core = core_;
    return pending<T>{[core, id](auto on_ok, auto on_err) {
      auto key = core.template key_of<T>(id, on_err);
      if (key.type.empty())
        return;
      // In this process: one closure, answered later from our own mailbox.
      // (Anything else, a value of another type too, `snapshot` answers.)
      auto hit = core.local_snapshot(key);
      if (hit && hit->value.value.template match_elements<T>()) {
        core.answer_later(
          [on_ok = std::move(on_ok), hit = std::move(*hit)]() mutable {
            on_ok(hit.value.value.template get_as<T>(0)); // borrowed
          });
        return;
      }
      core.snapshot(
        key, typeid(T),
        [on_ok = std::move(on_ok)](messages::versioned_value& x) {
          on_ok(x.value.value.template get_as<T>(0)); // borrowed: no copy
        },
        std::move(on_err));
    }};
  }

  /// Creates or replaces the context; answers its new version. Waits behind
  /// a session held by another actor; from the holder it proceeds at once and
  /// also replaces the holder's working copy.
  template <class T>
  pending<uint64_t> store(const context_id& id, T value) {
    return store(id, shared_value<T>{std::move(value)});
  }

  /// `store` without a copy of `T`: the context shares `value` (see
  /// `shared_value`); so does the holder's working copy until its next write.
  template <class T>
  pending<uint64_t> store(const context_id& id, const shared_value<T>& value) {
    auto core = core_;
    auto msg = value.message(); // every route shares it, nobody copies it
    return pending<uint64_t>{[core, id, msg](auto on_ok, auto on_err) {
      auto key = core.template key_of<T>(id, on_err);
      if (key.type.empty())
        return;
      core.store(key, msg, std::move(on_ok), std::move(on_err));
    }};
  }

  /// Opens (or, for the holder actor, re-enters) an exclusive session; the
  /// answer arrives when it is granted. `wait` bounds the time spent queued
  /// (`errc::timeout`; zero: try once); negative: wait as long as it takes.
  template <class T>
  pending<async_session<T>> acquire(const context_id& id,
                                    std::chrono::milliseconds wait
                                    = std::chrono::milliseconds{-1}) {
    auto core = core_;
    int64_t wait_ms = wait.count() < 0 ? -1 : wait.count();
    return pending<async_session<T>>{[core, id, wait_ms](auto on_ok,
                                                         auto on_err) {
      auto key = core.template key_of<T>(id, on_err);
      if (key.type.empty())
        return;
      // Taken at once in this process: one closure, answered later.
      if (auto level = core.acquire_now(key, typeid(T))) {
        core.answer_later(
          [on_ok = std::move(on_ok), level = std::move(level)]() mutable {
            on_ok(async_session<T>{std::move(level)});
          });
        return;
      }
      core.acquire(
        key, typeid(T), wait_ms,
        [on_ok = std::move(on_ok)](detail::async_level_ptr level) {
          on_ok(async_session<T>{std::move(level)});
        },
        std::move(on_err));
    }};
  }

  /// Runs `fn(T&)` in a session and releases it; answers the new version.
  /// If `fn` throws, the session is aborted and the exception propagates (by
  /// CAF's default, that stops the actor).
  template <class T, class F>
  pending<uint64_t> update(const context_id& id, F fn) {
    auto inner = std::make_shared<pending<async_session<T>>>(acquire<T>(id));
    return pending<uint64_t>{[inner, fn](auto on_ok, auto on_err) mutable {
      inner->then(
        [fn, on_ok, on_err](async_session<T> s) mutable {
          try {
            fn(*s);
          } catch (...) {
            s.abort().then([](uint64_t) {}, [](caf::error&) {});
            throw;
          }
          s.release().then(on_ok, on_err);
        },
        on_err);
    }};
  }

  /// Removes the context (waits behind a session like `store`); answers
  /// false if there was nothing to remove. From the holder it also ends the
  /// holder's session.
  template <class T>
  pending<bool> erase(const context_id& id) {
    auto core = core_;
    return pending<bool>{[core, id](auto on_ok, auto on_err) {
      auto key = core.template key_of<T>(id, on_err);
      if (key.type.empty())
        return;
      core.erase(
        key, [on_ok = std::move(on_ok)](bool existed) { on_ok(existed); },
        std::move(on_err));
    }};
  }

  /// Watches the context: `on_change(change<T>&)` runs in this actor, through
  /// its mailbox, for each of its changes, in version order (see
  /// `blocking_client::watch` for `after_version` and what a change holds).
  /// `on_error(caf::error&)` runs once if the watch ends with an error:
  /// `bad_request` (nil id), `unknown_type`, `type_mismatch` (the context
  /// holds another type), `storage_down`. The watch runs until the returned
  /// handle is stopped or destroyed (keep it in the actor's state), or the
  /// actor ends.
  template <class T, class OnChange, class OnError>
  watch_handle watch(const context_id& id, uint64_t after_version,
                     OnChange on_change, OnError on_error) {
    return watch<T>(id, after_version, 0, std::move(on_change),
                    std::move(on_error));
  }

  /// Resumes after `after_version` of the context's life `incarnation`
  /// (both from the last change the watcher got; see
  /// `blocking_client::watch`); otherwise like `watch`.
  template <class T, class OnChange, class OnError>
  watch_handle watch(const context_id& id, uint64_t after_version,
                     uint64_t incarnation, OnChange on_change,
                     OnError on_error) {
    detail::error_callback on_err{std::move(on_error)};
    auto key = core_.template key_of<T>(id, on_err);
    if (key.type.empty())
      return watch_handle{};
    return watch_handle{core_.watch(key, false, after_version, incarnation,
                                    typeid(T),
                                    unpack_changes<T>(std::move(on_change),
                                                      on_err),
                                    on_err)};
  }

  /// Watches every context of type T, from now on (see
  /// `blocking_client::watch_all`); otherwise like `watch`.
  template <class T, class OnChange, class OnError>
  watch_handle watch_all(uint64_t after_version, OnChange on_change,
                         OnError on_error) {
    detail::error_callback on_err{std::move(on_error)};
    auto key = core_.template key_of<T>(context_id{}, on_err);
    if (key.type.empty())
      return watch_handle{};
    return watch_handle{core_.watch(key, true, after_version, 0, typeid(T),
                                    unpack_changes<T>(std::move(on_change),
                                                      on_err),
                                    on_err)};
  }

  /// Counts of the storage.
  pending<storage_stats> stats() {
    auto core = core_;
    return pending<storage_stats>{[core](auto on_ok, auto on_err) {
      core.stats([on_ok = std::move(on_ok)](storage_stats& x) { on_ok(x); },
                 std::move(on_err));
    }};
  }

  /// Who holds the context `id` of type T and who waits for it (see
  /// blocking_client::info); no_such_context if there is none.
  template <class T>
  pending<context_info> info(const context_id& id) {
    auto core = core_;
    return pending<context_info>{[core, id](auto on_ok, auto on_err) {
      auto key = core.template key_of<T>(id, on_err);
      if (key.type.empty())
        return;
      core.info(
        key, [on_ok = std::move(on_ok)](context_info& x) { on_ok(x); },
        std::move(on_err));
    }};
  }

  /// The storage's metrics in the Prometheus text format 0.0.4.
  pending<std::string> metrics() {
    auto core = core_;
    return pending<std::string>{[core](auto on_ok, auto on_err) {
      core.metrics([on_ok = std::move(on_ok)](std::string& x) { on_ok(x); },
                   std::move(on_err));
    }};
  }

  /// The storage this client talks to.
  const storage& target() const noexcept {
    return core_.target();
  }

private:
  template <class T, class OnChange>
  static detail::async_core::change_handler
  unpack_changes(OnChange on_change, detail::error_callback on_err) {
    return [on_change = std::move(on_change),
            on_err = std::move(on_err)](detail::raw_change& raw) mutable {
      change<T> result{raw.id, raw.version, std::nullopt, raw.skipped,
                       raw.incarnation};
      if (!raw.value.empty()) {
        if (!raw.value.template match_elements<T>()) {
          auto err = make_error(errc::type_mismatch,
                                "the watched context holds another type");
          on_err(err);
          return false;
        }
        result.value = raw.value.template get_as<T>(0);
      }
      on_change(result);
      return true;
    };
  }

  detail::async_core core_;
};

} // namespace ctxstore
