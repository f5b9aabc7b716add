#pragma once

#include <mutex>
#include <utility>
#include <vector>

#include "ctxstore/messages/context_key.hpp"

namespace ctxstore::actors {

/// Durable contexts that threads stored into memory without an owner
/// (blocking_core.cpp's store of a context not in memory), waiting for the
/// registry to give them one. The registry takes them in bulk: one message
/// starts a drain, and while stores keep coming it drains again on a timer
/// (registry.cpp), so a thread that stores new contexts one after the other
/// does not wake the registry, an owner and CAF's idle workers for each
/// of them (on 2 cores, that cost a store about a third of its time).
class adoption_queue {
public:
  /// Queues `key`; true if the registry must be told (no drain is under
  /// way: the caller sends it the message that starts one).
  bool push(const messages::context_key& key) {
    std::lock_guard<std::mutex> guard{mtx_};
    keys_.push_back(key);
    if (draining_)
      return false;
    draining_ = true;
    return true;
  }

  /// The keys queued since the last call, taken. Empty: the drain ends
  /// here, and the next push starts another.
  std::vector<messages::context_key> take() {
    std::vector<messages::context_key> result;
    std::lock_guard<std::mutex> guard{mtx_};
    result.swap(keys_);
    if (result.empty())
      draining_ = false;
    return result;
  }

private:
  std::mutex mtx_;
  std::vector<messages::context_key> keys_;
  bool draining_ = false; // a message or a timer of the registry will take
};

} // namespace ctxstore::actors
