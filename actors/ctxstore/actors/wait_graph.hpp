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
//
// A blocking client whose acquire goes through the owner (fast path off)
// sends it from a pooled requester actor, which then holds the session: the
// client registers that actor as its thread's stand-in (act_for), so that
// its waits and holds are the thread's, as on the fast path. (Not across
// nodes: a remote client's requester is an actor of another process.)

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

  /// The actor `agent` acquires for the thread `thread` (named `name`): a
  /// blocking client's requester, whose acquire goes through the owner
  /// (fast path off). Until `forget_agent` or another `act_for` of `agent`,
  /// the graph sees `thread` where it would see `agent`: as the holder of
  /// what `agent` holds, and as the waiter when `agent` waits.
  void act_for(party agent, party thread, std::string name);

  /// `agent` (an actor about to be gone) stands for nobody any more.
  void forget_agent(party agent) noexcept;

  /// The name of the thread that `p` stands in for, or empty (context_info
  /// names the blocking thread, not its requester).
  std::string stand_in_name(party p) const;

private:
  struct stand_in {
    party thread;
    std::string name;
  };

  /// The party that `p` stands for (`p` itself if none); under mtx_.
  party resolve(party p) const noexcept {
    auto i = agents_.find(p);
    return i != agents_.end() ? i->second.thread : p;
  }

  struct entry {
    const context* ctx;
    const waiter* w;
    std::string name; // of the waiting party
  };

  std::string name_of(party p, party me, const std::string& my_name) const;

  mutable std::mutex mtx_;
  std::unordered_multimap<party, entry> waiting_;
  std::unordered_map<party, stand_in> agents_;
};

/// Queues the acquire `w` (a thread's or actor's, `w.party` set) on `ctx`
/// (locked by the caller) unless its wait would close a cycle (deadlock,
/// naming it) or the queue is full (overloaded).
caf::error queue_acquire(context& ctx, waiter& w, std::string who);

} // namespace ctxstore::actors
