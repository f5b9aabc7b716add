#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <typeinfo>
#include <utility>

#include <caf/actor_addr.hpp>
#include <caf/error.hpp>

#include "ctxstore/actors/counters.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/payload.hpp"
#include "ctxstore/messages/protocol.hpp"

namespace ctxstore::detail {

/// What the cells of one storage share.
struct cell_defaults {
  std::chrono::milliseconds lease{0}; // storage_options::lease
  size_t max_waiters = 0;             // storage_options::max_waiters
  bool fast_path = true;              // storage_options::local_fast_path
  std::shared_ptr<actors::counters> stats
    = std::make_shared<actors::counters>();
};

/// A thread of this process queued for a session in a context's cell (see
/// context_cell). Lives on the waiting thread's stack; guarded by the cell's
/// mutex. An actor waits the same way (see actor_waiter in client.cpp): its
/// waiter lives on the heap, and `wake` sends it a message instead of
/// notifying `cv`.
struct thread_waiter {
  enum class outcome { waiting, granted, failed };

  /// Ends the wait of a waiter that is not a thread (called under the cell's
  /// lock, after `result` was set).
  using wake_fn = void (*)(thread_waiter&) noexcept;

  explicit thread_waiter(uint64_t ticket, wake_fn wake = nullptr)
      : ticket(ticket), wake(wake) {
    // nop
  }

  /// The wait ended (`result` says how): wakes the waiter.
  void notify() noexcept {
    if (wake != nullptr)
      wake(*this);
    else
      cv.notify_one();
  }

  const uint64_t ticket; // arrival order, shared with the owner's waiters
  const wake_fn wake;    // null: a thread, woken through `cv`
  thread_waiter* next = nullptr;
  std::condition_variable cv;
  outcome result = outcome::waiting;
  uint64_t token = 0;   // granted: the session
  uint64_t version = 0; // granted: of `value`
  caf::message value;   // granted: the working copy
  caf::error error;     // failed: why
};

/// The state of one context, shared by its owner actor and the clients of
/// the same process. The owner locks `mtx` while it handles a message; a
/// local thread may lock it too and take a free session the way a futex takes
/// a free lock (a "direct" session), or store, commit and release without a
/// message. Whenever someone else is involved (a holder or queued waiters, an
/// erase in progress) the thread sends its request to the owner instead, or,
/// for an acquire while a session is open, waits here in the cell's queue of
/// threads (an actor's acquire without a deadline waits here too, see
/// thread_waiter). Both queues draw tickets from the cell, so the context is
/// granted in arrival order across them: whoever ends a session grants the
/// oldest waiter, one queued here by itself (a thread without a message, an
/// actor with one message to it) and one queued at the owner by handing
/// over to the owner.
///
/// The owner actor is spawned by the registry when the context first needs
/// one (a session or request of an actor, a waiter, a lease to time); until
/// then the cell is the whole context: creating, reading, replacing and
/// erasing it are done under `mtx` by whoever asks.
///
/// Lock order: a cell's mutex may be held while taking a board shard's mutex,
/// never the other way round.
struct context_cell {
  context_cell(messages::context_key key, const std::type_info* type,
               messages::payload initial, const cell_defaults& defaults)
      : key(std::move(key)), type(type), lease(defaults.lease),
        max_waiters(defaults.max_waiters), fast_path(defaults.fast_path),
        stats(defaults.stats),
        committed(std::move(initial)) {
    // Every token issued so far belongs to a session of an earlier owner (or
    // another key): stale here.
    last_token = this->stats->last_token.load();
  }

  // -- fixed at creation ------------------------------------------------------

  const messages::context_key key;
  const std::type_info* const type;      // the C++ type bound to key.type
  const std::chrono::milliseconds lease; // 0: sessions have no lease
  const size_t max_waiters;              // 0: no bound
  const bool fast_path;                  // storage_options::local_fast_path
  const std::shared_ptr<actors::counters> stats;

  /// Requests of this process on their way to the owner or queued there (a
  /// client counts its own until answered): while there are any, other
  /// threads must not barge in through the fast path, or a thread cycling
  /// on a context would starve those that asked the owner. A request that
  /// goes to the owner is counted under `mtx`, where the owner was read: the
  /// registry never retires an owner with a request on its way.
  std::atomic<int> inbound{0};

  /// Set by the registry when it kept a retiring owner because `inbound` was
  /// not zero: the request that brings it to zero sends the owner a
  /// handover (it tries again).
  std::atomic<bool> retire_wanted{false};

  // -- guarded by mtx ---------------------------------------------------------

  mutable std::mutex mtx;

  caf::actor_addr owner; // weak; none until the registry spawns one
  uint64_t forwards = 0; // requests the registry forwarded to the owner since
                         // the owner last asked to retire

  bool present = true;  // false once erased
  uint64_t version = 1; // of `committed`
  messages::payload committed;

  uint64_t token = 0;      // the open session's fencing token; 0: none
  uint64_t last_token = 0; // highest token issued here or before we existed
  bool direct = false;     // the session is held by a thread, not an actor

  bool queued = false;  // the owner has waiters or is retiring: ask it
  bool stopped = false; // the owner is gone (storage stopped)

  // The queues of waiters: threads (and actors waiting like threads) here,
  // the rest in the owner (which keeps `actor_front` and `actor_waiters` up
  // to date).
  uint64_t next_ticket = 0;
  uint64_t actor_front = 0;  // ticket of the owner's oldest waiter; 0: none
  size_t actor_waiters = 0;  // length of the owner's queue
  size_t thread_count = 0;   // length of the thread queue
  thread_waiter* threads_head = nullptr;
  thread_waiter* threads_tail = nullptr;

  // -- transitions (the caller holds mtx) -------------------------------------

  /// True if a local thread may act without the owner: nobody holds the
  /// context and nobody waits for it.
  bool free_for_direct() const noexcept {
    return fast_path && present && !stopped && token == 0 && !queued
           && threads_head == nullptr && inbound.load() == 0;
  }

  /// True if a local thread (or an actor, without a deadline) may wait for
  /// the open session here, in the thread queue (a lease needs an owner to
  /// time the session it gets).
  bool may_queue_thread() const noexcept {
    return fast_path && present && !stopped && token != 0 && !queued
           && inbound.load() == 0 && (lease.count() == 0 || owner);
  }

  /// True if one more waiter would exceed storage_options::max_waiters.
  bool queue_full() const noexcept {
    return max_waiters > 0 && actor_waiters + thread_count >= max_waiters;
  }

  /// Queues `w` (whose ticket came from `next_ticket`) behind the others.
  void push_thread(thread_waiter& w) noexcept {
    if (threads_tail != nullptr)
      threads_tail->next = &w;
    else
      threads_head = &w;
    threads_tail = &w;
    ++thread_count;
    stats->waiters += 1;
  }

  /// Takes `w` out of the thread queue (it gave up, or its turn came).
  void remove_thread(thread_waiter& w) noexcept {
    thread_waiter* prev = nullptr;
    for (auto i = threads_head; i != nullptr; prev = i, i = i->next) {
      if (i != &w)
        continue;
      (prev != nullptr ? prev->next : threads_head) = w.next;
      if (threads_tail == &w)
        threads_tail = prev;
      w.next = nullptr;
      --thread_count;
      stats->waiters -= 1;
      return;
    }
  }

  /// If nobody holds the context and the oldest waiter is a thread that
  /// arrived before `older_than`, ends its wait: it gets a session (or, if
  /// the context was erased meanwhile, its error). True if it did.
  bool grant_thread_before(uint64_t older_than) {
    auto w = threads_head;
    if (token != 0 || w == nullptr || (older_than != 0 && w->ticket > older_than))
      return false;
    remove_thread(*w);
    if (present) {
      w->token = open_session(true);
      w->version = version;
      w->value = committed.value;
      w->result = thread_waiter::outcome::granted;
    } else {
      w->error = messages::missing_context(key);
      w->result = thread_waiter::outcome::failed;
    }
    w->notify();
    return true;
  }

  /// Grants waiting threads in arrival order until one holds the session or
  /// the oldest waiter is an actor; true if the owner must run next (an
  /// actor is the oldest waiter and the context is free).
  bool grant_threads() {
    while (grant_thread_before(actor_front))
      ; // a failed waiter (context erased) lets the next one try
    return token == 0 && actor_front != 0;
  }

  /// Ends the open session; the oldest waiter goes next: a waiting thread is
  /// granted here, and if an actor is next, the owner's address is returned
  /// (send it a handover once the lock is released); else none.
  caf::actor_addr end_session_for_next() {
    close_session();
    return grant_threads() ? owner : caf::actor_addr{};
  }

  /// The holder erases the context: its session ends and waiting threads
  /// learn that it is gone. Returns the owner (send it a handover: it runs
  /// the actors' waiting requests, or retires); none: nobody else can wait,
  /// and the caller takes the cell off the board.
  caf::actor_addr erase_by_holder() {
    erase_value();
    close_session();
    grant_threads();
    return owner;
  }

  /// Ends every thread's wait with `err` (the storage stopped).
  void fail_threads(const caf::error& err) {
    while (auto w = threads_head) {
      remove_thread(*w);
      w->error = err;
      w->result = thread_waiter::outcome::failed;
      w->notify();
    }
  }

  /// True if a local thread may open a session without the owner: a lease
  /// needs an owner to time it.
  bool free_for_direct_session() const noexcept {
    return free_for_direct() && (lease.count() == 0 || owner);
  }

  /// True if a local thread may erase the context without a message: nobody
  /// is involved and there is no owner that would have to retire.
  bool free_for_direct_erase() const noexcept {
    return free_for_direct() && !owner;
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

  /// Like `publish`; the commit it replaces goes to `replaced` (the caller
  /// destroys or recycles it after unlocking, see recycled_value.hpp).
  uint64_t publish(messages::payload value, caf::message& replaced) {
    replaced = std::move(committed.value);
    return publish(std::move(value));
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
