#pragma once

#include <cstdint>
#include <exception>
#include <memory>
#include <utility>

#include <caf/message.hpp>

#include "ctxstore/detail/blocking_core.hpp"
#include "ctxstore/detail/recycled_value.hpp"
#include "ctxstore/error.hpp"

namespace ctxstore {
class blocking_client;
} // namespace ctxstore

namespace ctxstore {

/// Exclusive access to one context from a blocking client: one level of a
/// (possibly nested) session. Move-only; belongs to the thread that acquired
/// it. Leaving its scope releases it (commit + end); leaving it by an
/// exception aborts it, so a failed update never leaves a half-written
/// context. Nested levels of one thread share one working copy; only the
/// outermost level's release commits and ends the session.
template <class T>
class session {
public:
  /// An empty session: holds nothing; `bool(s)` is false.
  session() = default;

  /// Takes over the level held by `other`, which becomes empty.
  session(session&& other) noexcept
      : held_(std::move(other.held_)), exceptions_(other.exceptions_),
        outermost_(other.outermost_) {
    // nop
  }

  /// Ends the level held so far (like the destructor), then takes over the
  /// level held by `other`, which becomes empty.
  session& operator=(session&& other) noexcept {
    if (this != &other) {
      end_silently();
      held_ = std::move(other.held_);
      exceptions_ = other.exceptions_;
      outermost_ = other.outermost_;
    }
    return *this;
  }

  session(const session&) = delete;
  session& operator=(const session&) = delete;

  /// Releases the level, or aborts it while an exception unwinds the stack.
  /// Never throws: a failed implicit release is dropped (the lease or the
  /// holder's death frees the context).
  ~session() {
    end_silently();
  }

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
  /// session. Throws like `operator*`.
  const T& read() {
    return checked().working.template get_as<T>(0);
  }

  /// Publishes the working copy (snapshots see it from now on) and keeps the
  /// session. Throws `error{session_expired}` if the session was revoked.
  void commit() {
    auto& h = checked();
    // A direct session shares it (our next write detaches, see
    // recycled_value.hpp); a message to the owner carries a copy.
    h.version
      = h.core->commit(h, h.cell ? h.working : caf::make_message(*working()));
    detail::recycle(h.replaced);
  }

  /// Ends this level. The outermost level commits the working copy and ends
  /// the session; inner levels only end themselves.
  void release() {
    auto held = std::move(held_);
    if (!held || !held->open)
      throw error{errc::session_expired, "release: the session has ended"};
    if (!outermost_) {
      held->depth -= 1;
      return;
    }
    held->open = false;
    held->version = held->core->release(
      *held, held->cell ? std::move(held->working)
                        : caf::make_message(std::move(
                          held->working.template get_mutable_as<T>(0))));
    detail::recycle(held->replaced);
  }

  /// Discards uncommitted changes and ends the whole session, at any level.
  void abort() {
    auto held = std::move(held_);
    if (!held || !held->open)
      throw error{errc::session_expired, "abort: the session has ended"};
    held->open = false;
    held->core->abort(*held);
  }

  /// The version of the value this session last saw or committed.
  uint64_t version() const {
    return held_ ? held_->version : 0;
  }

  /// The session's fencing token; a commit with a stale token is rejected.
  uint64_t token() const {
    return held_ ? held_->token : 0;
  }

  /// False once this level was released or aborted.
  explicit operator bool() const noexcept {
    return held_ && held_->open;
  }

  /// @private: used by blocking_client.
  session(std::shared_ptr<detail::held_session> held, bool outermost)
      : held_(std::move(held)), exceptions_(std::uncaught_exceptions()),
        outermost_(outermost) {
    // nop
  }

private:
  friend class blocking_client;

  detail::held_session& checked() {
    if (!held_ || !held_->open)
      throw error{errc::session_expired, "the session has ended"};
    return *held_;
  }

  T* working() {
    // Copy-on-write: the first write detaches from the committed value.
    return &detail::writable<T>(checked().working);
  }

  void end_silently() noexcept {
    if (!held_ || !held_->open) {
      held_.reset();
      return;
    }
    try {
      if (std::uncaught_exceptions() > exceptions_)
        abort();
      else
        release();
    } catch (...) {
      // Dropped on purpose; see the destructor.
    }
    held_.reset();
  }

  std::shared_ptr<detail::held_session> held_;
  int exceptions_ = 0;
  bool outermost_ = true;
};

} // namespace ctxstore
