#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <caf/message.hpp>

#include "ctxstore/context_id.hpp"

namespace ctxstore::actors {
class feed_sink;
} // namespace ctxstore::actors

namespace ctxstore::detail {

/// A change before it is unpacked into a `change<T>`.
struct raw_change {
  context_id id;
  uint64_t version = 0;
  caf::message value; // empty: erased
  uint64_t skipped = 0;
  uint64_t incarnation = 0;
};

/// Type-erased half of `watcher<T>`: one registered watch and its queue.
/// Destroying it ends the watch (`end` unregisters it).
class watch_core {
public:
  watch_core(std::shared_ptr<actors::feed_sink> sink, std::function<void()> end)
      : sink_(std::move(sink)), end_(std::move(end)) {
    // nop
  }

  watch_core(const watch_core&) = delete;
  watch_core& operator=(const watch_core&) = delete;

  ~watch_core();

  /// The next change, waiting up to `wait`; nothing if none came in time.
  /// Throws `ctxstore::error` if the watch ended (e.g. `storage_down`).
  std::optional<raw_change> next(std::chrono::milliseconds wait);

private:
  std::shared_ptr<actors::feed_sink> sink_;
  std::function<void()> end_;
};

/// Throws `type_mismatch` (the watched context holds another type).
[[noreturn]] void throw_watch_type_mismatch();

} // namespace ctxstore::detail
