// Specifications of failures (docs/design.md §3): a holder that dies or leaves by
// an exception loses its uncommitted changes and frees the context; acquire
// deadlines and leases bound every wait; fencing tokens refuse late, forged
// and foreign session requests; a waiter that gave up or died never receives
// nor blocks the context.
//
// Synchronization: "a request is queued" is observed through stats().waiters
// (a bounded poll), "a request finished" through a future awaited with a
// deadline. Every wait is bounded: when a deadline passes, the storage is
// killed (which answers every blocked call with storage_down) and the test
// fails instead of hanging.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "fixture.hpp"
#include "waiting.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;
using namespace waiting;
namespace msg = ctxstore::messages;

namespace {

std::exception_ptr as_exception(const caf::error& err) {
  return std::make_exception_ptr(ctxstore::error{to_errc(err), describe(err)});
}

/// An exception that is not a ctxstore::error.
struct boom : std::exception {
  const char* what() const noexcept override {
    return "boom";
  }
};

/// Spawns an actor that acquires `id` through an async_client, sets
/// `total = 2` and commits it, then changes its working copy to
/// owner "uncommitted", total 1000 without committing, and keeps holding.
/// The future holds the version of its commit.
std::future<uint64_t> spawn_async_holder(fixture& f, actor_reaper& reaper,
                                         const context_id& id,
                                         caf::actor& out) {
  auto done = std::make_shared<std::promise<uint64_t>>();
  auto fut = done->get_future();
  auto st = f.store;
  out = f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    auto kept = std::make_shared<async_session<cart>>();
    async_client ac{self, st};
    auto fail = [=](caf::error& err) {
      done->set_exception(as_exception(err));
    };
    ac.acquire<cart>(id).then(
      [=](async_session<cart> s) {
        *kept = s;
        s->total = 2;
        s.commit().then(
          [=](uint64_t version) {
            auto held = *kept;
            held->owner = "uncommitted";
            held->total = 1000;
            done->set_value(version);
          },
          fail);
      },
      fail);
    return {[kept](int) {}};
  });
  reaper.actors.push_back(out);
  return fut;
}

/// Spawns an actor that acquires `id` with raw protocol messages, commits
/// `total + 1` to the grant's owner, and holds the session without ever
/// sending anything else. The future holds the version of its commit.
std::future<uint64_t> spawn_raw_holder(fixture& f, actor_reaper& reaper,
                                       const context_id& id, caf::actor& out) {
  auto done = std::make_shared<std::promise<uint64_t>>();
  auto fut = done->get_future();
  auto registry = f.store.registry();
  out = f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    msg::context_key key{"cart", id};
    auto fail = [=](caf::error& err) {
      done->set_exception(as_exception(err));
    };
    self
      ->request(registry, caf::infinite, msg::acquire_atom::value, key,
                int64_t{-1})
      .then(
        [=](msg::grant& g) {
          auto c = g.value.value.get_as<cart>(0);
          c.total += 1;
          self
            ->request(g.owner, caf::infinite, msg::commit_atom::value, key,
                      g.token, msg::payload{caf::make_message(c)})
            .then([=](uint64_t version) { done->set_value(version); }, fail);
        },
        fail);
    return {[](int) {}};
  });
  reaper.actors.push_back(out);
  return fut;
}

/// Spawns an actor that acquires `id` (waiting at most `wait`; negative:
/// forever). When granted, it reports nothing, releases and quits; when
/// refused, it reports the error code and stays alive.
std::future<std::optional<errc>>
spawn_acquirer(fixture& f, actor_reaper& reaper, const context_id& id,
               std::chrono::milliseconds wait, caf::actor& out) {
  auto done = std::make_shared<std::promise<std::optional<errc>>>();
  auto fut = done->get_future();
  auto st = f.store;
  out = f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    async_client ac{self, st};
    ac.acquire<cart>(id, wait).then(
      [=](async_session<cart> s) mutable {
        s.release().then(
          [=](uint64_t) {
            done->set_value(std::nullopt);
            self->quit();
          },
          [=](caf::error& err) { done->set_value(to_errc(err)); });
      },
      [=](caf::error& err) { done->set_value(to_errc(err)); });
    return {[](int) {}};
  });
  reaper.actors.push_back(out);
  return fut;
}

/// The answer to a raw protocol request: a value or an error.
template <class R>
struct reply {
  std::optional<R> value;
  caf::error err;
};

/// The code of the error that refused a raw request; nothing if it was not
/// refused (an empty caf::error must not reach to_errc).
template <class R>
std::optional<errc> refusal(const reply<R>& r) {
  if (r.value || !r.err)
    return std::nullopt;
  return to_errc(r.err);
}

/// Sends a raw protocol request from `self` and waits (bounded) for it.
template <class R, class... Ts>
reply<R> ask(caf::scoped_actor& self, const caf::actor& dest, Ts&&... xs) {
  reply<R> result;
  self->request(dest, std::chrono::seconds{5}, std::forward<Ts>(xs)...)
    .receive([&](R& x) { result.value = std::move(x); },
             [&](caf::error& err) { result.err = std::move(err); });
  return result;
}

/// Acquires `id` on another thread, copies what it was granted, releases.
task<versioned<cart>> queue_acquire(fixture& f, const context_id& id) {
  return task<versioned<cart>>{f, [&f, id] {
                                 auto s = f.client->acquire<cart>(id);
                                 versioned<cart> seen{*s, s.version()};
                                 s.release();
                                 return seen;
                               }};
}

/// Tries once (wait 0) to acquire `id` on another thread and releases;
/// returns the version it was granted, or fails the test.
uint64_t acquire_at_once(fixture& f, const context_id& id) {
  auto r = within(
    f,
    [&]() -> std::pair<std::optional<errc>, uint64_t> {
      uint64_t version = 0;
      auto code = code_of([&] {
        auto s = f.client->acquire<cart>(id, 0ms);
        version = s.version();
        s.release();
      });
      return {code, version};
    },
    "an acquire with wait 0");
  if (r.first)
    FAIL("an acquire with wait 0 failed with " << to_string(*r.first));
  return r.second;
}

} // namespace

// -- death of the holder ----------------------------------------------------------------

SCENARIO("a holder actor that dies mid-session leaves the context usable",
         "[failure][holder_death]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1}); // version 1

  GIVEN("an async_client actor that committed a change and holds "
        "uncommitted ones, with a thread queued behind it") {
    std::optional<task<versioned<cart>>> waiter;
    caf::actor a;
    auto committed = spawn_async_holder(f, reaper, id, a);
    REQUIRE(await(f, committed, "the actor's acquire and commit") == 2);
    auto before = f.client->snapshot_versioned<cart>(id);
    CHECK(before.version == 2);
    CHECK(before.value.total == 2);
    CHECK(before.value.owner == "ann");
    waiter.emplace(queue_acquire(f, id));
    wait_for_waiters(f, 1);
    WHEN("the actor is killed") {
      caf::anon_send_exit(a, caf::exit_reason::kill);
      auto seen = waiter->get("the waiter behind the dead holder");
      THEN("the queued thread is granted the last committed value") {
        CHECK(seen.version == 2);
        CHECK(seen.value.total == 2);
        CHECK(seen.value.owner == "ann");
      }
      THEN("no snapshot shows the uncommitted change and the queue is empty") {
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 3); // the waiter's release
        CHECK(v.value.owner == "ann");
        CHECK(v.value.total == 2);
        auto s = f.client->stats();
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
      }
    }
  }

  GIVEN("an actor that acquired with raw protocol messages, committed once "
        "and never sends anything again") {
    caf::actor a;
    auto committed = spawn_raw_holder(f, reaper, id, a);
    REQUIRE(await(f, committed, "the raw actor's acquire and commit") == 2);
    REQUIRE(f.client->stats().sessions == 1);

    WHEN("it is killed while an actor waits for the context") {
      caf::actor w;
      auto waiter = spawn_acquirer(f, reaper, id, -1ms, w);
      wait_for_waiters(f, 1);
      caf::anon_send_exit(a, caf::exit_reason::kill);
      auto code = await(f, waiter, "the actor waiting behind the dead holder");
      THEN("the waiting actor is granted the context") {
        CHECK_FALSE(code);
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 3);
        CHECK(v.value.total == 2);
        CHECK(f.client->stats().sessions == 0);
      }
    }

    WHEN("it is killed while nobody waits") {
      caf::anon_send_exit(a, caf::exit_reason::kill);
      poll_stats(
        f, [](const storage_stats& s) { return s.sessions == 0; },
        "the dead holder's session ended");
      THEN("anybody can acquire the context at once, at its last commit") {
        CHECK(acquire_at_once(f, id) == 2);
        CHECK(f.client->snapshot<cart>(id).total == 2);
      }
    }
  }
}

// -- exceptions -------------------------------------------------------------------------------

SCENARIO("a thread that leaves its session by an exception aborts it",
         "[failure][exception]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1}); // version 1

  GIVEN("a thread that committed a change, holds uncommitted ones, and a "
        "thread queued behind it") {
    std::optional<task<versioned<cart>>> waiter;
    holder<cart> h{f, id};
    h.granted();
    h.change([](cart& c) { c.total = 2; });
    h.commit(); // version 2
    h.change([](cart& c) {
      c.owner = "uncommitted";
      c.total = 3;
    });
    waiter.emplace(queue_acquire(f, id));
    wait_for_waiters(f, 1);
    WHEN("the holder's scope is left by an exception") {
      h.unwind();
      auto seen = waiter->get("the waiter behind the unwound holder");
      THEN("the waiter proceeds with the last committed value") {
        CHECK(seen.version == 2);
        CHECK(seen.value.total == 2);
        CHECK(seen.value.owner == "ann");
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 3); // the waiter's release
        CHECK(v.value.owner == "ann");
        CHECK(v.value.total == 2);
      }
    }
  }

  GIVEN("a thread holding uncommitted changes and nobody waiting") {
    holder<cart> h{f, id};
    h.granted();
    h.change([](cart& c) { c.owner = "uncommitted"; });
    WHEN("its scope is left by an exception") {
      h.unwind();
      THEN("nothing of the session is committed and the context is free") {
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 1); // abort adds nothing
        CHECK(v.value.owner == "ann");
        CHECK(f.client->stats().sessions == 0);
        CHECK(acquire_at_once(f, id) == 1);
      }
    }
  }
}

SCENARIO("update whose function throws changes nothing and rethrows",
         "[failure][update]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1}); // version 1

  GIVEN("a stored cart") {
    WHEN("update's function changes it and then throws") {
      auto threw = within(
        f,
        [&] {
          try {
            f.client->update<cart>(id, [](cart& c) {
              c.owner = "half-written";
              c.total = -1;
              throw boom{};
            });
          } catch (const boom&) {
            return true;
          }
          return false;
        },
        "an update that throws");
      THEN("the exception reaches the caller") {
        CHECK(threw);
      }
      THEN("the context is unchanged and free") {
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 1);
        CHECK(v.value.owner == "ann");
        CHECK(v.value.total == 1);
        CHECK(f.client->stats().sessions == 0);
        CHECK(acquire_at_once(f, id) == 1);
      }
    }
    WHEN("update is called on this thread and throws") {
      THEN("the exception propagates as it was thrown") {
        REQUIRE_THROWS_AS(f.client->update<cart>(id,
                                                 [](cart& c) {
                                                   c.total = 5;
                                                   throw boom{};
                                                 }),
                          boom);
        CHECK(f.client->snapshot_versioned<cart>(id).version == 1);
        CHECK(f.client->snapshot<cart>(id).total == 1);
      }
    }
  }

  GIVEN("a holder, then a throwing update and an acquire queued behind it") {
    std::optional<task<bool>> update;
    std::optional<task<versioned<cart>>> waiter;
    holder<cart> h{f, id};
    h.granted();
    h.change([](cart& c) { c.owner = "holder"; });
    update.emplace(f, [&] {
      try {
        f.client->update<cart>(id, [](cart& c) {
          c.owner = "half-written";
          throw boom{};
        });
      } catch (const boom&) {
        return true;
      }
      return false;
    });
    wait_for_waiters(f, 1);
    waiter.emplace(queue_acquire(f, id));
    wait_for_waiters(f, 2);
    WHEN("the holder releases") {
      h.release(); // version 2
      auto threw = update->get("the queued update");
      auto seen = waiter->get("the acquire behind the update");
      THEN("the update threw, and the next waiter saw nothing of it") {
        CHECK(threw);
        CHECK(seen.version == 2);
        CHECK(seen.value.owner == "holder");
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 3);
        CHECK(v.value.owner == "holder");
      }
    }
  }
}

// -- deadlines --------------------------------------------------------------------------------

SCENARIO("an acquire with a deadline gives up with timeout and is never "
         "granted later",
         "[failure][timeout]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1}); // version 1

  GIVEN("a thread holding the context") {
    holder<cart> h{f, id};
    h.granted();

    WHEN("another thread acquires it with a 50 ms deadline") {
      auto r = within(
        f,
        [&] {
          auto t0 = std::chrono::steady_clock::now();
          auto code
            = code_of([&] { f.client->acquire<cart>(id, 50ms); });
          return std::make_pair(code, std::chrono::steady_clock::now() - t0);
        },
        "an acquire with a 50 ms deadline");
      THEN("it fails with timeout after waiting about that long") {
        REQUIRE(r.first);
        CHECK(*r.first == errc::timeout);
        CHECK(r.second >= 45ms);
        CHECK(r.second < 2s);
      }
      THEN("it left the queue, and the holder still holds") {
        auto s = f.client->stats();
        CHECK(s.waiters == 0);
        CHECK(s.sessions == 1);
      }
      AND_WHEN("the holder releases") {
        h.release(); // version 2
        THEN("the context is free: the timed-out waiter did not get it") {
          auto s = f.client->stats();
          CHECK(s.sessions == 0);
          CHECK(s.waiters == 0);
          CHECK(acquire_at_once(f, id) == 2);
        }
      }
    }

    WHEN("another thread tries once (wait 0)") {
      auto r = within(
        f,
        [&] {
          auto t0 = std::chrono::steady_clock::now();
          auto code = code_of([&] { f.client->acquire<cart>(id, 0ms); });
          return std::make_pair(code, std::chrono::steady_clock::now() - t0);
        },
        "an acquire with wait 0");
      THEN("it fails with timeout at once, without queueing") {
        REQUIRE(r.first);
        CHECK(*r.first == errc::timeout);
        CHECK(r.second < 1s);
        CHECK(f.client->stats().waiters == 0);
      }
    }

    WHEN("an actor acquires it with a 50 ms deadline and stays alive") {
      caf::actor a;
      auto fut = spawn_acquirer(f, reaper, id, 50ms, a);
      auto code = await(f, fut, "an actor's acquire with a 50 ms deadline");
      THEN("the actor gets timeout") {
        REQUIRE(code);
        CHECK(*code == errc::timeout);
      }
      AND_WHEN("the holder releases") {
        h.release(); // version 2
        THEN("the context is free: the living actor did not get it") {
          auto s = f.client->stats();
          CHECK(s.sessions == 0);
          CHECK(s.waiters == 0);
          CHECK(acquire_at_once(f, id) == 2);
        }
      }
    }

    WHEN("another thread waits with a deadline long enough") {
      std::optional<task<uint64_t>> waiter;
      waiter.emplace(f, [&] {
        auto s = f.client->acquire<cart>(id, 10000ms);
        return s.version();
      });
      wait_for_waiters(f, 1);
      h.release(); // version 2
      THEN("it is granted when the holder releases") {
        CHECK(waiter->get("an acquire with a 10 s deadline") == 2);
      }
    }
  }

  GIVEN("no context under an id") {
    auto missing = new_id();
    WHEN("a thread acquires it with a deadline") {
      auto code = within(
        f,
        [&] { return code_of([&] { f.client->acquire<cart>(missing, 50ms); }); },
        "an acquire of a missing context");
      THEN("it fails with no_such_context, not timeout") {
        REQUIRE(code);
        CHECK(*code == errc::no_such_context);
      }
    }
  }
}

// -- leases -----------------------------------------------------------------------------------

SCENARIO("a session past its lease is revoked and its late holder is refused",
         "[failure][lease]") {
  storage_options opts;
  opts.lease = 100ms;
  fixture f{opts};
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1}); // version 1

  GIVEN("a thread holding uncommitted changes past its lease while another "
        "thread waits") {
    holder<cart> late{f, id};
    auto late_grant = late.granted();
    late.change([](cart& c) {
      c.owner = "late";
      c.total = 7;
    });
    holder<cart> next{f, id};
    auto next_grant = next.granted(); // only possible once `late` is revoked
    THEN("the waiter got the context with the last committed value") {
      CHECK(next_grant.version == 1);
      CHECK(next_grant.token > late_grant.token);
      std::string owner;
      next.with([&](session<cart>& s) { owner = s->owner; },
                "reading the waiter's working copy");
      CHECK(owner == "ann");
    }
    THEN("the late holder's commit and release fail with session_expired") {
      CHECK(code_of([&] { late.commit(); }) == errc::session_expired);
      CHECK(code_of([&] { late.release(); }) == errc::session_expired);
      auto v = f.client->snapshot_versioned<cart>(id);
      CHECK(v.version == 1);
      CHECK(v.value.owner == "ann");
      CHECK(v.value.total == 1);
    }
  }

  GIVEN("a thread holding uncommitted changes past its lease, nobody waiting") {
    holder<cart> late{f, id};
    late.granted();
    late.change([](cart& c) { c.owner = "late"; });
    poll_stats(
      f, [](const storage_stats& s) { return s.sessions == 0; },
      "the lease revoked the session");
    THEN("its commit fails with session_expired and nothing is published") {
      CHECK(code_of([&] { late.commit(); }) == errc::session_expired);
      auto v = f.client->snapshot_versioned<cart>(id);
      CHECK(v.version == 1);
      CHECK(v.value.owner == "ann");
    }
    THEN("anybody else acquires the context at once") {
      CHECK(acquire_at_once(f, id) == 1);
    }
  }

  GIVEN("an actor holding uncommitted changes past its lease") {
    auto granted = std::make_shared<std::promise<void>>();
    auto granted_fut = granted->get_future();
    auto result = std::make_shared<std::promise<std::optional<errc>>>();
    auto result_fut = result->get_future();
    auto st = f.store;
    auto a = f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      auto kept = std::make_shared<async_session<cart>>();
      async_client ac{self, st};
      ac.acquire<cart>(id).then(
        [=](async_session<cart> s) {
          s->owner = "late-actor";
          *kept = s;
          granted->set_value();
        },
        [=](caf::error& err) { granted->set_exception(as_exception(err)); });
      return {[=](int) {
        kept->commit().then(
          [=](uint64_t) { result->set_value(std::nullopt); },
          [=](caf::error& err) { result->set_value(to_errc(err)); });
      }};
    });
    reaper.actors.push_back(a);
    await(f, granted_fut, "the actor's acquire");
    poll_stats(
      f, [](const storage_stats& s) { return s.sessions == 0; },
      "the lease revoked the actor's session");
    WHEN("the actor commits late") {
      caf::anon_send(a, 1);
      auto code = await(f, result_fut, "the actor's late commit");
      THEN("the commit fails with session_expired and nothing is published") {
        REQUIRE(code);
        CHECK(*code == errc::session_expired);
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 1);
        CHECK(v.value.owner == "ann");
      }
    }
  }
}

// -- fencing ----------------------------------------------------------------------------------

SCENARIO("session requests without the holder's valid token are refused",
         "[failure][fencing]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1}); // version 1
  msg::context_key key{"cart", id};
  caf::scoped_actor raw{f.sys};
  auto cart_payload = [](const std::string& owner) {
    return msg::payload{caf::make_message(cart{owner, {}, {}, 666})};
  };
  // A session of `raw`, opened and released through the protocol: its token
  // is stale from then on.
  auto first = ask<msg::grant>(raw, f.store.registry(),
                               msg::acquire_atom::value, key, int64_t{-1});
  REQUIRE(first.value);
  auto stale_token = first.value->token;
  auto owner = first.value->owner;
  REQUIRE(owner);
  auto released = ask<uint64_t>(raw, owner, msg::release_atom::value, key,
                                stale_token, cart_payload("ann"));
  REQUIRE(released.value);
  REQUIRE(*released.value == 2);

  GIVEN("no session open") {
    WHEN("a commit with the stale token is sent to the owner") {
      auto r = ask<uint64_t>(raw, owner, msg::commit_atom::value, key,
                             stale_token, cart_payload("stale"));
      THEN("it is rejected with session_expired and nothing changes") {
        CHECK_FALSE(r.value);
        CHECK(refusal(r) == errc::session_expired);
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 2);
        CHECK(v.value.owner == "ann");
      }
    }
    WHEN("a commit with a token never issued is sent to the owner") {
      auto r = ask<uint64_t>(raw, owner, msg::commit_atom::value, key,
                             stale_token + 1000, cart_payload("forged"));
      THEN("it is rejected with not_holder and nothing changes") {
        CHECK_FALSE(r.value);
        CHECK(refusal(r) == errc::not_holder);
        CHECK(f.client->snapshot_versioned<cart>(id).version == 2);
      }
    }
  }

  GIVEN("another thread holding the context") {
    holder<cart> h{f, id};
    auto current = h.granted();
    REQUIRE(current.token > stale_token);
    h.change([](cart& c) { c.owner = "holder"; });

    WHEN("a commit with the stale token is sent to the owner") {
      auto r = ask<uint64_t>(raw, owner, msg::commit_atom::value, key,
                             stale_token, cart_payload("stale"));
      THEN("it is rejected with session_expired") {
        CHECK_FALSE(r.value);
        CHECK(refusal(r) == errc::session_expired);
      }
      THEN("nothing changed and the holder's session is intact") {
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 2);
        CHECK(v.value.owner == "ann");
        CHECK(f.client->stats().sessions == 1);
        h.commit();
        CHECK(f.client->snapshot_versioned<cart>(id).version == 3);
        CHECK(f.client->snapshot<cart>(id).owner == "holder");
      }
    }

    WHEN("a release with the stale token is sent to the owner") {
      auto r = ask<uint64_t>(raw, owner, msg::release_atom::value, key,
                             stale_token, cart_payload("stale"));
      THEN("it is rejected with session_expired and the holder still holds") {
        CHECK_FALSE(r.value);
        CHECK(refusal(r) == errc::session_expired);
        CHECK(f.client->snapshot_versioned<cart>(id).version == 2);
        CHECK(f.client->stats().sessions == 1);
      }
    }

    WHEN("a commit with a token never issued is sent to the owner") {
      auto r = ask<uint64_t>(raw, owner, msg::commit_atom::value, key,
                             current.token + 1000, cart_payload("forged"));
      THEN("it is rejected with not_holder and nothing changes") {
        CHECK_FALSE(r.value);
        CHECK(refusal(r) == errc::not_holder);
        CHECK(f.client->snapshot_versioned<cart>(id).version == 2);
        CHECK(f.client->stats().sessions == 1);
      }
    }

    WHEN("an actor that is not the holder sends commit, release and abort "
         "with the holder's own token") {
      auto commit = ask<uint64_t>(raw, owner, msg::commit_atom::value, key,
                                  current.token, cart_payload("thief"));
      auto release = ask<uint64_t>(raw, owner, msg::release_atom::value, key,
                                   current.token, cart_payload("thief"));
      auto abort = ask<uint64_t>(raw, owner, msg::abort_atom::value, key,
                                 current.token);
      THEN("each is rejected with not_holder") {
        CHECK_FALSE(commit.value);
        CHECK(refusal(commit) == errc::not_holder);
        CHECK_FALSE(release.value);
        CHECK(refusal(release) == errc::not_holder);
        CHECK_FALSE(abort.value);
        CHECK(refusal(abort) == errc::not_holder);
      }
      THEN("nothing changed and the holder's session is intact") {
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 2);
        CHECK(v.value.owner == "ann");
        CHECK(f.client->stats().sessions == 1);
        h.release();
        auto after = f.client->snapshot_versioned<cart>(id);
        CHECK(after.version == 3);
        CHECK(after.value.owner == "holder");
      }
    }
  }
}

// -- waiters that die -------------------------------------------------------------------------

SCENARIO("a waiter actor that dies while queued never blocks the context",
         "[failure][waiter_death]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1}); // version 1

  GIVEN("a thread holding the context, an actor queued behind it and a "
        "thread queued behind the actor") {
    std::optional<task<versioned<cart>>> last;
    holder<cart> h{f, id};
    h.granted();
    caf::actor doomed;
    // Its outcome is never read: it dies before it could be granted.
    auto doomed_outcome = spawn_acquirer(f, reaper, id, -1ms, doomed);
    wait_for_waiters(f, 1);
    last.emplace(queue_acquire(f, id));
    wait_for_waiters(f, 2);
    WHEN("the queued actor is killed") {
      caf::anon_send_exit(doomed, caf::exit_reason::kill);
      THEN("it leaves the queue while the holder still holds") {
        wait_for_waiters(f, 1);
        CHECK(f.client->stats().sessions == 1);
      }
      AND_WHEN("the holder releases") {
        wait_for_waiters(f, 1);
        h.release(); // version 2
        auto seen = last->get("the thread queued behind the dead actor");
        THEN("the thread behind the dead actor is granted the context") {
          CHECK(seen.version == 2);
          auto s = f.client->stats();
          CHECK(s.sessions == 0);
          CHECK(s.waiters == 0);
          CHECK(acquire_at_once(f, id) == 3);
        }
      }
    }
  }

  GIVEN("a thread holding the context and an actor queued behind it") {
    holder<cart> h{f, id};
    h.granted();
    caf::actor doomed;
    // Its outcome is never read: it dies before it could be granted.
    auto doomed_outcome = spawn_acquirer(f, reaper, id, -1ms, doomed);
    wait_for_waiters(f, 1);
    WHEN("the actor is killed and the queue forgot it") {
      caf::anon_send_exit(doomed, caf::exit_reason::kill);
      wait_for_waiters(f, 0);
      h.release(); // version 2
      THEN("after the release nobody holds or waits, and the context is "
           "granted at once") {
        auto s = f.client->stats();
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
        CHECK(acquire_at_once(f, id) == 2);
      }
    }
    WHEN("the actor is killed and the holder releases right away") {
      caf::anon_send_exit(doomed, caf::exit_reason::kill);
      h.release(); // version 2, maybe before the owner saw the death
      THEN("the context becomes free without anybody else's help") {
        poll_stats(
          f,
          [](const storage_stats& s) {
            return s.sessions == 0 && s.waiters == 0;
          },
          "no session and no waiter after the dead waiter");
        CHECK(acquire_at_once(f, id) == 2);
      }
    }
  }
}
