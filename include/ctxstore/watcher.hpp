#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "ctxstore/change.hpp"
#include "ctxstore/detail/watch_core.hpp"

namespace ctxstore {

/// The changes of one context, or of every context of one type, as they are
/// committed (see `blocking_client::watch`). Move-only; destroying it ends
/// the watch and leaves nothing behind in the storage. Use it from one
/// thread at a time.
template <class T>
class watcher {
public:
  /// @private: made by `blocking_client::watch` and `watch_all`.
  explicit watcher(std::unique_ptr<detail::watch_core> core)
      : core_(std::move(core)) {
    // nop
  }

  /// Takes over `other`'s watch.
  watcher(watcher&& other) noexcept = default;

  /// Ends this watch and takes over `other`'s.
  watcher& operator=(watcher&& other) noexcept = default;

  /// The next change, waiting up to `wait` for it; empty if none came in
  /// time. Throws `ctxstore::error`: `type_mismatch` if the context holds
  /// another type than T, `storage_down` once the storage stopped.
  std::optional<change<T>> next(std::chrono::milliseconds wait) {
    auto raw = core_->next(wait);
    if (!raw)
      return std::nullopt;
    change<T> result{raw->id, raw->version, std::nullopt, raw->skipped,
                     raw->incarnation};
    if (!raw->value.empty()) {
      if (!raw->value.template match_elements<T>())
        detail::throw_watch_type_mismatch();
      result.value = raw->value.template get_as<T>(0);
    }
    return result;
  }

private:
  std::unique_ptr<detail::watch_core> core_;
};

} // namespace ctxstore
