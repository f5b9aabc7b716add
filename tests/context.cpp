// Specifications of one context's state machine alone (actors/.../context.hpp):
// its transitions, run as a client or the owner would run them, and the state
// and effects they leave. No actor system runs here, except where a holder
// must be an actor with an address.

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "ctxstore/actors/context.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "fixture.hpp"

using namespace ctxstore;
using actors::context;
using actors::effects;
using actors::waiter;

namespace {

using request = waiter::request;
using kind = waiter::kind;
using outcome = waiter::outcome;

/// A waiter that records when it is woken (threads and actors are woken by
/// context::wake; parked ones stay in the effects for the owner).
struct recording_waiter final : waiter {
  recording_waiter(kind how, request what, std::vector<std::string>& log,
                   std::string name)
      : waiter(how, what), log(log), name(std::move(name)) {
    // nop
  }

  void wake() noexcept override {
    log.push_back(name);
  }

  std::vector<std::string>& log;
  std::string name;
};

messages::payload value_of(int64_t x) {
  return messages::payload{caf::make_message(x)};
}

int64_t value_in(const caf::message& x) {
  return x.get_as<int64_t>(0);
}

struct machine {
  explicit machine(actors::context_defaults defaults = {})
      : stats(defaults.stats),
        ctx(messages::context_key{"counter", boost::uuids::uuid{{1}}},
            &typeid(int64_t), value_of(10), defaults) {
    stats->contexts += 1; // as the board counts a context it creates
  }

  /// Opens a direct session (as a local client on the fast path).
  uint64_t take() {
    effects fx;
    waiter w{kind::thread, request::acquire};
    REQUIRE(ctx.free_for_direct_session());
    ctx.acquire_direct(w, fx);
    REQUIRE(w.result == outcome::granted);
    return w.token;
  }

  /// The names woken by `fx` (threads and actors) and the parked waiters it
  /// keeps for the owner.
  std::vector<waiter*> wake(effects& fx) {
    context::wake(fx);
    std::vector<waiter*> parked;
    for (auto w = fx.woken; w != nullptr; w = w->next())
      parked.push_back(w);
    return parked;
  }

  std::shared_ptr<actors::counters> stats;
  context ctx;
  std::vector<std::string> log;
};

errc code_of(const caf::error& err) {
  return to_errc(err);
}

} // namespace

SCENARIO("a context grants its queue first come, first served across every "
         "kind of waiter",
         "[context]") {
  machine m;
  auto& ctx = m.ctx;
  auto first = m.take();
  recording_waiter thread_a{kind::thread, request::acquire, m.log, "thread a"};
  recording_waiter parked_store{kind::parked, request::store, m.log, "store"};
  recording_waiter actor_b{kind::actor, request::acquire, m.log, "actor b"};
  parked_store.input = value_of(20);
  REQUIRE(ctx.enqueue(thread_a));
  REQUIRE(ctx.enqueue(parked_store));
  REQUIRE(ctx.enqueue(actor_b));
  CHECK(ctx.queue_length() == 3);
  CHECK(m.stats->waiters == 3);
  CHECK_FALSE(ctx.free_for_direct());
  WHEN("the holder ends its session") {
    effects fx;
    ctx.end_session(fx, false);
    auto parked = m.wake(fx);
    THEN("the oldest waiter, a thread, gets the next session and is woken") {
      CHECK(parked.empty());
      CHECK(m.log == std::vector<std::string>{"thread a"});
      CHECK(thread_a.result == outcome::granted);
      CHECK(thread_a.token > first);
      CHECK(ctx.token() == thread_a.token);
      CHECK(ctx.direct());
      CHECK(value_in(thread_a.value) == 10);
      CHECK(ctx.queue_length() == 2);
    }
    AND_WHEN("that session ends on the fast path") {
      effects fx2;
      ctx.end_session(fx2, false);
      THEN("the queue stops before the parked store and asks for the owner") {
        CHECK(fx2.handover);
        CHECK(fx2.woken == nullptr);
        CHECK(ctx.token() == 0);
        CHECK(ctx.parked_next());
        CHECK_FALSE(ctx.free_for_direct()); // nobody barges past the store
      }
      AND_WHEN("the owner runs the queue") {
        effects fx3;
        ctx.run_queue(fx3, true);
        auto answered = m.wake(fx3);
        THEN("the store runs, then the actor gets the session") {
          REQUIRE(answered.size() == 1);
          CHECK(answered[0] == &parked_store);
          CHECK(parked_store.result == outcome::done);
          CHECK(parked_store.version == 2);
          CHECK(actor_b.result == outcome::granted);
          CHECK(value_in(actor_b.value) == 20);
          CHECK(actor_b.version == 2);
          CHECK(m.log == std::vector<std::string>{"thread a", "actor b"});
          CHECK(ctx.queue_empty());
          CHECK(m.stats->waiters == 0);
          CHECK(m.stats->sessions == 1);
        }
      }
    }
  }
}

SCENARIO("versions count stores and commits, never aborts", "[context]") {
  machine m;
  auto& ctx = m.ctx;
  effects fx;
  CHECK(ctx.version() == 1);
  CHECK(ctx.store(value_of(11), fx) == 2);
  CHECK(value_in(fx.replaced) == 10); // the commit it replaced, to recycle
  m.take();
  CHECK(ctx.commit(value_of(12), fx) == 3);
  CHECK(ctx.commit(value_of(12), fx) == 4); // unchanged value: still a version
  ctx.end_session(fx, false);
  CHECK(ctx.version() == 4);
  m.take();
  ctx.end_session(fx, false); // an abort: the working copy is never sent
  CHECK(ctx.version() == 4);
  CHECK(value_in(ctx.committed().value) == 12);
}

SCENARIO("fencing tokens are never reused and a late holder's token is stale",
         "[context]") {
  machine m;
  auto& ctx = m.ctx;
  auto first = m.take();
  CHECK(ctx.direct_session_open(first));
  effects fx;
  ctx.end_session(fx, false);
  CHECK_FALSE(ctx.direct_session_open(first));
  CHECK(ctx.stale(first));
  auto second = m.take();
  CHECK(second > first);
  CHECK_FALSE(ctx.direct_session_open(first));
  CHECK(ctx.direct_session_open(second));
  AND_THEN("a context created later sees every earlier token as stale") {
    actors::context_defaults same_storage;
    same_storage.stats = m.stats;
    machine later{same_storage};
    CHECK(later.ctx.stale(second));
  }
}

SCENARIO("a lease is armed with every session and revokes only its own",
         "[context]") {
  actors::context_defaults defaults;
  defaults.lease = std::chrono::milliseconds{50};
  machine m{defaults};
  auto& ctx = m.ctx;
  ctx.owner = caf::actor_addr{}; // a lease needs an owner for direct sessions
  CHECK_FALSE(ctx.free_for_direct_session());
  effects fx;
  waiter w{kind::parked, request::acquire};
  ctx.acquire_by(caf::actor_addr{}, w, fx);
  CHECK(fx.lease == w.token);
  recording_waiter next{kind::parked, request::acquire, m.log, "next"};
  REQUIRE(ctx.enqueue(next));
  WHEN("an old lease fires") {
    effects fx2;
    ctx.lease_expired(w.token - 1, fx2);
    THEN("nothing happens") {
      CHECK(ctx.token() == w.token);
      CHECK(fx2.woken == nullptr);
    }
  }
  WHEN("its own lease fires") {
    effects fx2;
    ctx.lease_expired(w.token, fx2);
    THEN("the session is revoked, the next waiter is granted with a lease") {
      CHECK(ctx.stale(w.token));
      CHECK(next.result == outcome::granted);
      CHECK(fx2.lease == next.token);
      CHECK(ctx.token() == next.token);
    }
  }
}

SCENARIO("a waiter that gave up is never granted later", "[context]") {
  machine m;
  auto& ctx = m.ctx;
  m.take();
  recording_waiter quitter{kind::thread, request::acquire, m.log, "quitter"};
  recording_waiter patient{kind::actor, request::acquire, m.log, "patient"};
  REQUIRE(ctx.enqueue(quitter));
  REQUIRE(ctx.enqueue(patient));
  CHECK(ctx.remove(quitter)); // timed out, or died
  CHECK_FALSE(ctx.remove(quitter));
  CHECK(m.stats->waiters == 1);
  effects fx;
  ctx.end_session(fx, false);
  m.wake(fx);
  CHECK(quitter.result == outcome::waiting);
  CHECK(patient.result == outcome::granted);
  CHECK(m.log == std::vector<std::string>{"patient"});
}

SCENARIO("max_waiters bounds the queue of every kind together", "[context]") {
  actors::context_defaults defaults;
  defaults.max_waiters = 2;
  machine m{defaults};
  auto& ctx = m.ctx;
  m.take();
  waiter a{kind::thread, request::acquire};
  waiter b{kind::parked, request::erase};
  waiter c{kind::actor, request::acquire};
  CHECK(ctx.enqueue(a));
  CHECK(ctx.enqueue(b));
  CHECK(ctx.queue_full());
  CHECK_FALSE(ctx.enqueue(c));
  CHECK(ctx.queue_length() == 2);
  CHECK(m.stats->waiters == 2);
  ctx.remove(a);
  ctx.remove(b);
}

SCENARIO("store and erase wait behind a session, in order", "[context]") {
  machine m;
  auto& ctx = m.ctx;
  m.take();
  recording_waiter erase{kind::parked, request::erase, m.log, "erase"};
  recording_waiter acquire{kind::thread, request::acquire, m.log, "acquire"};
  recording_waiter store{kind::parked, request::store, m.log, "store"};
  store.input = value_of(30);
  REQUIRE(ctx.enqueue(erase));
  REQUIRE(ctx.enqueue(acquire));
  REQUIRE(ctx.enqueue(store));
  effects fx;
  ctx.end_session(fx, true); // as the owner: parked requests run too
  auto parked = m.wake(fx);
  THEN("the erase runs, the acquire learns the context is gone, the store "
       "creates it again") {
    REQUIRE(parked.size() == 2);
    CHECK(erase.result == outcome::done);
    CHECK(erase.existed);
    CHECK(acquire.result == outcome::failed);
    CHECK(code_of(acquire.error) == errc::no_such_context);
    CHECK(store.result == outcome::done);
    CHECK(ctx.present());
    CHECK(value_in(ctx.committed().value) == 30);
    CHECK(m.stats->contexts == 1);
    CHECK(m.log == std::vector<std::string>{"acquire"});
  }
}

SCENARIO("an erase by the holder ends its session and tells the waiters",
         "[context]") {
  machine m;
  auto& ctx = m.ctx;
  m.take();
  recording_waiter w{kind::actor, request::acquire, m.log, "w"};
  REQUIRE(ctx.enqueue(w));
  effects fx;
  CHECK(ctx.erase(fx, false));
  m.wake(fx);
  CHECK(ctx.token() == 0);
  CHECK_FALSE(ctx.present());
  CHECK(w.result == outcome::failed);
  CHECK(code_of(w.error) == errc::no_such_context);
  CHECK(fx.erased_idle); // nothing left: the owner retires, or it leaves
  CHECK(m.stats->contexts == 0);
  CHECK(m.stats->sessions == 0);
  CHECK(m.stats->waiters == 0);
}

SCENARIO("a stopping storage fails every waiter", "[context]") {
  machine m;
  auto& ctx = m.ctx;
  auto token = m.take();
  recording_waiter t{kind::thread, request::acquire, m.log, "t"};
  recording_waiter p{kind::parked, request::store, m.log, "p"};
  REQUIRE(ctx.enqueue(t));
  REQUIRE(ctx.enqueue(p));
  auto down = make_error(errc::storage_down, "storage stopped");
  WHEN("the registry stops first") {
    effects fx;
    ctx.stop(down, fx, false);
    THEN("threads and actors fail; parked requests stay for their owner") {
      CHECK(m.wake(fx).empty());
      CHECK(t.result == outcome::failed);
      CHECK(code_of(t.error) == errc::storage_down);
      CHECK(p.result == outcome::waiting);
      CHECK_FALSE(ctx.direct_session_open(token));
      CHECK(ctx.stopped());
      CHECK_FALSE(ctx.free_for_direct());
      ctx.remove(p);
    }
  }
  WHEN("the owner stops") {
    effects fx;
    ctx.stop(down, fx, true);
    THEN("every waiter fails, the session and the context are gone") {
      auto parked = m.wake(fx);
      REQUIRE(parked.size() == 1);
      CHECK(code_of(p.error) == errc::storage_down);
      CHECK(ctx.token() == 0);
      CHECK_FALSE(ctx.present());
      CHECK(m.stats->sessions == 0);
      CHECK(m.stats->waiters == 0);
    }
  }
}

SCENARIO("the fast path is open only while nobody else is involved",
         "[context]") {
  GIVEN("a context with fast paths on") {
    machine m;
    auto& ctx = m.ctx;
    CHECK(ctx.free_for_direct());
    CHECK(ctx.free_for_direct_erase());
    ctx.inbound += 1; // a request of this process is on its way to the owner
    CHECK_FALSE(ctx.free_for_direct());
    CHECK_FALSE(ctx.may_queue_direct());
    ctx.inbound -= 1;
    m.take();
    CHECK_FALSE(ctx.free_for_direct());
    CHECK(ctx.may_queue_direct());
  }
  GIVEN("a context with fast paths off") {
    actors::context_defaults defaults;
    defaults.fast_path = false;
    machine m{defaults};
    CHECK_FALSE(m.ctx.free_for_direct());
    CHECK_FALSE(m.ctx.may_queue_direct());
  }
}

SCENARIO("an actor holder re-enters its session and its death ends it",
         "[context]") {
  // Holders are actors with addresses: the only part that needs a system.
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor a{sys};
  caf::scoped_actor b{sys};
  machine m;
  auto& ctx = m.ctx;
  effects fx;
  waiter first{kind::parked, request::acquire};
  ctx.acquire_by(a->address(), first, fx);
  CHECK(ctx.held_by(first.token, a->address()));
  CHECK_FALSE(ctx.held_by(first.token, b->address()));
  CHECK_FALSE(ctx.direct());
  waiter again{kind::parked, request::acquire};
  ctx.acquire_by(a->address(), again, fx);
  CHECK(again.token == first.token); // re-entry: the same session
  CHECK(m.stats->sessions == 1);
  recording_waiter next{kind::parked, request::acquire, m.log, "next"};
  next.client = b->address();
  REQUIRE(ctx.enqueue(next));
  effects fx2;
  ctx.holder_gone(b->address(), fx2); // a waiter's death is not the holder's
  CHECK(ctx.token() == first.token);
  ctx.holder_gone(a->address(), fx2);
  CHECK(next.result == outcome::granted);
  CHECK(ctx.held_by(next.token, b->address()));
  CHECK(ctx.stale(first.token));
}
