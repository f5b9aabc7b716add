#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "ctxstore/actors/context_cell.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/versioned_value.hpp"

namespace ctxstore::detail {

/// The contexts of one storage, for clients in the same process: a snapshot
/// reads the last commit from a context's cell without a message, and a
/// blocking client takes free sessions there (see context_cell). The registry
/// puts a cell when it creates an owner, before it answers; the owner takes
/// it off when the context is erased or the owner stops. Sharded, so that
/// clients of different keys rarely meet.
class snapshot_board {
public:
  using cell_ptr = std::shared_ptr<context_cell>;

  /// Makes `cell` the cell of its key.
  void put(cell_ptr cell) {
    auto& s = shard_of(cell->key);
    std::lock_guard<std::mutex> guard{s.mtx};
    s.entries[cell->key] = std::move(cell);
  }

  /// Forgets `cell` if it is still the cell of its key (a retired owner's
  /// cleanup never removes its successor's cell).
  void erase(const context_cell& cell) {
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
    if (!cell->present || cell->stopped)
      return std::nullopt;
    return messages::versioned_value{cell->version, cell->committed};
  }

  /// The storage stopped: no more answers from here.
  void close() {
    closed_.store(true, std::memory_order_release);
  }

private:
  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<messages::context_key, cell_ptr,
                       messages::context_key_hash>
      entries;
  };

  static constexpr size_t shard_count = 64;

  const shard& shard_of(const messages::context_key& key) const {
    return shards_[messages::context_key_hash{}(key) % shard_count];
  }

  shard& shard_of(const messages::context_key& key) {
    return shards_[messages::context_key_hash{}(key) % shard_count];
  }

  std::array<shard, shard_count> shards_;
  std::atomic<bool> closed_{false};
};

} // namespace ctxstore::detail
