#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include <caf/error.hpp>

#include "ctxstore/actors/party.hpp"

// Deadlock detection (design §4a, errc::deadlock). A storage's wait-for graph
// knows who waits for which context; each context knows who holds it (a
// plain field written at grant, context::holder_party). Before a thread or
// actor waits in a context's queue, the graph follows the chain "held by X,
// who waits for a context held by Y, who waits ..." and refuses the wait if
// it comes back to the requester. Only waits touch the graph: a free acquire
// never does.
//
// Why a walk under the graph's lock is exact enough: the graph's entries do
// not change during the walk, and a party that waits (a blocked thread) does
// not release what it holds meanwhile, so the holders read along the chain
// hold at the end of the walk what they held when read. The check and the
// registration of the new wait happen under the same lock: of two parties
// closing a cycle at the same time, the second one sees the first.
//
// Lock order: a context's mutex, then the graph's mutex (never the other way
// round; the walk reads other contexts' holders without their locks).

namespace ctxstore::actors {

class context;
class waiter;

class wait_graph {
public:
  /// `w` (an acquire of `w.party`, named `who`) would wait for `ctx`, whose
  /// lock the caller holds: the text naming the cycle this wait would close,
  /// or empty after registering the wait (until `forget`).
  std::string wait_for(waiter& w, const context& ctx, std::string who);

  /// `w` stops waiting (granted, removed, failed): out of the graph.
  void forget(waiter& w) noexcept;

private:
  struct entry {
    const context* ctx;
    const waiter* w;
    std::string name; // of the waiting party
  };

  std::string name_of(party p, party me, const std::string& my_name) const;

  std::mutex mtx_;
  std::unordered_multimap<party, entry> waiting_;
};

/// Queues the acquire `w` (a thread's or actor's, `w.party` set) on `ctx`
/// (locked by the caller) unless its wait would close a cycle (deadlock,
/// naming it) or the queue is full (overloaded).
caf::error queue_acquire(context& ctx, waiter& w, std::string who);

} // namespace ctxstore::actors
