#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ctxstore/actors/adoption_queue.hpp"
#include "ctxstore/actors/context.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/versioned_value.hpp"

namespace ctxstore::actors {

/// The index of all contexts of one storage (its "board"): the state machine
/// of every context, by key. The registry and the clients in the same process
/// find contexts here: a snapshot reads the last commit without a message,
/// and local clients take free sessions on the fast path (see context.hpp).
/// A context is put here when it is created (by the registry, or by a local
/// client's store), before anybody learns of it; it leaves when it is erased
/// by someone who did not need its owner, when its owner retires (the
/// registry takes it off), or when the owner stops. Sharded, so that clients
/// of different keys rarely meet.
class context_index {
public:
  using cell_ptr = std::shared_ptr<context>;

  explicit context_index(context_defaults defaults = {})
      : defaults_(std::move(defaults)) {
    // nop
  }

  /// What every cell of this storage shares (lease, fast path, counters).
  const context_defaults& defaults() const noexcept {
    return defaults_;
  }

  /// The cell of `key` and false; or, if `key` has none, a new cell holding
  /// `value` (moved from only then) as version 1, and true.
  std::pair<cell_ptr, bool> find_or_create(const messages::context_key& key,
                                           const std::type_info* type,
                                           messages::payload& value) {
    auto& s = shard_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(key);
    if (i != s.entries.end())
      return {i->second, false};
    auto cell = std::make_shared<context>(key, type, std::move(value),
                                                  defaults_);
    s.entries.emplace(key, cell);
    defaults_.stats->contexts += 1;
    // Under the shard's lock: nobody can find the new context before its
    // watchers learn of it.
    if (defaults_.changes->active())
      defaults_.changes->publish(key, 1, cell->committed().value,
                                 cell->incarnation());
    return {std::move(cell), true};
  }

  /// The cell of `key`; if `key` has none, a new `loading` cell (a storage
  /// with a backend: its owner reads the context from there).
  cell_ptr find_or_load(const messages::context_key& key,
                        const std::type_info* type) {
    auto& s = shard_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(key);
    if (i != s.entries.end())
      return i->second;
    auto cell = std::make_shared<context>(key, type, defaults_);
    s.entries.emplace(key, cell);
    return cell;
  }

  /// A new `loading` cell for `key` that the calling thread reads from the
  /// backend itself (context::begin_thread_load, set before anybody can
  /// find the cell); null if `key` has a cell or the storage stopped.
  cell_ptr create_for_thread(const messages::context_key& key,
                             const std::type_info* type) {
    auto& s = shard_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    if (closed() || s.entries.count(key) != 0)
      return nullptr;
    auto cell = std::make_shared<context>(key, type, defaults_);
    cell->begin_thread_load();
    s.entries.emplace(key, cell);
    return cell;
  }

  /// Forgets `cell` if it is still the cell of its key (a retired owner's
  /// cleanup never removes its successor's cell).
  void erase(const context& cell) {
    auto& s = shard_of(cell.key);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(cell.key);
    if (i != s.entries.end() && i->second.get() == &cell)
      s.entries.erase(i);
  }

  /// The cell of `key`, or null (unknown key, or storage stopped: then the
  /// caller asks the storage, which answers with the right error).
  cell_ptr find_cell(const messages::context_key& key) const {
    if (closed_.load(std::memory_order_acquire))
      return nullptr;
    auto& s = shard_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(key);
    if (i == s.entries.end())
      return nullptr;
    return i->second;
  }

  /// The last commit of `key`, or nothing (see `find_cell`; also nothing for
  /// an erased context whose owner has not retired yet).
  std::optional<messages::versioned_value>
  find(const messages::context_key& key) const {
    auto cell = find_cell(key);
    if (!cell)
      return std::nullopt;
    std::lock_guard<std::mutex> guard{cell->mtx};
    if (!cell->present() || cell->stopped())
      return std::nullopt;
    return messages::versioned_value{cell->version(), cell->committed()};
  }

  /// Cells on the board, of every kind (present, loading, erased but not
  /// retired yet). Takes every shard's lock: for tests and diagnostics.
  size_t size() const {
    size_t n = 0;
    for (auto& s : shards_) {
      std::lock_guard<std::mutex> guard{s.mtx};
      n += s.entries.size();
    }
    return n;
  }

  /// Requests of this process on `key`'s way to the storage (counted by
  /// the clients' inbound_ticket) that were not answered yet; shared by the keys
  /// of one shard. While there are any, a new context of `key` is not
  /// created without a message: it could overtake one of them (an erase or a
  /// store sent before it, still on its way to the registry).
  std::atomic<int>& requests_out(const messages::context_key& key) {
    return shard_of(key).requests_out;
  }

  /// Those of `requests_out` that were sent to the registry (no owner known
  /// then). While there are any, later requests on `key` go there too: the
  /// registry forwards them to the owner in order, whereas one sent straight
  /// to the owner could overtake an earlier one still at the registry.
  std::atomic<int>& via_registry(const messages::context_key& key) {
    return shard_of(key).via_registry;
  }

  /// Contexts that threads stored without an owner, for the registry.
  adoption_queue& adoptions() noexcept {
    return adoptions_;
  }

  /// True once the storage stopped (see close).
  bool closed() const noexcept {
    return closed_.load(std::memory_order_acquire);
  }

  /// The storage stopped: no more answers from here. Cells without an owner
  /// are marked stopped here (owners mark theirs when they stop), so that a
  /// direct session's holder and the threads queued in a cell learn it too.
  void close() {
    closed_.store(true, std::memory_order_release);
    std::vector<cell_ptr> cells;
    for (auto& s : shards_) {
      std::lock_guard<std::mutex> guard{s.mtx};
      for (auto& entry : s.entries)
        cells.push_back(std::move(entry.second));
      s.entries.clear();
    }
    auto down = make_error(errc::storage_down, "storage stopped");
    defaults_.changes->close(down);
    for (auto& cell : cells) { // shard locks released: see the lock order
      effects fx;
      std::lock_guard<std::mutex> guard{cell->mtx};
      cell->stop(down, fx, false);
      context::wake(fx);
    }
  }

private:
  // One cache line each at least: clients of keys in neighbouring shards do
  // not bounce each other's lock.
  struct alignas(64) shard {
    mutable std::mutex mtx;
    std::unordered_map<messages::context_key, cell_ptr,
                       messages::context_key_hash>
      entries;
    std::atomic<int> requests_out{0};
    std::atomic<int> via_registry{0};
  };

  static constexpr size_t shard_count = 64;

  const shard& shard_of(const messages::context_key& key) const {
    return shards_[messages::context_key_hash{}(key) % shard_count];
  }

  shard& shard_of(const messages::context_key& key) {
    return shards_[messages::context_key_hash{}(key) % shard_count];
  }

  context_defaults defaults_;
  std::array<shard, shard_count> shards_;
  std::atomic<bool> closed_{false};
  adoption_queue adoptions_;
};

} // namespace ctxstore::actors
