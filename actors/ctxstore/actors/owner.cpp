#include "ctxstore/actors/owner.hpp"
#include "ctxstore/actors/owner_state.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include <caf/all.hpp>

#include "ctxstore/actors/durable.hpp"
#include "ctxstore/actors/memory_trim.hpp"
#include "ctxstore/detail/recycled_value.hpp"
#include "ctxstore/messages/protocol.hpp"

// The owner of one context: the event loop of its state machine (see
// context.hpp) for whatever must wait or comes from another node. The
// registry spawns it when the context first needs one (an actor's session or
// request, a parked waiter, a lease to time). Each message runs one or more
// transitions under the context's lock; their effects are carried out when
// the message is done (see `step`):
// - snapshot is answered at once from the committed value;
// - acquire, store and erase run at once when nobody holds the context (or
//   when the holder itself sends them); otherwise they are parked in the
//   context's queue, behind every thread and actor that came first, and run
//   in arrival order when the holder leaves;
// - a session ends by release (commit + end), abort, lease expiry, the death
//   of the holder, or an erase by the holder.
// An erased context whose owner has nothing left to do asks the registry to
// retire it (see registry.cpp).
//
// A durable context (storage_options::backend) changes only here (its
// fast path is off): the owner reads it from the backend first, and makes
// each change durable before it applies it and answers (owner_durable.cpp).
// Meanwhile every other message waits in the mailbox, in order (CAF's
// `skip`), and the context's queue waits too (context::persisting): nobody
// sees a change before it is durable, and nothing overtakes it.

namespace ctxstore::actors {

using namespace owner_detail;

namespace {

using namespace ctxstore::messages;

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

/// The owner handle a grant carries: only local holders get it. A handle
/// that crosses the network pins the owner in the actor system's registry of
/// published actors; remote holders send session requests to the storage,
/// which forwards them by key.
caf::actor handle_for(owner_ptr self, const caf::actor_addr& who) {
  if (who && who.node() != self->node())
    return caf::actor{};
  return caf::actor_cast<caf::actor>(self);
}

grant grant_of(owner_ptr self, const waiter& w) {
  return grant{w.token, w.version, payload{w.value},
               handle_for(self, w.client)};
}

/// Answers a parked request whose wait ended.
void answer(owner_ptr self, parked_request& w) {
  switch (w.result) {
  case waiter::outcome::granted:
    w.promise.deliver(grant_of(self, w));
    break;
  case waiter::outcome::failed:
    w.promise.deliver(w.error);
    break;
  case waiter::outcome::done:
    if (w.what == waiter::request::store)
      w.promise.deliver(w.version);
    else
      w.promise.deliver(w.existed);
    break;
  case waiter::outcome::waiting:
    break;
  }
}

/// Asks the registry to retire us if the context was erased and nothing is
/// left to do (under the context's lock). True if the caller must send the
/// request (after unlocking).
bool begin_retire(owner_ptr self) {
  auto& st = self->state;
  auto& ctx = *st.ctx;
  if (!ctx.idle_erased() || ctx.retiring)
    return false;
  ctx.retiring = true;
  st.handled_at_retire = st.handled;
  return true;
}

void send_retire(owner_ptr self) {
  auto& st = self->state;
  if (auto registry = caf::actor_cast<caf::actor>(st.cfg.registry))
    self->send(registry, retire_atom::value, st.cfg.key);
  else
    self->quit();
}

} // namespace

caf::result<caf::message> owner_detail::refuse_unexpected(caf::scheduled_actor*,
                                                          caf::message_view&) {
  return make_error(errc::bad_request,
                    "unexpected message for a context owner");
}

owner_detail::owner_state::~owner_state() {
  if (!ctx)
    return;
  effects fx;
  {
    std::lock_guard<std::mutex> guard{ctx->mtx};
    if (cfg.board)
      cfg.board->erase(*ctx);
    // The owner stops (storage shutdown): nobody may wait forever.
    ctx->stop(make_error(errc::storage_down, "storage stopped"), fx, true);
    context::wake(fx);
  }
  for (auto w = fx.woken; w != nullptr; w = w->next())
    static_cast<parked_request*>(w)->promise.deliver(w->error);
  if (fail_in_flight) // its write may still land: the client cannot know
    fail_in_flight(make_error(errc::storage_down,
                              "storage stopped before the backend answered"));
  cfg.stats->owners -= 1;
}

owner_detail::step::step(owner_ptr self)
    : self_(self), guard_(self->state.ctx->mtx) {
  auto& st = self->state;
  ++st.handled;
  if (st.backend)
    st.ctx->last_used.store(
      std::chrono::steady_clock::now().time_since_epoch().count(),
      std::memory_order_relaxed);
  if (st.ctx->token() == 0 && !st.ctx->queue_empty())
    st.ctx->run_queue(fx, true);
}

owner_detail::step::~step() {
  auto& st = self_->state;
  auto& ctx = *st.ctx;
  context::wake(fx);
  // Monitor the holder of a session we granted, for as long as it holds.
  if (st.watched_holder != ctx.holder()) {
    auto old = std::move(st.watched_holder);
    st.watched_holder = ctx.holder();
    if (st.watched_holder)
      watch(self_, st.watched_holder);
    if (old)
      unwatch(self_, old);
  }
  if (fx.persist_next)
    persist_head(self_);
  auto retire = begin_retire(self_);
  // A durable context that nothing involves leaves memory after a while.
  auto idle = st.cfg.options.idle_timeout;
  // Held by a thread without us, it is polled: its release sends us nothing.
  auto arm_idle = st.backend && idle.count() > 0 && ctx.present()
                  && (ctx.quiet() || ctx.direct()) && !retire;
  guard_.unlock();
  for (auto w = fx.woken; w != nullptr;) {
    auto& req = *static_cast<parked_request*>(w);
    w = w->next();
    answer(self_, req);
    unwatch(self_, req.client);
    st.parked.erase(req.seq);
  }
  if (fx.lease != 0)
    self_->delayed_send(self_, ctx.lease, lease_atom::value, fx.lease);
  detail::recycle(fx.replaced);
  if (retire)
    send_retire(self_);
  if (arm_idle)
    self_->delayed_send(self_, idle, idle_atom::value, st.handled);
}

namespace {

caf::error type_error(owner_ptr self, const payload& x) {
  if (x.value.empty())
    return make_error(errc::bad_request, "a store or commit needs a value");
  self->state.ctx->metrics->count_failure(op_kind::write, errc::type_mismatch);
  return make_error(errc::type_mismatch,
                    "the value is not of the type registered as "
                      + self->state.cfg.key.type);
}

/// Why the context cannot be read: not there, or there but unreadable.
caf::error missing(owner_ptr self) {
  if (auto& why = self->state.ctx->unreadable())
    return why;
  return missing_context(self->state.cfg.key);
}

/// Checks that the sender holds the open session with `token`. A direct
/// session's holder never sends messages for it: its token is refused.
caf::error check_holder(owner_ptr self, const context& ctx, uint64_t token,
                        const char* what) {
  if (ctx.held_by(token, sender_of(self)))
    return caf::none;
  ctx.metrics->fencing_refusals.fetch_add(1, std::memory_order_relaxed);
  if (ctx.token() != 0 && token == ctx.token())
    return make_error(errc::not_holder,
                      std::string{what} + ": the sender does not hold it");
  if (ctx.stale(token))
    return make_error(errc::session_expired,
                      std::string{what} + ": the session is no longer open");
  return make_error(errc::not_holder,
                    std::string{what} + ": no session has this token");
}

/// Parks the current request in the context's queue, or refuses it when the
/// queue is full.
caf::response_promise park(owner_ptr self, context& ctx, waiter::request what,
                           payload value = {}) {
  auto& st = self->state;
  auto who = sender_of(self); // before the promise takes the sender over
  auto rp = self->make_response_promise();
  auto w = std::make_unique<parked_request>(what, ++st.next_seq, rp);
  w->client = std::move(who);
  w->input = std::move(value);
  if (what == waiter::request::acquire) { // a wait that may close a cycle
    w->requester = actor_party(w->client.get());
    if (auto err = queue_acquire(ctx, *w, actor_name(w->client))) {
      rp.deliver(std::move(err));
      return rp;
    }
  } else if (!ctx.enqueue(*w)) { // threads and actors queued count too
    rp.deliver(
      make_error(errc::overloaded, "too many requests queued on this context"));
    return rp;
  }
  watch(self, w->client);
  st.parked.emplace(w->seq, std::move(w));
  return rp;
}

/// The actor `who` is gone: its parked requests leave the queue unanswered,
/// and a session it holds is aborted (its changes were never committed).
void on_down(owner_ptr self, const caf::actor_addr& who) {
  auto& st = self->state;
  step s{self};
  for (auto i = st.parked.begin(); i != st.parked.end();) {
    // One that the step just ran is answered (to nobody) when it ends.
    if (i->second->client == who && s.ctx().remove(*i->second))
      i = st.parked.erase(i);
    else
      ++i;
  }
  st.watched.erase(who);
  if (st.watched_holder == who)
    st.watched_holder = caf::actor_addr{}; // not watched any more
  s.ctx().holder_gone(who, s.fx);
}

bool key_matches(owner_ptr self, const context_key& key) {
  return key == self->state.cfg.key;
}

caf::error wrong_key() {
  return make_error(errc::bad_request, "request sent to the wrong owner");
}

/// Why a request on `key` cannot be served here, or none.
caf::error refuse(owner_ptr self, const context_key& key) {
  if (!key_matches(self, key))
    return wrong_key();
  return self->state.load_error;
}

/// A step in which the context leaves memory if `due` (passivate); then,
/// outside the step's lock, the storage's free memory goes back to the
/// system if this passivation is the one that trims (memory_trim.hpp).
/// True if the context left memory now.
bool passivation_step(owner_ptr self, bool due) {
  bool trim = false;
  bool left = false;
  {
    step s{self};
    auto before = s.ctx().evicted();
    trim = due && passivate(self, s.ctx());
    left = !before && s.ctx().evicted();
  }
  if (trim)
    give_back_free_memory();
  return left;
}

/// True if a request that arrives now may run at once: nobody holds the
/// context and nobody waits (a durable context's queue may hold a store
/// on its way to the backend), and no thread's store of a durable context
/// is on its way to the backend (blocking_core.cpp, store_free_durable).
bool free_now(const context& ctx) {
  return ctx.token() == 0 && ctx.queue_empty() && !ctx.persisting();
}

caf::behavior owner_behavior(owner_ptr self, owner_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  // The registry counted us and adopted the context, which may be held by a
  // direct session already.
  st.ctx = st.cfg.ctx;
  self->set_down_handler([=](caf::down_msg& dm) { on_down(self, dm.source); });
  // An error that arrives as a plain message (e.g. a client bouncing an
  // answer it did not expect) must not stop the owner: CAF's default error
  // handler would, and the context would be lost for everybody.
  self->set_error_handler([](caf::error&) {});
  self->set_default_handler(refuse_unexpected);
  st.backend = st.cfg.options.backend;
  caf::behavior main{
    [=](snapshot_atom, const context_key& key) -> caf::result<versioned_value> {
      if (auto err = refuse(self, key))
        return err;
      if (reactivate(self))
        return caf::skip;
      step s{self};
      auto& ctx = s.ctx();
      if (!ctx.present())
        return missing(self);
      return versioned_value{ctx.version(), ctx.committed()};
    },
    [=](acquire_atom, const context_key& key,
        int64_t wait_ms) -> caf::result<grant> {
      if (auto err = refuse(self, key))
        return err;
      if (reactivate(self))
        return caf::skip;
      auto who = sender_of(self);
      if (!who)
        return make_error(errc::bad_request, "acquire needs a sender");
      step s{self};
      auto& ctx = s.ctx();
      if (free_now(ctx) && !ctx.present())
        return missing(self);
      if (free_now(ctx) || ctx.held_by(ctx.token(), who)) {
        waiter w{waiter::kind::parked, waiter::request::acquire}; // no wait
        ctx.acquire_by(who, w, s.fx);
        return grant_of(self, w);
      }
      if (wait_ms == 0) {
        ctx.metrics->acquire_timeout.fetch_add(1, std::memory_order_relaxed);
        return make_error(errc::timeout, "the context is held");
      }
      auto rp = park(self, ctx, waiter::request::acquire);
      if (wait_ms > 0 && rp.pending())
        self->delayed_send(self, std::chrono::milliseconds{wait_ms},
                           deadline_atom::value, self->state.next_seq);
      return rp;
    },
    [=](store_atom, const context_key& key, payload& value,
        uint64_t token) -> caf::result<uint64_t> {
      if (auto err = refuse(self, key))
        return err;
      if (reactivate(self))
        return caf::skip;
      step s{self};
      auto& ctx = s.ctx();
      if (!ctx.fits(value))
        return type_error(self, value);
      if (free_now(ctx) || ctx.held_by(token, sender_of(self))) {
        if (ctx.durable) // free, or the holder's own
          return persist_store(self, std::move(value), false, false);
        return ctx.store(std::move(value), s.fx);
      }
      return park(self, ctx, waiter::request::store, std::move(value));
    },
    [=](erase_atom, const context_key& key,
        uint64_t token) -> caf::result<bool> {
      if (auto err = refuse(self, key))
        return err;
      if (reactivate(self))
        return caf::skip;
      step s{self};
      auto& ctx = s.ctx();
      // Free, or erased by its holder (which also ends its session).
      if (free_now(ctx) || ctx.held_by(token, sender_of(self))) {
        if (ctx.durable)
          return persist_erase(self);
        return ctx.erase(s.fx, true);
      }
      return park(self, ctx, waiter::request::erase);
    },
    [=](commit_atom, const context_key& key, uint64_t token,
        payload& value) -> caf::result<uint64_t> {
      if (auto err = refuse(self, key))
        return err;
      if (reactivate(self))
        return caf::skip;
      step s{self};
      auto& ctx = s.ctx();
      if (auto err = check_holder(self, ctx, token, "commit"))
        return err;
      if (!ctx.fits(value))
        return type_error(self, value);
      if (ctx.durable)
        return persist_store(self, std::move(value), true, false);
      return ctx.commit(std::move(value), s.fx);
    },
    [=](release_atom, const context_key& key, uint64_t token,
        payload& value) -> caf::result<uint64_t> {
      if (auto err = refuse(self, key))
        return err;
      if (reactivate(self))
        return caf::skip;
      step s{self};
      auto& ctx = s.ctx();
      if (auto err = check_holder(self, ctx, token, "release"))
        return err;
      if (!ctx.fits(value))
        return type_error(self, value);
      if (ctx.durable)
        return persist_store(self, std::move(value), true, true);
      auto version = ctx.commit(std::move(value), s.fx);
      ctx.end_session(s.fx, true);
      return version;
    },
    [=](abort_atom, const context_key& key,
        uint64_t token) -> caf::result<uint64_t> {
      if (auto err = refuse(self, key))
        return err;
      if (reactivate(self))
        return caf::skip;
      step s{self};
      auto& ctx = s.ctx();
      if (auto err = check_holder(self, ctx, token, "abort"))
        return err;
      auto version = ctx.version();
      ctx.end_session(s.fx, true);
      // A dropped async session aborts with a plain message: answering it
      // would put a stray version into the holder's mailbox.
      if (!self->current_message_id().is_request())
        return caf::delegated<uint64_t>{};
      return version;
    },
    [=](idle_atom, uint64_t handled) {
      auto& st = self->state;
      if (!from_self(self) || handled != st.handled)
        return; // something happened since the timer was armed
      // Threads may have used it without us since (thread_fast_path): the
      // step below marks it used now, so read it first.
      auto last = st.ctx->last_used.load(std::memory_order_relaxed);
      auto now = std::chrono::steady_clock::now().time_since_epoch().count();
      passivation_step(self, std::chrono::nanoseconds{now - last}
                               >= st.cfg.options.idle_timeout);
    },
    [=](evict_atom) {
      auto& registry = self->state.cfg.registry;
      if (sender_of(self) != registry)
        return;
      // Kept (busy, watched, or leaving already): the registry asks another.
      if (!passivation_step(self, true))
        if (auto r = caf::actor_cast<caf::actor>(registry))
          self->send(r, evict_atom::value);
    },
    [=](handover_atom) {
      // A client ended a direct session while requests were parked (the step
      // runs them), or erased the context (then we retire), or its durable
      // write failed and the context must be read again.
      step s{self};
      if (s.ctx().loading())
        load(self); // (never while we wait for the backend: skipped then)
    },
    [=](lease_atom, uint64_t token) {
      if (!from_self(self))
        return;
      step s{self};
      s.ctx().lease_expired(token, s.fx); // the late holder's commit is stale
    },
    [=](deadline_atom, uint64_t seq) {
      if (!from_self(self))
        return;
      auto& st = self->state;
      step s{self};
      auto i = st.parked.find(seq);
      if (i == st.parked.end() || !s.ctx().remove(*i->second))
        return;
      auto w = std::move(i->second);
      st.parked.erase(i);
      s.ctx().metrics->acquire_timeout.fetch_add(1, std::memory_order_relaxed);
      w->promise.deliver(
        make_error(errc::timeout, "gave up waiting for the context"));
      unwatch(self, w->client);
    },
    // Retirement (see registry.cpp): until the registry forgets us we are
    // the owner and handle whatever reaches us, in order.
    [=](retire_check_atom) {
      auto& st = self->state;
      if (sender_of(self) != st.cfg.registry || !st.ctx->retiring)
        return;
      bool again = false;
      {
        std::lock_guard<std::mutex> guard{st.ctx->mtx};
        if (st.handled != st.handled_at_retire) {
          st.ctx->retiring = false;
          again = begin_retire(self);
        } else if (auto registry
                   = caf::actor_cast<caf::actor>(st.cfg.registry)) {
          self->send(registry, retire_confirm_atom::value, st.cfg.key);
        }
      }
      if (again)
        send_retire(self);
    },
    [=](retire_denied_atom, bool again) {
      auto& st = self->state;
      if (sender_of(self) != st.cfg.registry)
        return;
      bool ask = false;
      {
        std::lock_guard<std::mutex> guard{st.ctx->mtx};
        st.ctx->retiring = false;
        ask = again && begin_retire(self);
      }
      if (ask)
        send_retire(self);
    },
    [=](retired_atom) {
      if (sender_of(self) == self->state.cfg.registry)
        self->quit();
    },
  };
  bool loading = false; // a thread may end its load meanwhile: read locked
  {
    std::lock_guard<std::mutex> guard{st.ctx->mtx};
    loading = st.ctx->loading();
  }
  if (!loading)
    return main;
  // Read from the backend first: on top of `main`, which runs once it is
  // read (CAF applies a returned behavior by replacing the top one: none).
  self->become(std::move(main));
  if (st.cfg.first_store)
    await_first_store(self);
  else
    load(self);
  return caf::behavior{};
}

} // namespace

caf::actor spawn_owner(caf::local_actor* registry_self, owner_config cfg,
                       bool hide) {
  if (hide)
    return registry_self->spawn<caf::monitored + caf::hidden>(owner_behavior,
                                                              std::move(cfg));
  return registry_self->spawn<caf::monitored>(owner_behavior, std::move(cfg));
}

} // namespace ctxstore::actors
