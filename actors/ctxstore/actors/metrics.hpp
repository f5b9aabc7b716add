#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ctxstore/actors/counters.hpp"

// The storage's metrics (blocking_client::metrics, Prometheus text format
// 0.0.4), labelled by context type only. Each context holds a pointer to its
// type's counters, fixed at creation: counting is a relaxed atomic add, no
// lookup.

namespace ctxstore::actors {

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

  /// The Prometheus text (format 0.0.4) of every type and of `totals`.
  std::string render(const counters& totals) const;

  /// Requests that came from other nodes (through a publication).
  std::atomic<uint64_t> remote_requests{0};

private:
  mutable std::mutex mtx_;
  std::map<std::string, std::unique_ptr<type_metrics>> types_;
};

/// `x` escaped as a Prometheus label value (backslash, quote, newline).
std::string escape_label_value(const std::string& x);

/// Nanoseconds of the steady clock.
int64_t steady_ns() noexcept;

} // namespace ctxstore::actors
