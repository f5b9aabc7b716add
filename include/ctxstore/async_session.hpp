#pragma once

#include <cstdint>
#include <memory>
#include <utility>

#include <caf/error.hpp>

#include "ctxstore/detail/async_core.hpp"
#include "ctxstore/detail/recycled_value.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/pending.hpp"

namespace ctxstore {

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
    return detail::level_working(*level_).template get_as<T>(0);
  }

  /// Publishes the working copy and keeps the session; answers the version.
  pending<uint64_t> commit() {
    auto level = level_;
    return pending<uint64_t>{[level](auto on_ok, auto on_err) {
      detail::commit_level(level, std::move(on_ok), std::move(on_err));
    }};
  }

  /// Ends this level. The outermost level commits the working copy and ends
  /// the session (answers the new version); inner levels only end themselves.
  pending<uint64_t> release() {
    auto level = level_;
    return pending<uint64_t>{[level](auto on_ok, auto on_err) {
      detail::release_level(level, std::move(on_ok), std::move(on_err));
    }};
  }

  /// Discards uncommitted changes and ends the whole session, at any level.
  pending<uint64_t> abort() {
    auto level = level_;
    return pending<uint64_t>{[level](auto on_ok, auto on_err) {
      detail::abort_level(level, std::move(on_ok), std::move(on_err));
    }};
  }

  /// The version of the value this session last saw or committed.
  uint64_t version() const {
    return level_ ? detail::level_version(*level_) : 0;
  }

  /// The session's fencing token.
  uint64_t token() const {
    return level_ ? detail::level_token(*level_) : 0;
  }

  /// False once this level was released or aborted.
  explicit operator bool() const noexcept {
    return level_ && detail::level_open(*level_);
  }

  /// @private: used by async_client.
  explicit async_session(detail::async_level_ptr level)
      : level_(std::move(level)) {
    // nop
  }

private:
  T* working() {
    if (!*this)
      throw error{errc::session_expired, "the session has ended"};
    return &detail::writable<T>(detail::level_working(*level_));
  }

  detail::async_level_ptr level_;
};

} // namespace ctxstore
