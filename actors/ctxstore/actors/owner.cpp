#include "ctxstore/actors/owner.hpp"

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>

#include <caf/all.hpp>

#include "ctxstore/messages/protocol.hpp"

// The owner of one context. It holds the committed value and serializes every
// operation on it:
// - snapshot is answered at once from the committed value, whatever else is
//   going on;
// - acquire, store and erase run at once when nobody holds the context (or
//   when the holder itself sends them); otherwise they wait in `waiters`, an
//   explicit FIFO queue, and run in arrival order when the holder leaves;
// - a session ends by release (commit + end), abort, lease expiry, the death
//   of the holder, or an erase by the holder.
// Invariants: a holder exists only while the context is present, and waiters
// exist only while there is a holder. An erased context whose owner has
// nothing left to do asks the registry to retire it.

namespace ctxstore::actors {

namespace {

using namespace ctxstore::messages;

enum class request_kind : uint8_t { acquire, store, erase };

struct waiter {
  request_kind kind;
  uint64_t seq;                  // identifies the waiter for its deadline
  caf::response_promise promise; // answered when it is its turn
  caf::actor_addr client;        // monitored while it waits
  payload value;                 // what a store stores
};

struct owner_state {
  static inline const char* name = "ctxstore.owner";

  owner_config cfg;

  bool present = false; // false once erased
  uint64_t version = 0; // of `committed`; keeps counting across erase
  payload committed;    // what snapshots see

  uint64_t token = 0;      // the open session's fencing token; 0: none
  uint64_t last_token = 0; // highest token issued here or before we existed
  caf::actor_addr holder;  // the actor that holds the session

  std::deque<waiter> waiters; // oldest first
  uint64_t next_seq = 0;

  // Monitor reference counts: one actor may wait several times and hold.
  std::unordered_map<caf::actor_addr, size_t> watched;

  bool retiring = false; // asked the registry to forget us

  caf::actor_id self_id = 0; // our entry on the board carries it

  void set_present(bool value) {
    if (present != value)
      cfg.stats->contexts += value ? 1 : -1;
    present = value;
  }

  ~owner_state() {
    if (cfg.board)
      cfg.board->erase(cfg.key, self_id);
    // The owner stops (storage shutdown): nobody may wait forever.
    for (auto& w : waiters)
      if (w.promise.pending())
        w.promise.deliver(make_error(errc::storage_down, "storage stopped"));
    if (cfg.stats) {
      cfg.stats->waiters -= static_cast<int64_t>(waiters.size());
      if (token != 0)
        cfg.stats->sessions -= 1;
      if (present)
        cfg.stats->contexts -= 1;
      cfg.stats->owners -= 1;
    }
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

bool holds_value_of_type(owner_ptr self, const payload& x) {
  auto& msg = x.value;
  if (msg.size() != 1)
    return false;
  auto rtti = msg.type(0);
  return rtti.second != nullptr && *rtti.second == *self->state.cfg.type;
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

/// Checks that the sender holds the open session with `token`.
caf::error check_holder(owner_ptr self, uint64_t token, const char* what) {
  auto& st = self->state;
  if (st.token != 0 && token == st.token) {
    if (sender_of(self) == st.holder)
      return caf::none;
    return make_error(errc::not_holder,
                      std::string{what} + ": the sender does not hold it");
  }
  if (token != 0 && token <= st.last_token)
    return stale(what); // issued here once: a late or revoked holder
  return make_error(errc::not_holder,
                    std::string{what} + ": no session has this token");
}

uint64_t publish(owner_ptr self, payload value) {
  auto& st = self->state;
  st.committed = std::move(value);
  st.set_present(true);
  ++st.version;
  if (st.cfg.board) // before the answer: the caller reads this or later
    st.cfg.board->put(st.cfg.key, st.self_id, st.committed, st.version);
  return st.version;
}

void maybe_retire(owner_ptr self) {
  auto& st = self->state;
  if (st.present || st.token != 0 || !st.waiters.empty() || st.retiring)
    return;
  auto registry = caf::actor_cast<caf::actor>(st.cfg.registry);
  if (!registry) {
    self->quit();
    return;
  }
  st.retiring = true;
  self->send(registry, retire_atom::value, st.cfg.key);
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
  // Tokens are unique in the whole storage: a context erased and created
  // again gets a new owner, and a holder of the old one must not mistake the
  // new owner's session for its own.
  st.token = st.cfg.stats->last_token.fetch_add(1) + 1;
  st.last_token = st.token;
  st.holder = who;
  st.cfg.stats->sessions += 1;
  watch(self, who);
  if (st.cfg.options.lease.count() > 0)
    self->delayed_send(self, st.cfg.options.lease, lease_atom::value, st.token);
  return grant{st.token, st.version, st.committed, handle_for(self, who)};
}

void run_waiters(owner_ptr self);

/// Ends the open session; the uncommitted working copy is simply never sent.
void end_session(owner_ptr self) {
  auto& st = self->state;
  if (st.token == 0)
    return;
  auto who = st.holder;
  st.token = 0;
  st.holder = caf::actor_addr{};
  st.cfg.stats->sessions -= 1;
  unwatch(self, who);
  run_waiters(self);
}

void erase_value(owner_ptr self) {
  auto& st = self->state;
  st.committed = payload{};
  st.set_present(false);
  if (st.cfg.board)
    st.cfg.board->erase(st.cfg.key, st.self_id);
}

/// Runs queued requests in arrival order until one of them opens a session.
void run_waiters(owner_ptr self) {
  auto& st = self->state;
  while (st.token == 0 && !st.waiters.empty()) {
    auto w = std::move(st.waiters.front());
    st.waiters.pop_front();
    st.cfg.stats->waiters -= 1;
    switch (w.kind) {
    case request_kind::acquire:
      if (!st.present)
        w.promise.deliver(missing(self));
      else
        w.promise.deliver(open_session(self, w.client));
      break;
    case request_kind::store:
      w.promise.deliver(publish(self, std::move(w.value)));
      break;
    case request_kind::erase: {
      auto existed = st.present;
      erase_value(self);
      w.promise.deliver(existed);
      break;
    }
    }
    unwatch(self, w.client);
  }
  maybe_retire(self);
}

/// Queues a request behind the holder, or refuses it when the queue is full.
caf::response_promise enqueue(owner_ptr self, request_kind kind,
                              payload value = {}) {
  auto& st = self->state;
  auto who = sender_of(self);
  auto rp = self->make_response_promise();
  auto limit = st.cfg.options.max_waiters;
  if (limit > 0 && st.waiters.size() >= limit) {
    rp.deliver(
      make_error(errc::overloaded, "too many requests queued on this context"));
    return rp;
  }
  watch(self, who);
  st.waiters.push_back(waiter{kind, ++st.next_seq, rp, who, std::move(value)});
  st.cfg.stats->waiters += 1;
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
      return;
    }
  }
}

void on_down(owner_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
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
  // A dead holder's session is aborted: its changes were never committed.
  if (st.token != 0 && st.holder == who) {
    st.token = 0;
    st.holder = caf::actor_addr{};
    st.cfg.stats->sessions -= 1;
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
  st.committed = st.cfg.initial;
  st.cfg.initial = payload{};
  st.version = 1;
  st.present = true; // the registry counted us (owners, contexts) already
  st.self_id = self->id(); // and put our first value on the board
  // Every token issued so far belongs to a session of an earlier owner (or
  // another key): stale here.
  st.last_token = st.cfg.stats->last_token.load();
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm.source); });
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
      auto& st = self->state;
      if (!st.present)
        return missing(self);
      return versioned_value{st.version, st.committed};
    },
    [=](acquire_atom, const context_key& key,
        int64_t wait_ms) -> caf::result<grant> {
      if (!key_matches(self, key))
        return wrong_key();
      auto& st = self->state;
      auto who = sender_of(self);
      if (!who)
        return make_error(errc::bad_request, "acquire needs a sender");
      if (st.token == 0) {
        if (!st.present)
          return missing(self);
        return open_session(self, who);
      }
      if (st.holder == who) // re-entry by the holder: same session
        return grant{st.token, st.version, st.committed, handle_for(self, who)};
      if (wait_ms == 0)
        return make_error(errc::timeout, "the context is held");
      auto rp = enqueue(self, request_kind::acquire);
      if (wait_ms > 0 && rp.pending())
        self->delayed_send(self, std::chrono::milliseconds{wait_ms},
                           deadline_atom::value, st.next_seq);
      return rp;
    },
    [=](store_atom, const context_key& key, payload& value,
        uint64_t token) -> caf::result<uint64_t> {
      if (!key_matches(self, key))
        return wrong_key();
      if (!holds_value_of_type(self, value))
        return type_error(self, value);
      auto& st = self->state;
      if (st.retiring) {
        // The registry forgets us before it reads this: it starts a new owner.
        auto registry = caf::actor_cast<caf::actor>(st.cfg.registry);
        if (!registry)
          return make_error(errc::storage_down, "storage stopped");
        auto rp = self->make_response_promise();
        rp.delegate(registry, store_atom::value, key, std::move(value), token);
        return rp;
      }
      if (st.token == 0)
        return publish(self, std::move(value));
      if (token == st.token && sender_of(self) == st.holder)
        return publish(self, std::move(value)); // the holder's own store
      return enqueue(self, request_kind::store, std::move(value));
    },
    [=](erase_atom, const context_key& key,
        uint64_t token) -> caf::result<bool> {
      if (!key_matches(self, key))
        return wrong_key();
      auto& st = self->state;
      if (st.token == 0) {
        auto existed = st.present;
        erase_value(self);
        maybe_retire(self);
        return existed;
      }
      if (token == st.token && sender_of(self) == st.holder) {
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
      if (auto err = check_holder(self, token, "commit"))
        return err;
      if (!holds_value_of_type(self, value))
        return type_error(self, value);
      return publish(self, std::move(value));
    },
    [=](release_atom, const context_key& key, uint64_t token,
        payload& value) -> caf::result<uint64_t> {
      if (!key_matches(self, key))
        return wrong_key();
      if (auto err = check_holder(self, token, "release"))
        return err;
      if (!holds_value_of_type(self, value))
        return type_error(self, value);
      auto version = publish(self, std::move(value));
      end_session(self);
      return version;
    },
    [=](abort_atom, const context_key& key,
        uint64_t token) -> caf::result<uint64_t> {
      if (!key_matches(self, key))
        return wrong_key();
      if (auto err = check_holder(self, token, "abort"))
        return err;
      auto version = self->state.version;
      end_session(self);
      // A dropped async session aborts with a plain message: answering it
      // would put a stray version into the holder's mailbox.
      if (!self->current_message_id().is_request())
        return caf::delegated<uint64_t>{};
      return version;
    },
    [=](lease_atom, uint64_t token) {
      if (!from_self(self))
        return;
      if (self->state.token == token)
        end_session(self); // revoked: the late holder's commit is stale
    },
    [=](deadline_atom, uint64_t seq) {
      if (!from_self(self))
        return;
      drop_waiter(self, seq,
                  make_error(errc::timeout, "gave up waiting for the context"));
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
