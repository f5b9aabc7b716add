#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ctxstore/actors/counters.hpp"
#include "ctxstore/error.hpp"

// The storage's metrics (blocking_client::metrics, Prometheus text format
// 0.0.4), labelled by context type only. Each context holds a pointer to its
// type's counters, fixed at creation: counting is a relaxed atomic add, no
// lookup.

namespace ctxstore::actors {

class feed;

/// A histogram of durations with fixed buckets (seconds: 1us .. 10s).
class duration_histogram {
public:
  static constexpr std::array<int64_t, 8> bounds_ns{
    1'000, 10'000, 100'000, 1'000'000, 10'000'000, 100'000'000,
    1'000'000'000, 10'000'000'000};

  void observe(int64_t ns) noexcept;

  /// Appends the `_bucket`, `_sum` and `_count` lines of `name`.
  void render(std::string& out, const std::string& name,
              const std::string& labels) const;

private:
  std::array<std::atomic<uint64_t>, bounds_ns.size() + 1> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

/// A histogram of counts with fixed buckets (1, 2, 4 .. 1024).
class count_histogram {
public:
  static constexpr std::array<uint64_t, 11> bounds{1,  2,   4,   8,   16,  32,
                                                   64, 128, 256, 512, 1024};

  void observe(uint64_t n) noexcept;

  /// Appends the `_bucket`, `_sum` and `_count` lines of `name`.
  void render(std::string& out, const std::string& name) const;

private:
  std::array<std::atomic<uint64_t>, bounds.size() + 1> counts_{};
  std::atomic<uint64_t> sum_{0};
};

/// The kinds of operations counted with their result.
enum class op_kind : uint8_t { acquire, write, erase };

/// What the contexts of one type count.
struct type_metrics {
  explicit type_metrics(std::string type) : type(std::move(type)) {
    // nop
  }

  const std::string type;
  // operations by kind and result
  std::atomic<uint64_t> acquired{0};          // sessions granted
  std::atomic<uint64_t> acquire_timeout{0};   // gave up waiting
  std::atomic<uint64_t> acquire_deadlock{0};  // refused: a cycle
  std::atomic<uint64_t> acquire_overloaded{0}; // refused: queue full
  std::atomic<uint64_t> written{0};           // stores and commits
  std::atomic<uint64_t> erased{0};            // erases
  std::atomic<uint64_t> lease_revocations{0};
  std::atomic<uint64_t> fencing_refusals{0}; // a stale or foreign token
  /// Failed operations by kind and error, beside the acquire results above.
  std::array<std::array<std::atomic<uint64_t>, 32>, 3> failed{};

  /// Counts an operation of `kind` that failed with `code`.
  void count_failure(op_kind kind, errc code) noexcept {
    auto i = static_cast<size_t>(code);
    if (i < failed[0].size())
      failed[static_cast<size_t>(kind)][i].fetch_add(
        1, std::memory_order_relaxed);
  }

  /// Counts an operation of `kind` that failed with `err` (see to_errc).
  void count_failure(op_kind kind, const caf::error& err) noexcept {
    if (err)
      count_failure(kind, to_errc(err));
  }
  // now
  std::atomic<int64_t> sessions{0};
  std::atomic<int64_t> waiters{0};
  duration_histogram acquire_wait; // of acquires that waited in a queue
  duration_histogram session_hold;
  duration_histogram durable_commit; // backend writes (with a backend)
};

/// Every type's metrics of one storage.
class metrics_registry {
public:
  /// The metrics of `type` (created at first use; the pointer stays valid
  /// while the registry lives).
  type_metrics* of(const std::string& type);

  /// The Prometheus text (format 0.0.4) of every type, of `totals` and of
  /// the storage's change feed `changes`.
  std::string render(const counters& totals, const feed& changes) const;

  /// Requests that came from other nodes (through a publication).
  std::atomic<uint64_t> remote_requests{0};

  /// Writes per group commit of the backend (batching backends only).
  count_histogram batch_writes;

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::unique_ptr<type_metrics>> types_;
};

/// `x` escaped as a Prometheus label value (backslash, quote, newline).
std::string escape_label_value(const std::string& x);

/// Nanoseconds of the steady clock.
int64_t steady_ns() noexcept;

} // namespace ctxstore::actors
