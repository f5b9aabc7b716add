#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <caf/fwd.hpp>

#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/versioned_value.hpp"

namespace ctxstore::detail {

/// The last commit of every context of one storage, for readers in the same
/// process: a snapshot reads it here without a message. Only owners write:
/// each one puts its committed value (with its version) before it answers the
/// request that produced it, so a caller that got an answer reads that commit
/// or a later one. Sharded, so that readers of different keys rarely meet.
class snapshot_board {
public:
  /// Publishes `value` as the last commit of `key`, by owner `owner`.
  void put(const messages::context_key& key, uint64_t owner,
           const messages::payload& value, uint64_t version) {
    auto& s = shard_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto& e = s.entries[key];
    e.owner = owner;
    e.value.version = version;
    e.value.value = value;
  }

  /// Forgets `key` if `owner` published it last (a retired owner's cleanup
  /// never removes its successor's entry).
  void erase(const messages::context_key& key, uint64_t owner) {
    auto& s = shard_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(key);
    if (i != s.entries.end() && i->second.owner == owner)
      s.entries.erase(i);
  }

  /// The last commit of `key`, or nothing (unknown key, or storage stopped:
  /// then the caller asks the storage, which answers with the right error).
  std::optional<messages::versioned_value>
  find(const messages::context_key& key) const {
    if (closed_.load(std::memory_order_acquire))
      return std::nullopt;
    auto& s = shard_of(key);
    std::lock_guard<std::mutex> guard{s.mtx};
    auto i = s.entries.find(key);
    if (i == s.entries.end())
      return std::nullopt;
    return i->second.value;
  }

  /// The storage stopped: no more answers from here.
  void close() {
    closed_.store(true, std::memory_order_release);
  }

private:
  struct entry {
    uint64_t owner = 0;
    messages::versioned_value value;
  };

  struct shard {
    mutable std::mutex mtx;
    std::unordered_map<messages::context_key, entry,
                       messages::context_key_hash>
      entries;
  };

  static constexpr size_t shard_count = 64;

  shard& shard_of(const messages::context_key& key) {
    return shards_[messages::context_key_hash{}(key) % shard_count];
  }

  const shard& shard_of(const messages::context_key& key) const {
    return shards_[messages::context_key_hash{}(key) % shard_count];
  }

  std::array<shard, shard_count> shards_;
  std::atomic<bool> closed_{false};
};

} // namespace ctxstore::detail
