#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <typeinfo>
#include <utility>

#include <caf/actor_addr.hpp>

#include "ctxstore/actors/counters.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/payload.hpp"

namespace ctxstore::detail {

/// The state of one context, shared by its owner actor and the blocking
/// clients of the same process. The owner locks `mtx` while it handles a
/// message; a local thread may lock it too and take a free session the way a
/// futex takes a free lock (a "direct" session), or store, commit and release
/// without a message. Whenever someone else is involved (a holder or queued
/// waiters, an erase in progress) the thread sends its request to the owner
/// instead, so the owner's FIFO queue stays the only way to wait.
///
/// Lock order: a cell's mutex may be held while taking a board shard's mutex,
/// never the other way round.
struct context_cell {
  context_cell(messages::context_key key, const std::type_info* type,
               messages::payload initial, std::chrono::milliseconds lease,
               bool fast_path, std::shared_ptr<actors::counters> stats)
      : key(std::move(key)), type(type), lease(lease), fast_path(fast_path),
        stats(std::move(stats)), committed(std::move(initial)) {
    // Every token issued so far belongs to a session of an earlier owner (or
    // another key): stale here.
    last_token = this->stats->last_token.load();
  }

  // -- fixed at creation ------------------------------------------------------

  const messages::context_key key;
  const std::type_info* const type;      // the C++ type bound to key.type
  const std::chrono::milliseconds lease; // 0: sessions have no lease
  const bool fast_path;                  // storage_options::local_fast_path
  const std::shared_ptr<actors::counters> stats;
  caf::actor_addr owner; // weak; set before anybody else sees the cell

  /// Requests of local threads on their way to the owner or queued there (a
  /// thread counts its own until answered): while there are any, other
  /// threads must not barge in through the fast path, or a thread cycling
  /// on a context would starve those that asked the owner.
  std::atomic<int> inbound{0};

  // -- guarded by mtx ---------------------------------------------------------

  mutable std::mutex mtx;

  bool present = true;  // false once erased
  uint64_t version = 1; // of `committed`
  messages::payload committed;

  uint64_t token = 0;      // the open session's fencing token; 0: none
  uint64_t last_token = 0; // highest token issued here or before we existed
  bool direct = false;     // the session is held by a thread, not an actor

  bool queued = false;  // the owner has waiters or is retiring: ask it
  bool stopped = false; // the owner is gone (storage stopped)

  // -- transitions (the caller holds mtx) -------------------------------------

  /// True if a local thread may act without the owner: nobody holds the
  /// context and nobody waits for it.
  bool free_for_direct() const noexcept {
    return fast_path && present && !stopped && token == 0 && !queued
           && inbound.load() == 0;
  }

  void set_present(bool value) noexcept {
    if (present != value)
      stats->contexts += value ? 1 : -1;
    present = value;
  }

  uint64_t publish(messages::payload value) {
    committed = std::move(value);
    set_present(true);
    return ++version;
  }

  void erase_value() noexcept {
    committed = messages::payload{};
    set_present(false);
  }

  /// Opens a session. Tokens are unique in the whole storage: a context
  /// erased and created again gets a new owner and cell, and a holder of the
  /// old one must not mistake the new session for its own.
  uint64_t open_session(bool by_thread) {
    token = stats->last_token.fetch_add(1) + 1;
    last_token = token;
    direct = by_thread;
    stats->sessions += 1;
    return token;
  }

  void close_session() noexcept {
    if (token == 0)
      return;
    token = 0;
    direct = false;
    stats->sessions -= 1;
  }

  /// True if `x` was issued here or before this cell existed: the token of a
  /// late or revoked holder.
  bool stale(uint64_t x) const noexcept {
    return x != 0 && x <= last_token;
  }

  /// True if the direct session `x` is open (not ended, revoked by its
  /// lease, or cut off by the owner's stop).
  bool direct_session_open(uint64_t x) const noexcept {
    return !stopped && token == x && direct;
  }

  /// True if `x` holds a value of this context's type.
  bool fits(const messages::payload& x) const noexcept {
    if (x.value.size() != 1)
      return false;
    auto rtti = x.value.type(0);
    return rtti.second != nullptr && *rtti.second == *type;
  }
};

} // namespace ctxstore::detail
