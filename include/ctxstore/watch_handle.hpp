#pragma once

#include <memory>
#include <utility>

namespace ctxstore {

namespace detail {

/// One watch of an actor (src/feed_clients.cpp).
struct async_watch;

/// Ends `w`: no handler runs for it any more.
void stop_async_watch(async_watch& w) noexcept;

} // namespace detail

/// Keeps an actor's watch (`async_client::watch`, `watch_all`) running.
/// Move-only; `stop()` or destroying it ends the watch and leaves nothing
/// behind in the storage. Keep it in the actor's state; use it only inside
/// the actor that started the watch.
class watch_handle {
public:
  /// A handle of no watch.
  watch_handle() = default;

  /// @private: made by `async_client`.
  explicit watch_handle(std::shared_ptr<detail::async_watch> w)
      : watch_(std::move(w)) {
    // nop
  }

  /// Takes over `other`'s watch.
  watch_handle(watch_handle&& other) noexcept = default;

  /// Ends this watch and takes over `other`'s.
  watch_handle& operator=(watch_handle&& other) noexcept {
    if (this != &other) {
      stop();
      watch_ = std::move(other.watch_);
    }
    return *this;
  }

  ~watch_handle() {
    stop();
  }

  /// Ends the watch: its handlers are not called any more.
  void stop() noexcept {
    if (watch_) {
      detail::stop_async_watch(*watch_);
      watch_.reset();
    }
  }

  /// True until `stop` (also after the watch ended with an error).
  explicit operator bool() const noexcept {
    return static_cast<bool>(watch_);
  }

private:
  std::shared_ptr<detail::async_watch> watch_;
};

} // namespace ctxstore
