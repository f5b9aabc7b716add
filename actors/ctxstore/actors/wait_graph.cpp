#include "ctxstore/actors/wait_graph.hpp"

#include <cstddef>
#include <unordered_set>
#include <utility>
#include <vector>

#include <sys/syscall.h>
#include <unistd.h>

#include <boost/uuid/uuid_io.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_system.hpp>
#include <caf/node_id.hpp>

#include "ctxstore/actors/context.hpp"
#include "ctxstore/error.hpp"

namespace ctxstore::actors {

// -- parties --------------------------------------------------------------------

uint64_t os_thread_id() noexcept {
  return static_cast<uint64_t>(::syscall(SYS_gettid));
}

std::string this_thread_name() {
  return "thread " + std::to_string(os_thread_id());
}

std::string actor_name(const caf::actor_addr& who) {
  auto result = "actor " + std::to_string(who.id());
  if (who && who.node() != caf::node_id{} && who.get() != nullptr) {
    // Actors of other nodes are named with their node (a proxy's id is the
    // remote actor's id).
    if (auto sys = who.get()->home_system; sys != nullptr
                                           && sys->node() != who.node())
      result += " on " + caf::to_string(who.node());
  }
  return result;
}

// -- the graph ------------------------------------------------------------------

namespace {

std::string context_name(const context& ctx) {
  return ctx.key.type + " " + boost::uuids::to_string(ctx.key.id);
}

} // namespace

std::string wait_graph::name_of(party p, party me,
                                const std::string& my_name) const {
  if (p == me)
    return my_name;
  auto i = waiting_.find(p);
  return i != waiting_.end() ? i->second.name : "another client";
}

std::string wait_graph::wait_for(waiter& w, const context& ctx,
                                 std::string who) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto me = resolve(w.requester);
  if (auto i = agents_.find(w.requester); i != agents_.end())
    who = i->second.name;
  // Breadth first over the holders reachable from ctx's holder: each hop is
  // "holder of `via`'s context, which its parent's holder waits for".
  struct hop {
    party holder;
    const entry* via; // null: the context `w` would wait for
    size_t parent;
  };
  std::vector<hop> hops;
  std::unordered_set<party> seen;
  // Waiting for itself is no cycle of others: an actor whose session ends
  // by a message still on its way, or a session the owner re-enters.
  if (auto first = resolve(ctx.holder_party());
      first != 0 && first != me && me != 0) {
    hops.push_back(hop{first, nullptr, 0});
    seen.insert(first);
  }
  for (size_t i = 0; i < hops.size(); ++i) {
    if (hops[i].holder == me) {
      // A cycle: name it from the requester round to itself.
      std::vector<size_t> chain;
      for (auto j = i;; j = hops[j].parent) {
        chain.push_back(j);
        if (hops[j].via == nullptr)
          break;
      }
      std::string text = "deadlock: " + who + " would wait for "
                         + context_name(ctx);
      for (auto k = chain.rbegin(); k != chain.rend(); ++k) {
        auto& h = hops[*k];
        if (h.via != nullptr)
          text += ", which waits for " + context_name(*h.via->ctx);
        text += " held by " + name_of(h.holder, me, who);
      }
      return text;
    }
    auto range = waiting_.equal_range(hops[i].holder);
    for (auto j = range.first; j != range.second; ++j) {
      auto next = resolve(j->second.ctx->holder_party());
      if (next != 0 && seen.insert(next).second)
        hops.push_back(hop{next, &j->second, i});
    }
  }
  if (me != 0) {
    waiting_.emplace(me, entry{&ctx, &w, std::move(who)});
    w.graph = this;
  }
  return {};
}

void wait_graph::forget(waiter& w) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  auto erase_from = [&](auto first, auto last) {
    for (auto i = first; i != last; ++i) {
      if (i->second.w == &w) {
        waiting_.erase(i);
        return true;
      }
    }
    return false;
  };
  auto range = waiting_.equal_range(resolve(w.requester));
  // Registered under another key if its stand-in changed meanwhile.
  if (!erase_from(range.first, range.second))
    erase_from(waiting_.begin(), waiting_.end());
  w.graph = nullptr;
}

void wait_graph::act_for(party agent, party thread, std::string name) {
  std::lock_guard<std::mutex> guard{mtx_};
  agents_[agent] = stand_in{thread, std::move(name)};
}

std::string wait_graph::stand_in_name(party p) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto i = agents_.find(p);
  return i != agents_.end() ? i->second.name : std::string{};
}

void wait_graph::forget_agent(party agent) noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  agents_.erase(agent);
}

caf::error queue_acquire(context& ctx, waiter& w, std::string who) {
  if (ctx.queue_full()) {
    ctx.metrics->acquire_overloaded.fetch_add(1, std::memory_order_relaxed);
    return make_error(errc::overloaded,
                      "too many requests queued on this context");
  }
  if (ctx.waits) {
    auto cycle = ctx.waits->wait_for(w, ctx, std::move(who));
    if (!cycle.empty()) {
      ctx.metrics->acquire_deadlock.fetch_add(1, std::memory_order_relaxed);
      return make_error(errc::deadlock, std::move(cycle));
    }
  }
  ctx.enqueue(w); // not full: checked above, under the same lock
  return caf::none;
}

} // namespace ctxstore::actors
