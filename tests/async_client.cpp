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
