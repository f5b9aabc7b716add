#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <typeinfo>
#include <utility>

#include <caf/actor_addr.hpp>
#include <caf/error.hpp>
#include <caf/message.hpp>

#include "ctxstore/actors/counters.hpp"
#include "ctxstore/actors/feed.hpp"
#include "ctxstore/actors/metrics.hpp"
#include "ctxstore/actors/party.hpp"
#include "ctxstore/actors/wait_graph.hpp"
#include "ctxstore/backend.hpp"
#include "ctxstore/context_info.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/payload.hpp"

// The state machine of one context (design §2, "one state machine per
// context"). Everything a context is lives here: the committed value and its
// version, the open session (holder, fencing token) and ONE first-come,
// first-served queue of everyone who waits for it: threads, actors waiting
// like threads, and requests parked at the owner actor. Its transitions are
// plain functions run under `mtx`; they send no message and wake nobody
// themselves. Each reports what must happen next in an `effects` record,
// which the caller carries out:
// - `wake` (under the lock, see effects::woken): threads and actors whose
//   wait ended;
// - after unlocking: answer the parked requests that ended, arm the lease
//   timer of a session just granted, hand the queue to the owner when a
//   parked request is next, let an erased context go, recycle the value a
//   commit replaced.
// The owner actor, the registry and the clients of this process are adapters
// that call these transitions and carry out their effects; the fast path of
// local clients runs the same transitions as the owner.

namespace ctxstore::actors {

/// What every context of one storage shares.
struct context_defaults {
  std::chrono::milliseconds lease{0}; // storage_options::lease
  size_t max_waiters = 0;             // storage_options::max_waiters
  bool fast_path = true;              // storage_options::local_fast_path
  /// With a backend: threads of this process take a free resident context
  /// without the owner and make their own commits durable (fast_path is off
  /// there: actors and queued waits go through the owner).
  bool thread_fast_path = false;
  std::shared_ptr<counters> stats = std::make_shared<counters>();
  std::shared_ptr<ctxstore::backend> backend; // storage_options::backend
  size_t max_value_bytes = 0; // storage_options::max_value_bytes
  /// Who waits for what (deadlock detection).
  std::shared_ptr<wait_graph> waits = std::make_shared<wait_graph>();
  /// Counts by context type (blocking_client::metrics).
  std::shared_ptr<metrics_registry> metrics
    = std::make_shared<metrics_registry>();
  /// The storage's change feed (storage_options::watch_buffer).
  std::shared_ptr<feed> changes = std::make_shared<feed>(1024);
};

/// One entry of a context's queue: an acquire, store or erase waiting for
/// its turn. The adapter that queues it owns it and keeps it alive while it
/// is queued and until its wake-up was carried out.
class waiter {
public:
  enum class request : uint8_t { acquire, store, erase };

  /// How the waiter learns that its wait ended.
  enum class kind : uint8_t {
    thread, // a blocked thread of this process (wake: notify)
    actor,  // an actor of this process (wake: a message to its handler)
    parked, // a request parked at the owner actor (answered by the owner)
  };

  enum class outcome : uint8_t { waiting, granted, done, failed };

  waiter(kind how, request what) noexcept : how(how), what(what) {
    // nop
  }

  waiter(const waiter&) = delete;
  waiter& operator=(const waiter&) = delete;

  virtual ~waiter();

  /// Ends the wait of a thread or actor (called under the context's lock,
  /// after `result` was set: the waiter may be gone once the lock is free).
  virtual void wake() noexcept;

  const kind how;
  const request what;

  // -- input ------------------------------------------------------------------

  messages::payload input; // store: the value
  caf::actor_addr client;  // parked: the sender (holds the session it gets)
  party requester = 0;     // thread or actor: who acquires (wait_graph.hpp)
  uint64_t requester_id = 0; // actor: its id (context::info names it)
  int64_t since = 0;       // when it was queued (steady ns)

  // -- output (set when the wait ends) ------------------------------------------

  outcome result = outcome::waiting;
  uint64_t token = 0;   // granted: the session
  uint64_t version = 0; // granted: of `value`; done (store): the new version
  caf::message value;   // granted: the working copy
  bool existed = false; // done (erase): the context was there
  caf::error error;     // failed: why

  /// The next waiter in the queue, or in effects::woken.
  waiter* next() const noexcept {
    return next_;
  }

  /// Set while the wait is in the wait-for graph.
  wait_graph* graph = nullptr;

private:
  friend class context;
  friend struct effects;
  waiter* next_ = nullptr;
};

/// A thread of this process blocked on `cv` until its wait ends.
class thread_waiter final : public waiter {
public:
  thread_waiter() noexcept : waiter(kind::thread, request::acquire) {
    // nop
  }

  void wake() noexcept override;

  std::condition_variable cv;
};

/// What a transition asks its caller to do (see the top of this file).
struct effects {
  /// Waiters whose wait ended, oldest first. `context::wake` wakes threads
  /// and actors under the lock (a woken thread may return and destroy its
  /// waiter at once); parked ones stay here for the owner to answer after
  /// unlocking.
  waiter* woken = nullptr;
  waiter* woken_tail = nullptr;

  /// Non-zero: a session with this token was granted and the context has a
  /// lease: arm its timer (a message to the owner).
  uint64_t lease = 0;

  /// A parked request is next and the context is free: the owner must run
  /// the queue (send it a handover unless the owner is the caller).
  bool handover = false;

  /// The context was erased and nobody is involved any more: without an
  /// owner it leaves the board; with one, the owner retires.
  bool erased_idle = false;

  /// The commit that a store or commit replaced (recycle after unlocking).
  caf::message replaced;

  /// A durable context stopped its queue at a store or erase: the owner
  /// makes it durable first (see context::begin_persist).
  bool persist_next = false;

  void push_woken(waiter& w) noexcept;
};

/// The state machine of one context. All members below `mtx` are guarded by
/// it. Lock order: a context's mutex may be held while taking a board
/// shard's mutex, never the other way round.
class context {
public:
  context(messages::context_key key, const std::type_info* type,
          messages::payload initial, const context_defaults& defaults);

  /// A context of a storage with a backend that is not in memory yet: not
  /// present and `loading` until the owner calls `loaded`.
  context(messages::context_key key, const std::type_info* type,
          const context_defaults& defaults);

  context(const context&) = delete;
  context& operator=(const context&) = delete;

  // -- fixed at creation ------------------------------------------------------

  const messages::context_key key;
  const std::type_info* const type;      // the C++ type bound to key.type
  const std::chrono::milliseconds lease; // 0: sessions have no lease
  const size_t max_waiters;              // 0: no bound
  const bool fast_path;                  // storage_options::local_fast_path
  const bool thread_fast_path;           // context_defaults::thread_fast_path
  const std::shared_ptr<counters> stats;
  /// Where commits and erases go while somebody watches (feed.hpp).
  const std::shared_ptr<feed> changes;
  /// True with a backend: every change is made durable (by the owner)
  /// before it becomes visible, one at a time.
  const bool durable;
  /// The storage's wait-for graph.
  const std::shared_ptr<wait_graph> waits;
  /// The counts of this context's type (keeps the storage's registry alive).
  const std::shared_ptr<type_metrics> metrics;

  /// Requests of this process on their way to the owner (counted by
  /// detail::inbound_ticket): while there are any, nobody takes the context
  /// without the owner, or a thread cycling on it would starve them; and
  /// the registry does not retire the owner they go to.
  std::atomic<int> inbound{0};

  /// Set by the registry when it kept a retiring owner because `inbound` was
  /// not zero: the request that brings it to zero sends the owner a
  /// handover (it asks again).
  std::atomic<bool> retire_wanted{false};

  /// When its owner last handled a message (steady clock, ns): the
  /// registry's sample of the least recently used (max_resident).
  std::atomic<int64_t> last_used{0};

  mutable std::mutex mtx;

  // -- the owner (guarded by mtx) -----------------------------------------------

  caf::actor_addr owner; // weak; none until the registry spawns one
  uint64_t forwards = 0; // requests the registry forwarded to the owner since
                         // the owner last asked to retire
  bool retiring = false; // the owner asked the registry to forget it

  // -- queries (the caller holds mtx) -------------------------------------------

  bool present() const noexcept {
    return present_;
  }

  bool stopped() const noexcept {
    return stopped_;
  }

  /// True until the owner read the context from the backend.
  bool loading() const noexcept {
    return loading_;
  }

  /// Why the value the backend holds (at `version()`) does not decode; none
  /// if it does. Such a context is not present: nothing reads it (a
  /// snapshot or acquire gets this error), but a store replaces it and an
  /// erase removes it, each against that version.
  const caf::error& unreadable() const noexcept {
    return unreadable_;
  }

  /// True if the backend holds this context at `version()` (present, or
  /// there but unreadable): a write replaces that version.
  bool stored() const noexcept {
    return present_ || unreadable_;
  }

  /// True once a durable context left memory (see `evict`); a request
  /// that reaches its owner before it retired reads it again.
  bool evicted() const noexcept {
    return evicted_;
  }

  /// True if nothing involves the context now: no session, nobody waiting,
  /// nothing on its way to or from the backend.
  bool quiet() const noexcept {
    return token_ == 0 && head_ == nullptr && !persisting_ && !loading_;
  }

  /// True while a change is on its way to the backend.
  bool persisting() const noexcept {
    return persisting_;
  }

  /// The next version a store or commit makes.
  uint64_t next_version() const noexcept {
    return version_ + 1;
  }

  uint64_t version() const noexcept {
    return version_;
  }

  /// The life of the context that `version` counts in (change::incarnation):
  /// new whenever it comes to be; 0 while it never was.
  uint64_t incarnation() const noexcept {
    return incarnation_;
  }

  const messages::payload& committed() const noexcept {
    return committed_;
  }

  /// The open session's token; 0: none.
  uint64_t token() const noexcept {
    return token_;
  }

  /// True if the open session was taken by a client of this process without
  /// the owner (a thread, or an actor on the fast path).
  bool direct() const noexcept {
    return direct_;
  }

  /// Who holds the open session (0: nobody); read without the lock by the
  /// wait-for graph.
  party holder_party() const noexcept {
    return holder_party_.load(std::memory_order_relaxed);
  }

  /// The actor `who` sent the end of the session it holds (a release or
  /// abort on its way to the owner): the wait-for graph stops seeing it as
  /// the holder, since a cycle through it is about to break. No lock: the
  /// session itself ends when the owner reads the message.
  void holder_leaving(party who) noexcept {
    holder_party_.compare_exchange_strong(who, 0, std::memory_order_relaxed);
  }

  /// The actor that holds a session the owner granted; none otherwise.
  const caf::actor_addr& holder() const noexcept {
    return holder_;
  }

  bool queue_empty() const noexcept {
    return head_ == nullptr;
  }

  size_t queue_length() const noexcept {
    return length_;
  }

  /// True if the oldest waiter is a request parked at the owner.
  bool parked_next() const noexcept {
    return head_ != nullptr && head_->how == waiter::kind::parked;
  }

  /// True if a local client may act without the owner: nobody holds the
  /// context, nobody waits, nothing is on its way to the owner.
  bool free_for_direct() const noexcept {
    return fast_path && present_ && !stopped_ && token_ == 0
           && head_ == nullptr && !retiring && inbound.load() == 0;
  }

  /// True if a local client may open a session without the owner (a lease
  /// needs an owner to time it).
  bool free_for_direct_session() const noexcept {
    return free_for_direct() && (lease.count() == 0 || owner);
  }

  /// True if a thread of this process may open a session without the
  /// owner. A durable context also needs its owner (it times a lease, reads
  /// the context again after a failed write, passivates it) and must be
  /// resident, with nothing on its way to or from the backend.
  bool free_for_thread_session() const noexcept {
    if (!durable)
      return free_for_direct_session();
    return thread_fast_path && present_ && !stopped_ && !loading_
           && !persisting_ && token_ == 0 && head_ == nullptr && !retiring
           && inbound.load() == 0 && owner;
  }

  /// True if a local client may erase without a message: nobody involved
  /// and no owner that would have to retire.
  bool free_for_direct_erase() const noexcept {
    return free_for_direct() && !owner;
  }

  /// True if a thread or actor of this process may wait for the open
  /// session in the queue without a message (a lease needs an owner to time
  /// the session it gets).
  bool may_queue_direct() const noexcept {
    return fast_path && present_ && !stopped_ && token_ != 0 && !retiring
           && inbound.load() == 0 && (lease.count() == 0 || owner);
  }

  /// True if one more waiter would exceed storage_options::max_waiters.
  bool queue_full() const noexcept {
    return max_waiters > 0 && length_ >= max_waiters;
  }

  /// True if `x` was issued here or before this context existed: the token
  /// of a late or revoked holder.
  bool stale(uint64_t x) const noexcept {
    return x != 0 && x <= last_token_;
  }

  /// True if the direct session `x` is open (not ended, revoked, or cut off
  /// by the storage's stop).
  bool direct_session_open(uint64_t x) const noexcept {
    return !stopped_ && token_ == x && direct_;
  }

  /// True if the actor `who` holds the owner-granted session `x`.
  bool held_by(uint64_t x, const caf::actor_addr& who) const noexcept {
    return token_ != 0 && x == token_ && !direct_ && who == holder_;
  }

  /// True if `x` holds one value of this context's type.
  bool fits(const messages::payload& x) const noexcept;

  /// True if the owner has nothing left to do: erased, no session, nobody
  /// waiting.
  bool idle_erased() const noexcept {
    return !present_ && !loading_ && !persisting_ && token_ == 0
           && head_ == nullptr;
  }

  /// Who holds the context and who waits, as of `now` (steady ns).
  context_info info(int64_t now) const;

  // -- transitions (the caller holds mtx) ---------------------------------------

  /// Opens a session for a client of this process that found the context
  /// free (free_for_direct_session): the working copy goes to `w`.
  void acquire_direct(waiter& w, effects& fx);

  /// Opens a session for the actor `who` (the owner's caller; the context
  /// is free and present), or re-enters it if `who` holds it already.
  void acquire_by(const caf::actor_addr& who, waiter& w, effects& fx);

  /// Puts `w` at the end of the queue. False if the queue is full (then `w`
  /// is not queued).
  bool enqueue(waiter& w);

  /// Takes `w` out of the queue if it is still there (it gave up: timeout,
  /// death). True if it was.
  bool remove(waiter& w) noexcept;

  /// Stores `value` (the caller checked `fits`): a new version; creates the
  /// context again (version 1) if it was erased and its owner has not
  /// retired yet.
  uint64_t store(messages::payload value, effects& fx);

  /// The holder of session `token` commits `value` (the caller checked the
  /// holder and `fits`).
  uint64_t commit(messages::payload value, effects& fx) {
    return store(std::move(value), fx);
  }

  /// Ends the open session (release after its commit, abort, lease expiry,
  /// holder death); the queue runs (see run_queue).
  void end_session(effects& fx, bool by_owner);

  /// Erases the context; an open session ends with it (an erase by its
  /// holder). True if it was present. The queue runs.
  bool erase(effects& fx, bool by_owner);

  /// The backend answered the load of a `loading` context: absent (no
  /// value), or present at `version`. The queue runs. (The owner stops the
  /// context instead if the backend could not answer.)
  void loaded(std::optional<std::pair<uint64_t, messages::payload>> value,
              effects& fx);

  /// The backend answered the load of a `loading` context with a value at
  /// `version` that does not decode (`why`): see `unreadable`. The queue
  /// runs: acquires fail with `why`, stores and erases go to the backend.
  void loaded_unreadable(uint64_t version, caf::error why, effects& fx);

  /// The backend may hold another version than memory (a write whose
  /// outcome is unknown), or the context left memory: the owner reads it
  /// again; until `loaded`, the queue waits.
  void begin_reload() noexcept {
    loading_ = true;
    evicted_ = false;
  }

  /// A durable context that is `quiet` leaves memory (the backend has it):
  /// its owner retires like the owner of an erased context.
  void evict() noexcept;

  /// A change goes to the backend: until `end_persist`, nothing else
  /// changes (the queue waits, nobody takes the context).
  void begin_persist() noexcept {
    persisting_ = true;
  }

  /// The change reached the backend (or failed); the caller applies it (or
  /// not), then the queue runs again.
  void end_persist() noexcept {
    persisting_ = false;
  }

  /// The thread that holds direct session `token` of a durable context
  /// makes its commit durable itself: like begin_persist, and the lease
  /// cannot revoke the session before the write is answered (the owner's
  /// own writes hold its timer back in the same way).
  void begin_direct_persist() noexcept {
    persisting_ = true;
  }

  /// The direct write of begin_direct_persist was answered: the caller
  /// applies it (or not). True if the session's lease ran out meanwhile:
  /// the caller ends the session after the commit (it was revoked).
  bool end_direct_persist() noexcept {
    persisting_ = false;
    auto due = lease_due_ != 0 && lease_due_ == token_;
    lease_due_ = 0;
    if (due)
      metrics->lease_revocations.fetch_add(1, std::memory_order_relaxed);
    return due;
  }

  /// A thread of this process reads this new durable context from the
  /// backend and makes its first store durable itself (blocking_core.cpp):
  /// set before anybody can find the context (context_index::
  /// create_for_thread), it stays `loading` meanwhile, so everything else
  /// waits for it, and an owner spawned meanwhile waits for the thread's
  /// handover instead of reading the context itself.
  void begin_thread_load() noexcept {
    thread_loading_.store(true);
  }

  /// The thread of begin_thread_load is done (the caller holds mtx): the
  /// context is loaded and stored, or still `loading` for its owner to read.
  void end_thread_load() noexcept {
    thread_loading_.store(false);
  }

  /// True between begin_thread_load and end_thread_load. Atomic: a new
  /// owner reads it when it starts, without the lock (a thread that ends
  /// the load afterwards reads the owner under the lock and hands over).
  bool thread_loading() const noexcept {
    return thread_loading_.load();
  }

  /// Takes the oldest waiter off the queue (after `fx.persist_next`: a store
  /// or erase that the owner makes durable, then answers itself).
  waiter* pop() noexcept;

  /// The lease of session `token` ran out: revoked if still open.
  void lease_expired(uint64_t token, effects& fx);

  /// The actor `who` died or its node disconnected: its owner-granted
  /// session ends. (Its parked requests are removed by the owner.)
  void holder_gone(const caf::actor_addr& who, effects& fx);

  /// Runs the queue while the context is free: the oldest waiter goes next.
  /// An acquire opens a session (and the queue stops there); an acquire of
  /// an erased context fails; a store or erase runs and the next goes on.
  /// If the oldest is parked at the owner and the caller is not the owner,
  /// the queue stops and `fx.handover` says so.
  void run_queue(effects& fx, bool by_owner);

  /// The storage stops: waiters fail with `reason` and the context refuses
  /// every direct operation. By the owner (it stops): all waiters, and the
  /// session ends and the context is gone; else (the registry stops first)
  /// the parked requests stay for the owner to answer.
  void stop(const caf::error& reason, effects& fx, bool by_owner);

  /// Wakes the threads and actors of `fx.woken` (under the lock) and keeps
  /// only the parked ones there.
  static void wake(effects& fx) noexcept;

private:
  void set_present(bool value) noexcept;
  void drop_value();
  uint64_t open_session(bool direct, const caf::actor_addr& who, party by,
                        effects& fx);
  void close_session() noexcept;
  void grant(waiter& w, effects& fx);

  bool present_ = true;
  bool stopped_ = false;
  bool loading_ = false;
  bool persisting_ = false;
  bool evicted_ = false;
  std::atomic<bool> thread_loading_{false}; // see begin_thread_load
  uint64_t version_ = 1;
  uint64_t incarnation_ = 0;
  messages::payload committed_;
  caf::error unreadable_; // see unreadable()

  uint64_t lease_due_ = 0;  // a direct session whose lease ran out while
                            // its holder's write was on its way
  uint64_t token_ = 0;      // the open session's fencing token; 0: none
  uint64_t last_token_ = 0; // highest token issued here or before we existed
  bool direct_ = false;     // the session was taken without the owner
  caf::actor_addr holder_;  // the holder of an owner-granted session
  std::atomic<party> holder_party_{0}; // who holds the session (any kind)
  uint64_t holder_id_ = 0;  // an actor holding a direct session: its id
  int64_t granted_at_ = 0;  // when the session opened (steady ns)

  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
  size_t length_ = 0;
};

} // namespace ctxstore::actors
