#include "ctxstore/actors/owner.hpp"

#include <cstdint>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include <caf/all.hpp>

#include "ctxstore/detail/recycled_value.hpp"
#include "ctxstore/messages/protocol.hpp"

// The owner of one context, spawned by the registry when the context first
// needs one. It holds the committed value (in the context's cell, which it
// shares with the clients of its process: see context_cell.hpp; it locks the
// cell for each message) and serializes every operation that involves more
// than one party:
// - snapshot is answered at once from the committed value, whatever else is
//   going on;
// - acquire, store and erase run at once when nobody holds the context (or
//   when the holder itself sends them); otherwise they wait in `waiters`, an
//   explicit FIFO queue, and run in arrival order when the holder leaves;
// - a session ends by release (commit + end), abort, lease expiry, the death
//   of the holder, or an erase by the holder.
// Threads of this process (and actors' acquires without a deadline) wait in
// the cell's own queue (see context_cell);
// both queues draw tickets from the cell, and whoever ends a session grants
// the oldest waiter of either.
// Invariants: a holder exists only while the context is present, and waiters
// exist only while there is a holder (or a thread's direct session just ended
// and its handover is on the way: the next message runs them first). An
// erased context whose owner has nothing left to do asks the registry to
// retire it.

namespace ctxstore::actors {

namespace {

using namespace ctxstore::messages;

enum class request_kind : uint8_t { acquire, store, erase };

struct waiter {
  request_kind kind;
  uint64_t seq;                  // identifies the waiter for its deadline
  uint64_t ticket;               // arrival order among all waiters (cell)
  caf::response_promise promise; // answered when it is its turn
  caf::actor_addr client;        // monitored while it waits
  payload value;                 // what a store stores
};

struct owner_state {
  static inline const char* name = "ctxstore.owner";

  owner_config cfg;
  std::shared_ptr<detail::context_cell> cell; // value, version, session

  caf::actor_addr holder; // the actor that holds the session; none for a
                          // direct session (a thread of this process)

  std::deque<waiter> waiters; // oldest first
  uint64_t next_seq = 0;

  // Monitor reference counts: one actor may wait several times and hold.
  std::unordered_map<caf::actor_addr, size_t> watched;

  bool retiring = false;         // asked the registry to forget us
  uint64_t handled = 0;          // messages handled (see enter)
  uint64_t handled_at_retire = 0; // `handled` when we asked

  ~owner_state() {
    if (!cell)
      return;
    std::lock_guard<std::mutex> guard{cell->mtx};
    if (cfg.board)
      cfg.board->erase(*cell);
    // The owner stops (storage shutdown): nobody may wait forever.
    for (auto& w : waiters)
      if (w.promise.pending())
        w.promise.deliver(make_error(errc::storage_down, "storage stopped"));
    cfg.stats->waiters -= static_cast<int64_t>(waiters.size());
    cell->fail_threads(make_error(errc::storage_down, "storage stopped"));
    cell->close_session();
    cell->set_present(false);
    cell->stopped = true; // a direct holder's release: storage_down
    cfg.stats->owners -= 1;
  }
};

using owner_ptr = caf::stateful_actor<owner_state>*;

caf::actor_addr sender_of(owner_ptr self) {
  return caf::actor_cast<caf::actor_addr>(self->current_sender());
}

/// Timers are messages to ourselves; nobody else may fire them.
bool from_self(owner_ptr self) {
  return self->current_sender() == self->ctrl();
}

void watch(owner_ptr self, const caf::actor_addr& who) {
  if (self->state.watched[who]++ == 0)
    self->monitor(who);
}

void unwatch(owner_ptr self, const caf::actor_addr& who) {
  auto& watched = self->state.watched;
  auto i = watched.find(who);
  if (i != watched.end() && --i->second == 0) {
    watched.erase(i);
    self->demonitor(who);
  }
}

/// Tells local threads whether they must ask us, and where our waiters stand
/// among theirs (see context_cell).
void sync_queued(owner_ptr self) {
  auto& st = self->state;
  auto& c = *st.cell;
  c.queued = !st.waiters.empty() || st.retiring;
  c.actor_front = st.waiters.empty() ? 0 : st.waiters.front().ticket;
  c.actor_waiters = st.waiters.size();
}

/// True if the sender is the actor holding the session with `token`.
bool is_holder(owner_ptr self, uint64_t token) {
  auto& c = *self->state.cell;
  return c.token != 0 && token == c.token && !c.direct
         && sender_of(self) == self->state.holder;
}

caf::error type_error(owner_ptr self, const payload& x) {
  if (x.value.empty())
    return make_error(errc::bad_request, "a store or commit needs a value");
  return make_error(errc::type_mismatch,
                    "the value is not of the type registered as "
                      + self->state.cfg.key.type);
}

caf::error missing(owner_ptr self) {
  return missing_context(self->state.cfg.key);
}

caf::error stale(const char* what) {
  return make_error(errc::session_expired,
                    std::string{what} + ": the session is no longer open");
}

/// Checks that the sender holds the open session with `token`. A direct
/// session's holder never sends messages for it: its token is refused.
caf::error check_holder(owner_ptr self, uint64_t token, const char* what) {
  auto& c = *self->state.cell;
  if (is_holder(self, token))
    return caf::none;
  if (c.token != 0 && token == c.token)
    return make_error(errc::not_holder,
                      std::string{what} + ": the sender does not hold it");
  if (c.stale(token))
    return stale(what);
  return make_error(errc::not_holder,
                    std::string{what} + ": no session has this token");
}

uint64_t publish(owner_ptr self, payload value) {
  // An erased context stays on the board until we retire: a store before
  // that creates it again right here. The replaced commit may serve as the
  // next working copy made on this thread (recycled_value.hpp).
  caf::message replaced;
  auto version = self->state.cell->publish(std::move(value), replaced);
  detail::recycle(replaced);
  return version;
}

void maybe_retire(owner_ptr self) {
  auto& st = self->state;
  auto& c = *st.cell;
  if (c.present || c.token != 0 || !st.waiters.empty()
      || c.threads_head != nullptr || st.retiring)
    return;
  auto registry = caf::actor_cast<caf::actor>(st.cfg.registry);
  if (!registry) {
    self->quit();
    return;
  }
  st.retiring = true;
  st.handled_at_retire = st.handled;
  sync_queued(self);
  self->send(registry, retire_atom::value, st.cfg.key);
}

/// The registry keeps us (or we handled something since we asked): we go on
/// as the owner; `again`: ask once more if there is still nothing to do.
void stay(owner_ptr self, bool again) {
  auto& st = self->state;
  st.retiring = false;
  sync_queued(self);
  if (again)
    maybe_retire(self);
}

/// The owner handle a grant carries: only local holders get it. A handle
/// that crosses the network pins the owner in the actor system's registry of
/// published actors; remote holders send session requests to the storage,
/// which forwards them by key.
caf::actor handle_for(owner_ptr self, const caf::actor_addr& who) {
  if (who && who.node() != self->node())
    return caf::actor{};
  return caf::actor_cast<caf::actor>(self);
}

grant open_session(owner_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto& c = *st.cell;
  auto token = c.open_session(false);
  st.holder = who;
  watch(self, who);
  if (c.lease.count() > 0)
    self->delayed_send(self, c.lease, lease_atom::value, token);
  return grant{token, c.version, c.committed, handle_for(self, who)};
}

void run_waiters(owner_ptr self);

/// Ends the open session; the uncommitted working copy is simply never sent.
void end_session(owner_ptr self) {
  auto& st = self->state;
  auto& c = *st.cell;
  if (c.token == 0)
    return;
  auto who = std::move(st.holder);
  st.holder = caf::actor_addr{};
  auto by_actor = !c.direct;
  c.close_session();
  if (by_actor)
    unwatch(self, who);
  run_waiters(self);
}

void erase_value(owner_ptr self) {
  self->state.cell->erase_value(); // the registry takes it off when we retire
}

/// Runs queued requests in arrival order until one of them opens a session;
/// a thread queued in the cell before our oldest waiter goes first.
void run_waiters(owner_ptr self) {
  auto& st = self->state;
  auto& c = *st.cell;
  while (c.token == 0) {
    auto front = st.waiters.empty() ? 0 : st.waiters.front().ticket;
    if (c.grant_thread_before(front))
      continue;
    if (st.waiters.empty())
      break;
    auto w = std::move(st.waiters.front());
    st.waiters.pop_front();
    st.cfg.stats->waiters -= 1;
    switch (w.kind) {
    case request_kind::acquire:
      if (!c.present)
        w.promise.deliver(missing(self));
      else
        w.promise.deliver(open_session(self, w.client));
      break;
    case request_kind::store:
      w.promise.deliver(publish(self, std::move(w.value)));
      break;
    case request_kind::erase: {
      auto existed = c.present;
      erase_value(self);
      w.promise.deliver(existed);
      break;
    }
    }
    unwatch(self, w.client);
  }
  sync_queued(self);
  maybe_retire(self);
}

/// Locks the cell for one message. A direct session that ended while others
/// waited lets them go first, in order, before anything new.
std::unique_lock<std::mutex> enter(owner_ptr self) {
  auto& st = self->state;
  std::unique_lock<std::mutex> guard{st.cell->mtx};
  ++st.handled;
  if (st.cell->token == 0
      && (!st.waiters.empty() || st.cell->threads_head != nullptr))
    run_waiters(self);
  return guard;
}

/// Queues a request behind the holder, or refuses it when the queue is full.
caf::response_promise enqueue(owner_ptr self, request_kind kind,
                              payload value = {}) {
  auto& st = self->state;
  auto who = sender_of(self);
  auto rp = self->make_response_promise();
  if (st.cell->queue_full()) { // threads queued in the cell count too
    rp.deliver(
      make_error(errc::overloaded, "too many requests queued on this context"));
    return rp;
  }
  watch(self, who);
  st.waiters.push_back(waiter{kind, ++st.next_seq, ++st.cell->next_ticket, rp,
                              who, std::move(value)});
  st.cfg.stats->waiters += 1;
  sync_queued(self);
  return rp;
}

void drop_waiter(owner_ptr self, uint64_t seq, const caf::error& reason) {
  auto& st = self->state;
  for (auto i = st.waiters.begin(); i != st.waiters.end(); ++i) {
    if (i->seq == seq) {
      auto w = std::move(*i);
      st.waiters.erase(i);
      st.cfg.stats->waiters -= 1;
      w.promise.deliver(reason);
      unwatch(self, w.client);
      sync_queued(self);
      return;
    }
  }
}

void on_down(owner_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  auto& c = *st.cell;
  // A dead waiter never receives nor blocks the context.
  for (auto i = st.waiters.begin(); i != st.waiters.end();) {
    if (i->client == who) {
      i = st.waiters.erase(i);
      st.cfg.stats->waiters -= 1;
    } else {
      ++i;
    }
  }
  st.watched.erase(who);
  sync_queued(self);
  // A dead holder's session is aborted: its changes were never committed.
  if (c.token != 0 && !c.direct && st.holder == who) {
    st.holder = caf::actor_addr{};
    c.close_session();
    run_waiters(self);
  } else {
    maybe_retire(self);
  }
}

bool key_matches(owner_ptr self, const context_key& key) {
  return key == self->state.cfg.key;
}

caf::error wrong_key() {
  return make_error(errc::bad_request, "request sent to the wrong owner");
}

caf::behavior owner_behavior(owner_ptr self, owner_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  // The registry counted us and adopted the context's cell, which may be held
  // by a thread's direct session already.
  st.cell = st.cfg.cell;
  self->set_down_handler([=](caf::down_msg& dm) {
    auto guard = enter(self);
    on_down(self, dm.source);
  });
  // An error that arrives as a plain message (e.g. a client bouncing an
  // answer it did not expect) must not stop the owner: CAF's default error
  // handler would, and the context would be lost for everybody.
  self->set_error_handler([](caf::error&) {});
  self->set_default_handler(
    [](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
      return make_error(errc::bad_request,
                        "unexpected message for a context owner");
    });
  return {
    [=](snapshot_atom, const context_key& key) -> caf::result<versioned_value> {
      if (!key_matches(self, key))
        return wrong_key();
      auto guard = enter(self);
      auto& c = *self->state.cell;
      if (!c.present)
        return missing(self);
      return versioned_value{c.version, c.committed};
    },
    [=](acquire_atom, const context_key& key,
        int64_t wait_ms) -> caf::result<grant> {
      if (!key_matches(self, key))
        return wrong_key();
      auto who = sender_of(self);
      if (!who)
        return make_error(errc::bad_request, "acquire needs a sender");
      auto guard = enter(self);
      auto& c = *self->state.cell;
      if (c.token == 0) {
        if (!c.present)
          return missing(self);
        return open_session(self, who);
      }
      if (!c.direct && self->state.holder == who) // re-entry: same session
        return grant{c.token, c.version, c.committed, handle_for(self, who)};
      if (wait_ms == 0)
        return make_error(errc::timeout, "the context is held");
      auto rp = enqueue(self, request_kind::acquire);
      if (wait_ms > 0 && rp.pending())
        self->delayed_send(self, std::chrono::milliseconds{wait_ms},
                           deadline_atom::value, self->state.next_seq);
      return rp;
    },
    [=](store_atom, const context_key& key, payload& value,
        uint64_t token) -> caf::result<uint64_t> {
      if (!key_matches(self, key))
        return wrong_key();
      auto guard = enter(self);
      auto& st = self->state;
      if (!st.cell->fits(value))
        return type_error(self, value);
      if (st.cell->token == 0 || is_holder(self, token)) // free, or the
        return publish(self, std::move(value));          // holder's own
      return enqueue(self, request_kind::store, std::move(value));
    },
    [=](erase_atom, const context_key& key,
        uint64_t token) -> caf::result<bool> {
      if (!key_matches(self, key))
        return wrong_key();
      auto guard = enter(self);
      auto& c = *self->state.cell;
      if (c.token == 0) {
        auto existed = c.present;
        erase_value(self);
        maybe_retire(self);
        return existed;
      }
      if (is_holder(self, token)) {
        // The holder erases its own context: that also ends its session.
        erase_value(self);
        end_session(self);
        return true;
      }
      return enqueue(self, request_kind::erase);
    },
    [=](commit_atom, const context_key& key, uint64_t token,
        payload& value) -> caf::result<uint64_t> {
      if (!key_matches(self, key))
        return wrong_key();
      auto guard = enter(self);
      if (auto err = check_holder(self, token, "commit"))
        return err;
      if (!self->state.cell->fits(value))
        return type_error(self, value);
      return publish(self, std::move(value));
    },
    [=](release_atom, const context_key& key, uint64_t token,
        payload& value) -> caf::result<uint64_t> {
      if (!key_matches(self, key))
        return wrong_key();
      auto guard = enter(self);
      if (auto err = check_holder(self, token, "release"))
        return err;
      if (!self->state.cell->fits(value))
        return type_error(self, value);
      auto version = publish(self, std::move(value));
      end_session(self);
      return version;
    },
    [=](abort_atom, const context_key& key,
        uint64_t token) -> caf::result<uint64_t> {
      if (!key_matches(self, key))
        return wrong_key();
      auto guard = enter(self);
      if (auto err = check_holder(self, token, "abort"))
        return err;
      auto version = self->state.cell->version;
      end_session(self);
      // A dropped async session aborts with a plain message: answering it
      // would put a stray version into the holder's mailbox.
      if (!self->current_message_id().is_request())
        return caf::delegated<uint64_t>{};
      return version;
    },
    [=](handover_atom) {
      // A thread ended its direct session (enter() ran the waiters) or erased
      // the context (then we retire).
      auto guard = enter(self);
      maybe_retire(self);
    },
    [=](lease_atom, uint64_t token) {
      if (!from_self(self))
        return;
      auto guard = enter(self);
      if (self->state.cell->token == token)
        end_session(self); // revoked: the late holder's commit is stale
    },
    [=](deadline_atom, uint64_t seq) {
      if (!from_self(self))
        return;
      auto guard = enter(self);
      drop_waiter(self, seq,
                  make_error(errc::timeout, "gave up waiting for the context"));
    },
    // Retirement (see registry.cpp): until the registry forgets us we are
    // the owner and handle whatever reaches us, in order.
    [=](retire_check_atom) {
      auto& st = self->state;
      if (sender_of(self) != st.cfg.registry || !st.retiring)
        return;
      std::lock_guard<std::mutex> guard{st.cell->mtx};
      if (st.handled != st.handled_at_retire)
        return stay(self, true);
      if (auto registry = caf::actor_cast<caf::actor>(st.cfg.registry))
        self->send(registry, retire_confirm_atom::value, st.cfg.key);
    },
    [=](retire_denied_atom, bool again) {
      auto& st = self->state;
      if (sender_of(self) != st.cfg.registry)
        return;
      std::lock_guard<std::mutex> guard{st.cell->mtx};
      stay(self, again);
    },
    [=](retired_atom) {
      if (sender_of(self) == self->state.cfg.registry)
        self->quit();
    },
  };
}

} // namespace

caf::actor spawn_owner(caf::local_actor* registry_self, owner_config cfg,
                       bool hide) {
  if (hide)
    return registry_self->spawn<caf::linked + caf::hidden>(owner_behavior,
                                                           std::move(cfg));
  return registry_self->spawn<caf::linked>(owner_behavior, std::move(cfg));
}

} // namespace ctxstore::actors
