#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/error.hpp>
#include <caf/message.hpp>

#include "ctxstore/context_id.hpp"
#include "ctxstore/messages/context_key.hpp"

// The change feed of one storage (issue 22): every commit and erase of a
// watched context, in version order, to every watcher of it. The contexts'
// state machine publishes here under the context's lock (so one context's
// changes arrive in their order) and only when somebody watches: a storage
// that nobody watches pays one relaxed load per commit (`feed::active`).
//
// Lock order: a context's mutex (or a board shard's) may be held while
// taking the feed's, and the feed's while taking a sink's; never the other
// way round. Neither the feed nor a sink takes any other lock.

namespace ctxstore::actors {

/// One change as it travels to a watcher.
struct feed_change {
  messages::context_key key;
  uint64_t version = 0;
  caf::message value; // empty: the context was erased
  uint64_t skipped = 0;
  uint64_t incarnation = 0; // the context's life `version` counts in
};

/// The queue of one watcher: filled by the feed (or, for a storage on another
/// node, by the actor that receives its changes), emptied by the watcher.
/// Bounded: past `buffer` changes, a context's older queued changes make
/// room for its newest, which then counts them in `skipped`.
class feed_sink {
public:
  /// A sink for `type`'s context `id`, or (no id) for every context of it.
  feed_sink(std::string type, std::optional<context_id> id, size_t buffer);

  virtual ~feed_sink();

  feed_sink(const feed_sink&) = delete;
  feed_sink& operator=(const feed_sink&) = delete;

  const std::string type;
  const std::optional<context_id> id;
  /// The storage's count of changes skipped (metrics): set by feed::add.
  std::shared_ptr<std::atomic<uint64_t>> skipped_total;

  /// Changes this sink holds at most (see the class comment).
  void set_buffer(size_t n);

  /// The watcher had `version` of the context's life `incarnation` (0:
  /// unknown): the first change the sink gets counts what it missed since,
  /// and one the watcher has is not queued. Before any change arrives.
  void resume_after(uint64_t version, uint64_t incarnation);

  // -- the watcher's side
  // ------------------------------------------------------

  /// The oldest queued change; waits up to `wait` for one. Nothing if none
  /// came in time; `failure` set: the watch ended with that error.
  std::optional<feed_change> next(std::chrono::milliseconds wait);

  /// Takes every queued change, oldest first.
  std::deque<feed_change> take_all();

  /// Why the watch ended (storage down, type mismatch...); none while it
  /// runs or after `close`.
  caf::error failure() const;

  /// The watcher is done: nothing arrives any more (an armed `ready` is
  /// called once more, so that whoever waits for it learns it).
  void close() noexcept;

  bool closed() const noexcept;

  // -- the producers' side
  // -------------------------------------------------------

  /// Queues `x` (see the class comment). False if the sink wants nothing
  /// more (closed, or its watcher is gone): the producer drops it.
  bool push(feed_change x);

  /// Queues `x` only if no change of its context came since the watch
  /// began: the watch's starting point, read outside the feed's order.
  void offer(feed_change x);

  /// Ends the watch with `reason` (the watcher learns it after the queued
  /// changes).
  void fail(caf::error reason);

protected:
  /// Called under the sink's lock when a change arrives for an armed sink
  /// (see take_all), or it failed. False if the watcher is gone.
  virtual bool ready() noexcept;

  /// Calls `ready` now if a change or the failure waits, else when one
  /// arrives (the caller holds the lock).
  void arm_locked() noexcept;

  mutable std::mutex mtx_;

private:
  void append(feed_change x);
  bool place_first(feed_change& x);

  std::condition_variable cv_;
  std::deque<feed_change> queue_;
  size_t buffer_;
  uint64_t after_ = 0; // resume_after
  uint64_t after_incarnation_ = 0;
  caf::error failure_;
  bool settled_ = false; // a change of `id` came: `offer` is too late
  bool closed_ = false;
  bool gone_ = false; // `ready` found the watcher gone
  bool armed_ = false;
};

using feed_sink_ptr = std::shared_ptr<feed_sink>;

/// The watchers of one storage and a short history of each watched context.
class feed {
public:
  explicit feed(size_t buffer);

  /// How many changes a watcher may fall behind (storage_options).
  size_t buffer() const noexcept {
    return buffer_;
  }

  /// True if somebody watches a context of this storage: only then do
  /// commits publish (one relaxed load on the commit path).
  bool active() const noexcept {
    return watchers_.load(std::memory_order_relaxed) != 0;
  }

  /// Watchers now.
  size_t watchers() const noexcept {
    return watchers_.load();
  }

  /// Changes that watchers of this feed did not get (`skipped`), so far.
  uint64_t skipped() const noexcept {
    return skipped_->load(std::memory_order_relaxed);
  }

  /// A number for a new life of a context (never 0, and unlikely to be one
  /// that another storage picked): see `change::incarnation`.
  uint64_t new_incarnation() noexcept;

  /// A commit (`value` holds it) or an erase (empty `value`) of `key` at
  /// `version` of its life `incarnation`; called under the context's lock,
  /// in version order.
  void publish(const messages::context_key& key, uint64_t version,
               const caf::message& value, uint64_t incarnation);

  /// Registers `sink`. `after` > 0 replays the retained changes after
  /// version `after` of life `incarnation` (see `watch` in
  /// blocking_client.hpp). True if the sink's starting point is settled;
  /// false: the caller offers the current value of the context to the sink.
  bool add(const feed_sink_ptr& sink, uint64_t after, uint64_t incarnation);

  /// Unregisters `sink` and forgets what only it needed.
  void remove(const feed_sink* sink);

  /// True if a watcher of `key` itself keeps it in memory (a durable
  /// context is not passivated then).
  bool watched(const messages::context_key& key) const;

  /// The storage stopped: every watch ends with `reason`.
  void close(const caf::error& reason);

private:
  struct retained {
    uint64_t version;
    caf::message value;
    uint64_t incarnation;
  };

  // A watched context: its watchers and its last changes.
  struct topic {
    std::vector<feed_sink_ptr> sinks; // watchers of this key only
    std::deque<retained> history;     // oldest first
  };

  size_t history_window() const noexcept {
    return buffer_ < 64 ? buffer_ : 64;
  }

  void replay(const topic& t, const messages::context_key& key, feed_sink& sink,
              uint64_t after, uint64_t incarnation);
  void forget_unwatched(const std::string& type);

  const size_t buffer_;
  std::atomic<size_t> watchers_{0};
  std::shared_ptr<std::atomic<uint64_t>> skipped_
    = std::make_shared<std::atomic<uint64_t>>(0);
  std::atomic<uint64_t> next_incarnation_;
  mutable std::mutex mtx_;
  std::unordered_map<messages::context_key, topic, messages::context_key_hash>
    topics_;
  std::unordered_map<std::string, std::vector<feed_sink_ptr>> all_;
  bool closed_ = false;
  caf::error closed_reason_;
};

using feed_ptr = std::shared_ptr<feed>;

} // namespace ctxstore::actors
