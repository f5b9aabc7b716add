// An actor's snapshots: which commit they see (every one acknowledged
// before, never a holder's uncommitted change, without waiting behind
// holders) and the errors they fail with.
//
// In the storage's process an actor's snapshot is read from the board of last
// commits and answered into the actor's own mailbox; these hold for it as for
// the message path.

#include "async_fixture.hpp"
#include "fixture.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

using namespace ctxstore;
using namespace async_fixture;

SCENARIO("an actor's snapshot reads every commit acknowledged before it",
         "[async][snapshot]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{0});
  GIVEN("an actor that commits and snapshots in turn") {
    // Each round: commit value i in a session (acknowledged), snapshot, then
    // store i + 1 (acknowledged), snapshot again.
    auto log = run_in_actor<std::string>(
      f, [id](caf::event_based_actor*, client_ptr ac, done_fn done) {
        auto fail = [done](caf::error& e) { done("error: " + describe(e)); };
        // Passed itself (not captured: a cycle would keep the client, and so
        // the storage and the actor system, alive).
        auto step = [=](auto next, int64_t i) -> void {
          if (i >= 200)
            return done("ok");
          ac->acquire<counter>(id).then(
            [=](async_session<counter> s) mutable {
              s->value = i;
              s.commit().then(
                [=](uint64_t v) mutable {
                  ac->snapshot_versioned<counter>(id).then(
                    [=](const versioned<counter>& x) mutable {
                      if (x.version != v || x.value.value != i)
                        return done("commit " + std::to_string(i) + " unseen");
                      s.release().then(
                        [=](uint64_t) {
                          ac->store<counter>(id, counter{i + 1})
                            .then(
                              [=](uint64_t) {
                                ac->snapshot<counter>(id).then(
                                  [=](const counter& c) {
                                    if (c.value != i + 1)
                                      return done("store unseen");
                                    next(next, i + 2);
                                  },
                                  fail);
                              },
                              fail);
                        },
                        fail);
                    },
                    fail);
                },
                fail);
            },
            fail);
        };
        step(step, 0);
      });
    THEN("every snapshot shows the commit just acknowledged") {
      CHECK(log == "ok");
    }
  }
  GIVEN("commits acknowledged to a blocking client on another thread") {
    for (int64_t i = 1; i <= 20; ++i) {
      f.client->store<counter>(id, counter{i});
      auto seen
        = run_in_actor<int64_t>(f, [id](caf::event_based_actor*, client_ptr ac,
                                        std::function<void(int64_t)> done) {
            ac->snapshot<counter>(id).then(
              [done](const counter& c) { done(c.value); },
              [done](caf::error&) { done(-1); });
          });
      REQUIRE(seen == i);
    }
  }
}

SCENARIO("an actor's snapshot answers while a session is held and others "
         "wait",
         "[async][snapshot]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{5});
  GIVEN("a holder with an uncommitted change and three queued acquires") {
    auto s = f.client->acquire<counter>(id);
    s->value = 6; // uncommitted: snapshots must not see it
    std::vector<std::future<int64_t>> waiters;
    for (int i = 0; i < 3; ++i)
      waiters.emplace_back(std::async(std::launch::async, [&f, id] {
        blocking_client c{f.sys, f.store};
        auto w = c.acquire<counter>(id, std::chrono::seconds{10});
        return w->value;
      }));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (f.client->stats().waiters < 3
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    REQUIRE(f.client->stats().waiters == 3);
    WHEN("an actor asks for snapshots") {
      auto seen = run_in_actor<std::string>(
        f, [id](caf::event_based_actor*, client_ptr ac, done_fn done) {
          ac->snapshot_versioned<counter>(id).then(
            [=](versioned<counter> x) {
              ac->snapshot<counter>(id).then(
                [=](counter c) {
                  done(std::to_string(x.value.value) + " v"
                       + std::to_string(x.version) + " "
                       + std::to_string(c.value));
                },
                [done](caf::error& e) { done(describe(e)); });
            },
            [done](caf::error& e) { done(describe(e)); });
        });
      THEN("they get the last committed value at once") {
        CHECK(seen == "5 v1 5");
        CHECK(f.client->stats().waiters == 3);
      }
    }
    s.release();
    for (auto& w : waiters) {
      REQUIRE(w.wait_for(std::chrono::seconds{10})
              == std::future_status::ready);
      CHECK(w.get() == 6);
    }
  }
}

SCENARIO("an actor's snapshot of a missing context, under another type or "
         "of a stopped storage fails with the same errors as ever",
         "[async][snapshot]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1});
  auto code_of_snapshot = [&f](auto probe) {
    return run_in_actor<errc>(f, [probe](caf::event_based_actor*, client_ptr ac,
                                         std::function<void(errc)> done) {
      probe(*ac).then([done](const auto&) { done(errc{}); },
                      [done](caf::error& e) { done(to_errc(e)); });
    });
  };
  WHEN("the context does not exist") {
    auto other = new_id();
    THEN("the answer is no_such_context") {
      CHECK(code_of_snapshot(
              [other](async_client& ac) { return ac.snapshot<cart>(other); })
            == errc::no_such_context);
    }
  }
  WHEN("the id is asked for with another type") {
    // Two types with the same id are two contexts. (A value of another type
    // under a key is refused when stored, so `type_mismatch` cannot come
    // from a storage in this process; the board path checks it all the same.)
    THEN("the answer is no_such_context") {
      CHECK(code_of_snapshot(
              [id](async_client& ac) { return ac.snapshot<order>(id); })
            == errc::no_such_context);
      CHECK(code_of_snapshot([id](async_client& ac) {
              return ac.snapshot_versioned<order>(id);
            })
            == errc::no_such_context);
    }
  }
  WHEN("the storage stopped") {
    caf::scoped_actor self{f.sys};
    self->monitor(f.store.registry());
    caf::anon_send_exit(f.store.registry(), caf::exit_reason::kill);
    bool down = false;
    self->receive([&](caf::down_msg&) { down = true; },
                  caf::after(std::chrono::seconds{10}) >> [] {});
    REQUIRE(down);
    THEN("the answer is storage_down") {
      CHECK(code_of_snapshot(
              [id](async_client& ac) { return ac.snapshot<cart>(id); })
            == errc::storage_down);
    }
  }
}
