#include "fixture.hpp"

#include <atomic>
#include <chrono>
#include <thread>

// The canary proves that tests/tsan.supp hides no race in our own code.
// By default it only checks a round trip. Built with -DCTXSTORE_PLANT_RACE
// (never set by CMake; see the README), it plants data races on purpose, and a
// ThreadSanitizer run must report each of them ("WARNING: ThreadSanitizer:
// data race", location: global 'planted_...'). They sit where suppressions of
// CAF frames could hide them:
// 1. in a function that blocking_client::update runs on a client thread;
// 2. in a function that async_client::update runs in an actor, on a CAF
//    worker thread, under CAF's message dispatch frames;
// 3. in the message handler of an actor, on a CAF worker thread.
// Each race is certain, not a matter of timing: one side writes, then raises
// a relaxed atomic flag; the other side waits for the flag, then writes. A
// relaxed flag orders nothing, so no happens-before edge joins the writes.

using namespace ctxstore;

#ifdef CTXSTORE_PLANT_RACE
namespace {

int planted_in_update = 0;
int planted_in_async_update = 0;
int planted_in_handler = 0;

std::atomic<bool> written{false};

void raise_flag() {
  written.store(true, std::memory_order_relaxed); // orders nothing
}

void await_flag() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!written.load(std::memory_order_relaxed)
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  REQUIRE(written.load(std::memory_order_relaxed));
  written.store(false, std::memory_order_relaxed);
}

} // namespace
#endif

SCENARIO("the sanitizer canary sings only when told to", "[canary]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{41});
  THEN("a blocking round trip answers what was stored") {
    CHECK(f.client->snapshot<counter>(id).value == 41);
  }
#ifdef CTXSTORE_PLANT_RACE
  WHEN("a client thread and the test thread write an int unsynchronized") {
    std::thread racer{[&] {
      blocking_client c{f.sys, f.store};
      c.update<counter>(id, [](counter& x) {
        planted_in_update = 1; // planted race 1
        raise_flag();
        x.value += 1;
      });
    }};
    await_flag();
    planted_in_update = 2; // planted race 1
    racer.join();
    THEN("ThreadSanitizer reports it; the test itself passes") {
      CHECK(planted_in_update != 0);
      CHECK(f.client->snapshot<counter>(id).value == 42);
    }
  }
  WHEN("an actor and the test thread write an int unsynchronized") {
    auto st = f.store;
    auto updater = [st, id](caf::event_based_actor* self) -> caf::behavior {
      async_client ac{self, st};
      ac.update<counter>(id, [](counter& x) {
          planted_in_async_update = 1; // planted race 2
          raise_flag();
          x.value += 1;
        })
        .then([self](uint64_t) { self->quit(); },
              [self](caf::error& e) { self->quit(e); });
      return {[](caf::ok_atom) {}};
    };
    auto a = f.sys.spawn(updater);
    await_flag();
    planted_in_async_update = 2; // planted race 2
    caf::scoped_actor{f.sys}->wait_for(a);
    THEN("ThreadSanitizer reports it; the test itself passes") {
      CHECK(planted_in_async_update != 0);
      CHECK(f.client->snapshot<counter>(id).value == 42);
    }
  }
  WHEN("an actor's handler and the test thread write an int unsynchronized") {
    auto writer = [](caf::event_based_actor*) -> caf::behavior {
      return {[](int x) {
        planted_in_handler = x; // planted race 3
        raise_flag();
      }};
    };
    auto a = f.sys.spawn(writer);
    caf::anon_send(a, 1);
    await_flag();
    planted_in_handler = 2; // planted race 3
    THEN("ThreadSanitizer reports it; the test itself passes") {
      CHECK(planted_in_handler != 0);
    }
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }
#endif
}
