#include "fixture.hpp"

#include <future>

// The async client from inside event-based actors: the same rules as the
// blocking client, as requests answered with `.then`.

using namespace ctxstore;

namespace {

/// Spawns an actor that runs `body(self, client, done)` and waits for it to
/// call `done(result)`; returns the result. Fails the test after 10 s.
template <class R, class Body>
R run_in_actor(fixture& f, Body body) {
  std::promise<R> promise;
  auto fut = promise.get_future();
  f.sys.spawn([&](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, f.store);
    auto done = [self, &promise](R result) {
      promise.set_value(std::move(result));
      self->quit();
    };
    body(self, ac, done);
    return caf::behavior{[ac](int) {}};
  });
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  return fut.get();
}

using done_fn = std::function<void(std::string)>;
using client_ptr = std::shared_ptr<async_client>;

} // namespace

SCENARIO("an actor stores, snapshots, updates and erases contexts", "[async]") {
  fixture f;
  auto id = new_id();
  auto log = run_in_actor<std::string>(
    f, [id](caf::event_based_actor*, client_ptr ac, done_fn done) {
      auto fail = [done](caf::error& err) { done("error: " + describe(err)); };
      ac->store<cart>(id, cart{"ann", {}, {}, 1})
        .then(
          [=](uint64_t v1) {
            ac->update<cart>(id, [](cart& c) { c.total += 41; })
              .then(
                [=](uint64_t v2) {
                  ac->snapshot_versioned<cart>(id).then(
                    [=](versioned<cart> x) {
                      ac->erase<cart>(id).then(
                        [=](bool existed) {
                          done(std::to_string(v1) + " " + std::to_string(v2)
                               + " " + x.value.owner + " "
                               + std::to_string(x.value.total) + " "
                               + std::to_string(x.version) + " "
                               + (existed ? "erased" : "missing"));
                        },
                        fail);
                    },
                    fail);
                },
                fail);
          },
          fail);
    });
  CHECK(log == "1 2 ann 42 2 erased");
  CHECK(f.client->stats().contexts == 0);
}

SCENARIO("an actor gets errors as values", "[async]") {
  fixture f;
  auto id = new_id();
  auto code = run_in_actor<errc>(f, [id](caf::event_based_actor*, client_ptr ac,
                                         std::function<void(errc)> done) {
    ac->snapshot<cart>(id).then([done](cart) { done(errc{}); },
                                [done](caf::error& e) { done(to_errc(e)); });
  });
  CHECK(code == errc::no_such_context);
}

SCENARIO("an actor session commits on release and aborts when dropped",
         "[async][session]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  WHEN("the actor releases its session") {
    auto version
      = run_in_actor<uint64_t>(f, [id](caf::event_based_actor*, client_ptr ac,
                                       std::function<void(uint64_t)> done) {
          ac->acquire<counter>(id).then(
            [done](async_session<counter> s) {
              s->value = 2;
              s.release().then(done, [done](caf::error&) { done(0); });
            },
            [done](caf::error&) { done(0); });
        });
    THEN("the change is committed") {
      CHECK(version == 2);
      CHECK(f.client->snapshot<counter>(id).value == 2);
    }
  }
  WHEN("the actor drops its session without releasing it") {
    auto dropped
      = run_in_actor<bool>(f, [id](caf::event_based_actor*, client_ptr ac,
                                   std::function<void(bool)> done) {
          ac->acquire<counter>(id).then(
            [done](async_session<counter> s) {
              s->value = 99;
              done(true);
            },
            [done](caf::error&) { done(false); });
        });
    REQUIRE(dropped);
    THEN("the session is aborted and the context is free again") {
      auto s = f.client->acquire<counter>(id, std::chrono::seconds{10});
      CHECK(s->value == 1);
      CHECK(s.version() == 1);
    }
  }
}

SCENARIO("an actor's acquire with a deadline times out behind a holder",
         "[async][timeout]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  auto held = f.client->acquire<counter>(id);
  auto code = run_in_actor<errc>(f, [id](caf::event_based_actor*, client_ptr ac,
                                         std::function<void(errc)> done) {
    ac->acquire<counter>(id, std::chrono::milliseconds{30})
      .then([done](async_session<counter>) { done(errc{}); },
            [done](caf::error& e) { done(to_errc(e)); });
  });
  CHECK(code == errc::timeout);
  held.release();
  CHECK(f.client->stats().waiters == 0);
  CHECK(f.client->stats().sessions == 0);
}

SCENARIO("an actor's store while it holds the key proceeds at once",
         "[async][reentrancy]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1});
  auto total
    = run_in_actor<int64_t>(f, [id](caf::event_based_actor*, client_ptr ac,
                                    std::function<void(int64_t)> done) {
        auto fail = [done](caf::error&) { done(-1); };
        ac->acquire<cart>(id).then(
          [=](async_session<cart> s) {
            ac->store<cart>(id, cart{"bob", {}, {}, 10})
              .then(
                [=](uint64_t) mutable {
                  s->total += 1; // on top of what it stored
                  s.release().then([=](uint64_t) mutable { done(s.version()); },
                                   fail);
                },
                fail);
          },
          fail);
      });
  CHECK(total == 3);
  auto v = f.client->snapshot<cart>(id);
  CHECK(v.owner == "bob");
  CHECK(v.total == 11);
}

SCENARIO("an actor that drops its session and lives on gets no stray answer "
         "and the context stays usable",
         "[async][session]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  messages::context_key key{"counter", id};
  std::promise<int> promise;
  auto fut = promise.get_future();
  auto st = f.store;
  auto a = f.sys.spawn([&promise, st, key](caf::event_based_actor* self) {
    auto strays = std::make_shared<int>(0);
    auto ac = std::make_shared<async_client>(self, st);
    auto done = [&promise](int n) { promise.set_value(n); };
    ac->acquire<counter>(key.id).then(
      [=](async_session<counter> s) {
        s->value = 99;
        // Ask the owner itself after the abort: messages from one sender to
        // one receiver arrive in order, and so do the owner's answers.
        auto owner = detail::find_async_held(self, st.registry(), key)->owner;
        s = async_session<counter>{}; // dropped: aborts with a plain message
        self->request(owner, caf::infinite, messages::snapshot_atom::value, key)
          .then([=](messages::versioned_value&) { done(*strays); },
                [=](caf::error&) { done(-1); });
      },
      [=](caf::error&) { done(-1); });
    // The actor lives on; an answer to the abort would land here.
    return caf::behavior{[strays](uint64_t) { ++*strays; }, [ac](int) {}};
  });
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  auto strays = fut.get();
  caf::anon_send_exit(a, caf::exit_reason::kill);
  THEN("the abort was not answered into the actor's mailbox") {
    CHECK(strays == 0);
  }
  THEN("the context is free and unchanged") {
    auto s = f.client->acquire<counter>(id, std::chrono::seconds{10});
    CHECK(s->value == 1);
    CHECK(s.version() == 1);
  }
}

// -- snapshots of an actor
// ------------------------------------------------------------
// In the storage's process an actor's snapshot is read from the board of last
// commits and answered into the actor's own mailbox; these hold for it as for
// the message path.

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
    return run_in_actor<errc>(f, [probe](caf::event_based_actor*,
                                         client_ptr ac,
                                         std::function<void(errc)> done) {
      probe(*ac).then([done](const auto&) { done(errc{}); },
                      [done](caf::error& e) { done(to_errc(e)); });
    });
  };
  WHEN("the context does not exist") {
    auto other = new_id();
    THEN("the answer is no_such_context") {
      CHECK(code_of_snapshot([other](async_client& ac) {
              return ac.snapshot<cart>(other);
            })
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

SCENARIO("an actor's snapshot handler runs later, never inside the call",
         "[async][snapshot]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{3});
  auto order_seen = run_in_actor<std::string>(
    f, [id](caf::event_based_actor*, client_ptr ac, done_fn done) {
      auto log = std::make_shared<std::string>();
      ac->snapshot<counter>(id).then(
        [=](const counter& c) {
          *log += "value " + std::to_string(c.value) + ";";
          // A second one from inside a handler: still after this handler.
          ac->snapshot<counter>(id).then(
            [=](counter) { done(*log + "second;"); },
            [=](caf::error& e) { done(describe(e)); });
          *log += "handler returned;";
        },
        [=](caf::error& e) { done(describe(e)); });
      *log += "then returned;";
    });
  CHECK(order_seen == "then returned;value 3;handler returned;second;");
}
