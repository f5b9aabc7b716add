// The owner of a durable context (storage_options::backend), the half of
// owner.cpp that talks to the backend: the context is read first (loading),
// each change is made durable before it is applied and answered
// (persisting), and a context that nothing involves leaves memory
// (passivation). While the backend works, only its answer runs: every other
// message stays in the mailbox, in order (CAF's `skip`), and the context's
// queue waits too (context::persisting).

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <caf/all.hpp>

#include "ctxstore/actors/durable.hpp"
#include "ctxstore/actors/memory_trim.hpp"
#include "ctxstore/actors/owner_state.hpp"
#include "ctxstore/messages/protocol.hpp"

namespace ctxstore::actors::owner_detail {

using namespace ctxstore::messages;

namespace {

/// Until `backend_answered`, only `bhvr` runs; every other message stays in
/// the mailbox, in order.
void await_backend(owner_ptr self, caf::behavior bhvr) {
  self->set_default_handler(caf::skip);
  self->become(caf::keep_behavior, std::move(bhvr));
}

void backend_answered(owner_ptr self) {
  self->unbecome();
  self->set_default_handler(refuse_unexpected);
}

caf::behavior persisting(owner_ptr self) {
  return {
    [=](persisted_atom, uint64_t seq) {
      auto& st = self->state;
      if (seq != st.backend_seq || !st.on_persisted)
        return;
      auto err = st.written->take();
      backend_answered(self);
      auto then = std::move(st.on_persisted);
      st.on_persisted = nullptr;
      st.fail_in_flight = nullptr;
      step s{self};
      auto& ctx = s.ctx();
      ctx.end_persist();
      then(s, err);
      if (err && to_errc(err) != errc::bad_request) {
        // The write may have landed all the same (a server that stopped
        // answering), or another writer changed the context: read it again
        // before anything else.
        ctx.begin_reload();
        load(self);
      }
      if (ctx.token() == 0)
        ctx.run_queue(s.fx, true);
    },
  };
}

/// Makes `w` durable, then runs `then` (under a step; the caller's step
/// holds the lock now); `fail` answers the requester if we stop first. No
/// write (`w` empty): `then` runs next all the same, in order. A write that
/// did not encode: `then` gets its error.
void persist(owner_ptr self, std::optional<caf::expected<backend_write>> w,
             after_persist then, std::function<void(const caf::error&)> fail) {
  auto& st = self->state;
  st.ctx->begin_persist();
  st.on_persisted = std::move(then);
  st.fail_in_flight = std::move(fail);
  auto seq = ++st.backend_seq;
  auto me = self->address(); // weak: the backend may outlive us
  auto slot = std::make_shared<handoff<caf::error>>();
  st.written = slot;
  auto counts = st.ctx->metrics; // the backend may answer on its own thread
  auto started = w && *w ? steady_ns() : 0; // 0: nothing to write
  auto kind = w && *w && (*w)->erase ? op_kind::erase : op_kind::write;
  auto answer = [me, seq, slot, counts, started, kind](const caf::error& err) {
    if (started != 0 && !err)
      counts->durable_commit.observe(steady_ns() - started);
    if (started != 0 && err)
      counts->count_failure(kind, backend_error(err));
    slot->put(err);
    if (auto owner = caf::actor_cast<caf::actor>(me))
      caf::anon_send(owner, persisted_atom::value, seq);
  };
  if (w && *w)
    st.backend->write(std::move(**w), std::move(answer));
  else
    answer(w ? w->error() : caf::error{});
  await_backend(self, persisting(self));
}

/// The write that makes `value` the next version of the context.
caf::expected<backend_write> next_write(owner_ptr self, const payload& value) {
  auto& ctx = *self->state.ctx;
  return write_of(ctx.key, ctx.next_version(),
                  ctx.stored() ? ctx.version() : 0, value);
}

/// The write that erases the context, none if it is not there.
std::optional<caf::expected<backend_write>> erase_write(owner_ptr self) {
  auto& ctx = *self->state.ctx;
  if (!ctx.stored())
    return std::nullopt;
  return caf::expected<backend_write>{erase_of(ctx.key, ctx.version())};
}

/// Until the backend answered a load, only its answer runs.
caf::behavior loading(owner_ptr self) {
  return {
    [=](loaded_atom, uint64_t seq) {
      auto& st = self->state;
      if (seq != st.backend_seq)
        return; // a load given up
      auto x = st.loaded->take();
      backend_answered(self);
      step s{self};
      // A thread that stored the context as new (begin_thread_load) may
      // have ended its own load after we started ours: its value is at
      // least as new as what we read.
      if (!s.ctx().loading())
        return;
      std::optional<std::pair<uint64_t, payload>> value;
      if (!x) {
        st.load_error = backend_error(x.error());
      } else if (*x) {
        st.cfg.stats->activations += 1;
        auto decoded = value_of(st.cfg.key, **x);
        if (!decoded) {
          // There but unreadable: reads get the error, a store or erase
          // replaces or removes it (context::unreadable).
          s.ctx().loaded_unreadable((**x).version, std::move(decoded.error()),
                                    s.fx);
          return;
        }
        value = std::move(*decoded);
      }
      // The backend could not answer: the requests waiting now get the
      // error, the session (if any) ends, and the owner retires, so that a
      // later request reads it again.
      if (st.load_error)
        s.ctx().stop(st.load_error, s.fx, true);
      else
        s.ctx().loaded(std::move(value), s.fx);
    },
  };
}

/// Until the thread that reads the context (and makes its first store
/// durable) hands it over, only its handover runs (context::
/// begin_thread_load). Then the context is in memory, or still `loading`
/// (the thread failed): read here.
caf::behavior awaiting_thread(owner_ptr self) {
  return {
    [=](handover_atom) {
      if (self->state.ctx->thread_loading())
        return; // not from the thread: it is still at work
      backend_answered(self);
      step s{self};
      if (s.ctx().loading())
        load(self);
    },
  };
}

/// The one-step store of await_first_store while the backend works on it.
struct first_store {
  caf::typed_response_promise<uint64_t> rp;
  payload value;
  // The version, from the backend's thread (which holds only this).
  std::shared_ptr<handoff<caf::expected<uint64_t>>> left
    = std::make_shared<handoff<caf::expected<uint64_t>>>();
};

/// Until the backend answered the one-step store of await_first_store,
/// only its answer runs. Then the context is in memory at the version the
/// backend left, with the value stored; or, if the store failed, still
/// `loading`: read here (the write may have landed).
caf::behavior first_stored(owner_ptr self, std::shared_ptr<first_store> fs) {
  return {
    [=](persisted_atom, uint64_t seq) {
      auto& st = self->state;
      if (seq != st.backend_seq)
        return;
      auto left = fs->left->take();
      backend_answered(self);
      st.fail_in_flight = nullptr;
      step s{self};
      auto& ctx = s.ctx();
      if (!left) {
        fs->rp.deliver(backend_error(left.error()));
        load(self);
        return;
      }
      fs->rp.deliver(apply_unread_store(ctx, *left, std::move(fs->value), s.fx));
    },
  };
}

} // namespace

void await_first_store(owner_ptr self) {
  // The registry sends the store right after it spawned us: until then,
  // whatever else comes waits in the mailbox, in order (a request sent
  // straight to us is concurrent with that store).
  await_backend(
    self,
    caf::behavior{
      [=](store_atom, const context_key& key, payload& value,
          uint64_t token) -> caf::result<uint64_t> {
        auto& st = self->state;
        auto& ctx = *st.ctx;
        backend_answered(self); // this mode ends here either way
        // Not a store this path takes, one whose value does not encode
        // (the usual path answers that), or a thread that stores the
        // context is at work (it made the cell): read it first, as always;
        // the store waits for that in the mailbox.
        auto w = key == st.cfg.key && token == 0 && ctx.fits(value)
                   ? write_of(key, 0, 0, value)
                   : caf::expected<backend_write>{caf::sec::invalid_argument};
        bool alone = false;
        if (w) {
          std::lock_guard<std::mutex> guard{ctx.mtx};
          alone = ctx.loading() && !ctx.thread_loading();
        }
        if (!alone) {
          load(self);
          return caf::skip;
        }
        auto fs = std::make_shared<first_store>();
        fs->rp = self->make_response_promise<uint64_t>();
        fs->value = std::move(value);
        auto seq = ++st.backend_seq;
        auto me = self->address(); // weak: the backend may outlive us
        auto counts = ctx.metrics; // answered on the backend's thread
        auto started = steady_ns();
        st.fail_in_flight = [fs](const caf::error& err) {
          fs->rp.deliver(err);
        };
        st.backend->store(
          std::move(*w), [me, seq, slot = fs->left, counts,
                          started](caf::expected<uint64_t> left) {
            if (left)
              counts->durable_commit.observe(steady_ns() - started);
            else
              counts->count_failure(op_kind::write, backend_error(left.error()));
            slot->put(std::move(left));
            if (auto owner = caf::actor_cast<caf::actor>(me))
              caf::anon_send(owner, persisted_atom::value, seq);
          });
        await_backend(self, first_stored(self, fs));
        return fs->rp;
      },
    });
}

void persist_head(owner_ptr self) {
  auto& ctx = *self->state.ctx;
  if (ctx.persisting())
    return; // the queue runs again when the backend answered
  // A durable context has no fast path: all its waiters are parked here.
  auto w = static_cast<parked_request*>(ctx.pop());
  auto done = [w](step& s, const caf::error& err) {
    auto& ctx = s.ctx();
    if (err) {
      w->error = backend_error(err);
      w->result = waiter::outcome::failed;
    } else if (w->what == waiter::request::store) {
      w->version = ctx.store(std::move(w->input), s.fx);
      w->result = waiter::outcome::done;
    } else {
      w->existed = ctx.erase(s.fx, true);
      w->result = waiter::outcome::done;
    }
    s.fx.push_woken(*w);
  };
  auto fail = [w](const caf::error& err) { w->promise.deliver(err); };
  if (w->what == waiter::request::store)
    persist(self, next_write(self, w->input), std::move(done), fail);
  else
    persist(self, erase_write(self), std::move(done), fail);
}

caf::result<uint64_t> persist_store(owner_ptr self, payload value, bool commit,
                                    bool end) {
  auto rp = self->make_response_promise<uint64_t>();
  auto write = next_write(self, value);
  persist(
    self, std::move(write),
    [rp, value = std::move(value), commit, end](step& s,
                                                const caf::error& err) mutable {
      auto& ctx = s.ctx();
      if (err) {
        if (end) // a failed release ends the session unchanged
          ctx.end_session(s.fx, true);
        rp.deliver(backend_error(err));
        return;
      }
      auto version = commit ? ctx.commit(std::move(value), s.fx)
                            : ctx.store(std::move(value), s.fx);
      if (end)
        ctx.end_session(s.fx, true);
      rp.deliver(version);
    },
    [rp](const caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

caf::result<bool> persist_erase(owner_ptr self) {
  auto rp = self->make_response_promise<bool>();
  persist(
    self, erase_write(self),
    [rp](step& s, const caf::error& err) mutable {
      if (err)
        rp.deliver(backend_error(err));
      else
        rp.deliver(s.ctx().erase(s.fx, true));
    },
    [rp](const caf::error& err) mutable { rp.deliver(err); });
  return rp;
}

void load(owner_ptr self) {
  auto& st = self->state;
  // Only a new owner can find a thread at work (its cell is new): the
  // thread hands over to us when it is done.
  if (st.ctx->thread_loading()) {
    await_backend(self, awaiting_thread(self));
    return;
  }
  auto seq = ++st.backend_seq;
  auto me = self->address();
  auto slot = std::make_shared<handoff<loaded_value>>();
  st.loaded = slot;
  st.backend->load(st.cfg.key.type, st.cfg.key.id,
                   [me, seq, slot](loaded_value x) {
                     slot->put(std::move(x));
                     if (auto owner = caf::actor_cast<caf::actor>(me))
                       caf::anon_send(owner, loaded_atom::value, seq);
                   });
  await_backend(self, loading(self));
}

bool reactivate(owner_ptr self) {
  auto& st = self->state;
  {
    std::lock_guard<std::mutex> guard{st.ctx->mtx};
    if (!st.ctx->evicted())
      return false;
    st.ctx->begin_reload();
    ++st.handled; // a retirement asked for before must not be confirmed
  }
  load(self);
  return true;
}

bool passivate(owner_ptr self, context& ctx) {
  if (!self->state.backend || !ctx.present() || !ctx.quiet() || ctx.retiring)
    return false;
  if (ctx.changes->watched(ctx.key))
    return false; // its watchers keep it in memory
  ctx.evict();
  auto n = self->state.cfg.stats->passivations.fetch_add(1) + 1;
  return n % passivations_per_trim == 0;
}

} // namespace ctxstore::actors::owner_detail
