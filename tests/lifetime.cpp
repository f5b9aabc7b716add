#include "fixture.hpp"

#include <future>
#include <optional>

#include "test_hooks.hpp"
#include "waiting.hpp"

using namespace ctxstore;

SCENARIO("default_storage is one storage per actor system", "[lifetime]") {
  test_config cfg;
  caf::actor_system sys{cfg};
  auto id = new_id();
  {
    auto& a = default_storage(sys);
    auto& b = default_storage(sys);
    CHECK(&a == &b);
    CHECK(a == b);
    blocking_client one{sys, a};
    one.store<counter>(id, counter{42});
    blocking_client two{sys, default_storage(sys)};
    CHECK(two.snapshot<counter>(id).value == 42);
  }
  THEN("another actor system has its own default storage") {
    test_config cfg2;
    caf::actor_system sys2{cfg2};
    // (CAF compares handles by actor id and node; without a middleman two
    // systems' ids can coincide, so compare the actors themselves.)
    CHECK(&default_storage(sys2) != &default_storage(sys));
    CHECK(
      caf::actor_cast<caf::abstract_actor*>(default_storage(sys2).registry())
      != caf::actor_cast<caf::abstract_actor*>(
        default_storage(sys).registry()));
    blocking_client other{sys2, default_storage(sys2)};
    CHECK(error_code_of([&] { other.snapshot<counter>(id); })
          == errc::no_such_context);
  }
}

SCENARIO("actor systems with storages shut down without hanging",
         "[lifetime]") {
  auto run = std::async(std::launch::async, [] {
    for (int round = 0; round < 3; ++round) {
      test_config cfg;
      caf::actor_system sys{cfg};
      auto st = spawn_storage(sys, storage_options{});
      blocking_client c{sys, st};
      blocking_client d{sys, default_storage(sys)};
      for (int i = 0; i < 10; ++i) {
        c.store<counter>(new_id(), counter{i});
        d.store<counter>(new_id(), counter{i});
      }
      auto id = new_id();
      c.store<counter>(id, counter{0});
      auto s = c.acquire<counter>(id); // released before the system goes
      s->value = 1;
    }
    return true;
  });
  REQUIRE(run.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  CHECK(run.get());
}

SCENARIO("a storage stops when its last handle is gone", "[lifetime]") {
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scoped_actor self{sys};
  {
    auto st = spawn_storage(sys);
    blocking_client c{sys, st};
    c.store<counter>(new_id(), counter{1});
    self->monitor(st.registry());
  }
  bool down = false;
  self->receive([&](caf::down_msg&) { down = true; },
                caf::after(std::chrono::seconds{10}) >> [] {});
  CHECK(down);
}

SCENARIO("clients of a stopped storage get storage_down", "[lifetime]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  GIVEN("a waiter queued behind a holder") {
    auto s = f.client->acquire<counter>(id);
    auto waiter = std::async(std::launch::async, [&] {
      blocking_client c{f.sys, f.store};
      return error_code_of([&] { c.acquire<counter>(id); });
    });
    // The waiter is queued once the storage counts it.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (f.client->stats().waiters == 0
           && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
    REQUIRE(f.client->stats().waiters == 1);
    WHEN("the storage is stopped") {
      caf::anon_send_exit(f.store.registry(), caf::exit_reason::kill);
      THEN("the waiter and every later call fail with storage_down") {
        REQUIRE(waiter.wait_for(std::chrono::seconds{10})
                == std::future_status::ready);
        CHECK(waiter.get() == errc::storage_down);
        CHECK(error_code_of([&] { f.client->snapshot<counter>(id); })
              == errc::storage_down);
        CHECK(error_code_of([&] { s.commit(); }) == errc::storage_down);
      }
    }
  }
}

SCENARIO("erase removes a context and its owner", "[lifetime][erase]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  THEN("erasing a missing context answers false") {
    CHECK_FALSE(c.erase<counter>(id));
  }
  GIVEN("a stored context") {
    c.store<counter>(id, counter{3});
    CHECK(c.stats().contexts == 1);
    WHEN("it is erased") {
      CHECK(c.erase<counter>(id));
      THEN("it is gone, and counted as gone at once") {
        CHECK(error_code_of([&] { c.snapshot<counter>(id); })
              == errc::no_such_context);
        CHECK(error_code_of([&] { c.acquire<counter>(id); })
              == errc::no_such_context);
        CHECK(c.stats().contexts == 0);
        CHECK_FALSE(c.erase<counter>(id));
      }
      THEN("its owner actor retires") {
        auto deadline
          = std::chrono::steady_clock::now() + std::chrono::seconds{10};
        while (c.stats().owners != 0
               && std::chrono::steady_clock::now() < deadline)
          std::this_thread::yield();
        CHECK(c.stats().owners == 0);
      }
      THEN("a later store creates it again") {
        c.store<counter>(id, counter{9});
        CHECK(c.snapshot<counter>(id).value == 9);
        CHECK(c.stats().contexts == 1);
      }
    }
  }
}

namespace {

/// Sends `xs...` with request_routed from a new actor; nothing: answered.
template <class R, class... Ts>
std::optional<errc> ask_routed(fixture& f, caf::actor owner,
                               caf::actor registry, Ts... xs) {
  auto answer = std::make_shared<std::promise<std::optional<errc>>>();
  auto fut = answer->get_future();
  f.sys.spawn([=](caf::event_based_actor* self) {
    detail::request_routed(
      self, owner, registry, [=](R&) { answer->set_value(std::nullopt); },
      [=](caf::error& err) { answer->set_value(to_errc(err)); }, xs...);
  });
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  return fut.get();
}

} // namespace

SCENARIO("a request sent to an owner that retired meanwhile goes to the "
         "registry",
         "[lifetime][erase]") {
  // Clients send requests on a known local context straight to its owner;
  // the owner may retire (its context erased) before the request arrives.
  fixture f;
  auto id = new_id();
  messages::context_key key{"counter", id};
  f.client->store<counter>(id, counter{3});
  auto registry = f.store.registry();
  // A request by key makes the registry spawn the context's owner (an abort
  // without a session changes nothing).
  CHECK(ask_routed<uint64_t>(f, caf::actor{}, registry,
                             messages::abort_atom::value, key, uint64_t{0})
        == errc::not_holder);
  auto stale = detail::local_owner(f.store, key);
  REQUIRE(stale);
  REQUIRE(f.client->erase<counter>(id));
  waiting::poll_stats(
    f, [](const storage_stats& s) { return s.owners == 0; },
    "the owner retired");
  WHEN("an acquire bounces off the stopped owner") {
    auto result = ask_routed<messages::grant>(f, stale, registry,
                                              messages::acquire_atom::value,
                                              key, int64_t{-1});
    THEN("the registry answers for the key as it is now: missing") {
      CHECK(result == errc::no_such_context);
    }
  }
  WHEN("a store bounces off the stopped owner") {
    auto result = ask_routed<uint64_t>(
      f, stale, registry, messages::store_atom::value, key,
      messages::payload{caf::make_message(counter{5})}, uint64_t{0});
    THEN("the registry creates the context again") {
      CHECK_FALSE(result);
      CHECK(f.client->snapshot<counter>(id).value == 5);
      CHECK(f.client->stats().contexts == 1);
    }
  }
}

SCENARIO("create, use and erase in a loop returns to the baseline",
         "[lifetime][erase]") {
  fixture f;
  auto& c = *f.client;
  for (int i = 0; i < 2000; ++i) {
    auto id = new_id();
    c.store<counter>(id, counter{i});
    c.update<counter>(id, [](counter& x) { ++x.value; });
    REQUIRE(c.snapshot<counter>(id).value == i + 1);
    REQUIRE(c.erase<counter>(id));
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (c.stats().owners != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  auto st = c.stats();
  CHECK(st.contexts == 0);
  CHECK(st.owners == 0);
  CHECK(st.sessions == 0);
  CHECK(st.waiters == 0);
}

SCENARIO("a context gets its owner actor only when it needs one",
         "[lifetime][owner]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  THEN("a stored context is counted and readable without an owner actor") {
    auto st = f.client->stats();
    CHECK(st.contexts == 1);
    CHECK(st.owners == 0);
    CHECK(f.client->snapshot<counter>(id).value == 1);
  }
  // An actor waits for a held context in the context's cell, like a thread;
  // a bounded wait needs an owner, which times it.
  for (auto bounded : {false, true}) {
    WHEN((bounded ? "a thread holds it and an actor waits for it, bounded"
                  : "a thread holds it and an actor waits for it")) {
      waiting::holder<counter> h{f, id};
      h.granted();
      h.change([](counter& c) { c.value = 2; });
      auto got = std::make_shared<std::promise<int64_t>>();
      auto fut = got->get_future();
      auto st = f.store;
      auto wait = bounded ? std::chrono::milliseconds{std::chrono::minutes{5}}
                          : std::chrono::milliseconds{-1};
      f.sys.spawn([=](caf::event_based_actor* self) {
        async_client c{self, st};
        c.acquire<counter>(id, wait).then(
          [=](async_session<counter> s) mutable {
            got->set_value(s->value);
            s.release().then([](uint64_t) {}, [](caf::error&) {});
          },
          [=](caf::error&) { got->set_value(-1); });
      });
      waiting::wait_for_waiters(f, 1);
      THEN("the actor gets the thread's release; only the bounded wait needs "
           "an owner actor") {
        auto fast = with_test_fast_path({}).local_fast_path;
        CHECK(f.client->stats().owners == (bounded || !fast ? 1 : 0));
        h.release();
        CHECK(waiting::await(f, fut, "the actor's grant") == 2);
      }
    }
  }
  WHEN("it is erased") {
    CHECK(f.client->erase<counter>(id));
    THEN("it is gone, and stored again it starts at version 1") {
      CHECK(f.client->stats().contexts == 0);
      CHECK(error_code_of([&] { f.client->snapshot<counter>(id); })
            == errc::no_such_context);
      f.client->store<counter>(id, counter{7});
      auto again = f.client->snapshot_versioned<counter>(id);
      CHECK(again.value.value == 7);
      CHECK(again.version == 1);
    }
  }
}

SCENARIO("a thread's session on a context without an owner actor learns that "
         "the storage stopped",
         "[lifetime]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  auto s = f.client->acquire<counter>(id);
  caf::scoped_actor self{f.sys};
  // (With the fast path off the session is the owner's: wait for it too.)
  size_t watched = 1;
  self->monitor(f.store.registry());
  if (auto owner = detail::local_owner(f.store, {"counter", id})) {
    self->monitor(owner);
    ++watched;
  }
  caf::anon_send_exit(f.store.registry(), caf::exit_reason::kill);
  size_t down = 0;
  for (size_t i = 0; i < watched; ++i)
    self->receive([&](caf::down_msg&) { ++down; },
                  caf::after(std::chrono::seconds{10}) >> [] {});
  REQUIRE(down == watched);
  CHECK(error_code_of([&] { s.commit(); }) == errc::storage_down);
  CHECK(error_code_of([&] { s.release(); }) == errc::storage_down);
}
