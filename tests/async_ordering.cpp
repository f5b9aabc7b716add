// The order of one actor's requests on a key: they reach the context in the
// order sent (direct path, owner or registry), behind threads that asked
// first, also while the context's owner retires; and an owner kept for a
// request on its way retires once its answer arrives.

#include "async_fixture.hpp"
#include "fixture.hpp"
#include "waiting.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

using namespace ctxstore;
using namespace async_fixture;
using namespace waiting;

SCENARIO("an actor's store of a new context stays behind its own earlier "
         "requests on that key",
         "[async][direct][fifo]") {
  // A store that creates a context directly must not overtake a request of
  // the same actor still on its way to the storage: the acquire, erase or
  // snapshot sent first finds no context; the store creates it afterwards.
  fixture f;
  for (int round = 0; round < 20; ++round) {
    auto id = new_id();
    int64_t round_value = round + 1;
    auto log = run_in_actor<std::string>(f, [id, round_value](
                                              caf::event_based_actor*,
                                              client_ptr ac, done_fn done) {
      auto note = answer_log(4, done);
      ac->acquire<counter>(id, std::chrono::milliseconds{0})
        .then([note](async_session<counter>) { note("acquire granted"); },
              [=](caf::error& e) { note("acquire " + code_name(e)); });
      ac->erase<counter>(id).then(
        [note](bool existed) { note(existed ? "erased" : "nothing to erase"); },
        [note](caf::error& e) { note("erase " + describe(e)); });
      ac->snapshot<counter>(id).then(
        [note](const counter& c) { note("seen " + std::to_string(c.value)); },
        [=](caf::error& e) { note("snapshot " + code_name(e)); });
      ac->store<counter>(id, counter{round_value})
        .then([note](uint64_t v) { note("stored " + std::to_string(v)); },
              [note](caf::error& e) { note("store " + describe(e)); });
    });
    CHECK(log
          == "acquire no_such_context;nothing to erase;"
             "snapshot no_such_context;stored 1;");
    CHECK(f.client->snapshot<counter>(id).value == round_value);
  }
}

SCENARIO("an actor that releases and at once acquires again queues behind the "
         "thread that waited",
         "[async][direct][fifo]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  auto log = std::make_shared<std::string>();
  auto log_mtx = std::make_shared<std::mutex>();
  auto note = [log, log_mtx](const std::string& what) {
    std::lock_guard<std::mutex> guard{*log_mtx};
    *log += what + ";";
  };
  auto again = std::make_shared<std::promise<int64_t>>();
  auto again_fut = again->get_future();
  GIVEN("an actor holding the context and a thread queued behind it") {
    caf::actor a;
    auto granted = spawn_counter_holder(
      f, reaper, id, 2,
      [=](int, caf::event_based_actor*, client_ptr ac,
          async_session<counter>& s) {
        s.release().then([](uint64_t) {},
                         [=](caf::error& e) { note(describe(e)); });
        // Without waiting for the answer: the context is free for a moment,
        // but the thread asked first.
        ac->acquire<counter>(id).then(
          [=](async_session<counter> s2) {
            note("A again");
            auto value = s2->value;
            s2.release().then([=](uint64_t) { again->set_value(value); },
                              [=](caf::error&) { again->set_value(-1); });
          },
          [=](caf::error&) { again->set_value(-1); });
      },
      a);
    REQUIRE(await(f, granted, "the actor's acquire").value == 1);
    task<int64_t> waiter{f, [&f, id, note] {
                           auto s = f.client->acquire<counter>(id);
                           note("T");
                           auto value = s->value;
                           s->value = 3;
                           s.release();
                           return value;
                         }};
    wait_for_waiters(f, 1);
    WHEN("the actor releases and acquires again in one go") {
      caf::anon_send(a, 1);
      THEN("the thread gets the context first, then the actor") {
        CHECK(waiter.get("the queued thread") == 2);
        CHECK(await(f, again_fut, "the actor's second acquire") == 3);
        CHECK(*log == "T;A again;");
        auto s = f.client->stats();
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
      }
    }
  }
}

SCENARIO("an actor's store queued behind a holder stays ahead of its own "
         "later acquire",
         "[async][direct][fifo]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{0});
  // Each round: a thread holds the context; the actor sends a store (which
  // queues), then the thread releases (the actor waits for that on its own
  // thread), then the actor acquires at once. Its acquire must see its store.
  for (int64_t round = 1; round <= 20; ++round) {
    holder<counter> h{f, id};
    h.granted();
    std::promise<std::string> result;
    auto fut = result.get_future();
    auto st = f.store;
    auto* hp = &h;
    auto a = f.sys.spawn<caf::detached>(
      [&result, st, id, round, hp](caf::event_based_actor* self) {
        auto ac = std::make_shared<async_client>(self, st);
        auto stored = std::make_shared<bool>(false);
        ac->store<counter>(id, counter{round})
          .then([stored](uint64_t) { *stored = true; },
                [&result](caf::error& e) { result.set_value(describe(e)); });
        hp->release(); // on the holder's thread; we wait for it here
        ac->acquire<counter>(id).then(
          [=, &result](async_session<counter> s) {
            auto seen = s->value;
            s.abort().then(
              [=, &result](uint64_t) {
                result.set_value(*stored ? std::to_string(seen)
                                         : "acquired before the store");
                self->quit();
              },
              [&result](caf::error& e) { result.set_value(describe(e)); });
          },
          [&result](caf::error& e) { result.set_value(describe(e)); });
        return caf::behavior{[ac](int) {}};
      });
    CHECK(await(f, fut, "the actor's store and acquire")
          == std::to_string(round));
    caf::anon_send_exit(a, caf::exit_reason::kill);
  }
  CHECK(f.client->stats().sessions == 0);
}

SCENARIO("an actor's requests sent right after it erased a context keep "
         "their order while the context's owner retires",
         "[async][fifo][retire]") {
  // The actor's session makes the registry spawn an owner. The owner
  // retires once the context is erased; the store and acquire the actor
  // sent right behind the erase reach it while it does: the acquire must
  // see the store, and the owner must not stay behind for nothing.
  fixture f;
  for (int round = 0; round < 20; ++round) {
    auto id = new_id();
    f.client->store<counter>(id, counter{7});
    holder<counter> h{f, id}; // queues the actor at an owner
    h.granted();
    auto fut = erase_then_store_and_acquire(f.sys, f.store, id);
    wait_for_waiters(f, 1);
    h.release();
    CHECK(await(f, fut, "the actor's requests")
          == "released;erased;stored;acquired 9;");
    CHECK(f.client->snapshot<counter>(id).value == 9);
    CHECK(f.client->erase<counter>(id));
  }
  // The owners of the erased contexts all retire: none stays behind.
  poll_stats(
    f, [](const storage_stats& s) { return s.owners == 0; },
    "every owner of an erased context gone");
  CHECK(f.client->stats().sessions == 0);
}

SCENARIO("an owner kept because a request was still on its way retires once "
         "its answer arrives",
         "[async][retire]") {
  // The actor erases the context and then blocks before it takes the answer:
  // its request still counts as on its way, so the registry keeps the owner
  // when it asks to retire. The answer taken, the owner retires.
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  holder<counter> h{f, id};
  h.granted();
  std::promise<void> go_on;
  auto go_on_fut = go_on.get_future().share();
  std::promise<std::string> result;
  auto fut = result.get_future();
  auto kept_before = detail::owners_kept(f.store);
  auto st = f.store;
  f.sys.spawn<caf::detached>([&result, go_on_fut, st,
                              id](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto code = [](caf::error& e) { return to_string(to_errc(e)); };
    // A bounded wait queues at the owner, which times it (an unbounded one
    // would wait in the context's cell, without an owner).
    ac->acquire<counter>(id, std::chrono::minutes{5}).then(
      [=, &result](async_session<counter> s) {
        s.release().then([](uint64_t) {}, [](caf::error&) {});
        ac->erase<counter>(id).then(
          [=, &result](bool existed) {
            result.set_value(existed ? "erased" : "not there");
            self->quit();
          },
          [=, &result](caf::error& e) { result.set_value("erase " + code(e)); });
        go_on_fut.wait(); // the answers wait in our mailbox
      },
      [=, &result](caf::error& e) {
        result.set_value("acquire " + code(e));
      });
    return caf::behavior{[ac](int) {}};
  });
  wait_for_waiters(f, 1);
  h.release();
  auto deadline = std::chrono::steady_clock::now() + waiting::patience;
  while (detail::owners_kept(f.store) == kept_before
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::yield();
  REQUIRE(detail::owners_kept(f.store) > kept_before);
  CHECK(f.client->stats().owners == 1);
  go_on.set_value();
  CHECK(await(f, fut, "the actor's erase") == "erased");
  poll_stats(
    f, [](const storage_stats& s) { return s.owners == 0; },
    "the kept owner retired");
}

SCENARIO("an actor's request at the registry stays ahead of its own later "
         "requests when the context appears meanwhile",
         "[async][direct][fifo]") {
  // The actor's acquire of an unknown key goes to the registry; a thread
  // creates the context before the actor's store. The store must not take
  // the new context directly, ahead of the acquire still at the registry:
  // the acquire finds nothing or the thread's value, never the actor's own
  // later store. (Without the rule, 42 of 300 rounds went wrong.)
  fixture f;
  int found_nothing = 0;
  int found_thread_value = 0;
  for (int round = 0; round < 100; ++round) {
    auto id = new_id();
    std::atomic<int> phase{0};
    std::promise<std::string> result;
    auto fut = result.get_future();
    auto st = f.store;
    f.sys.spawn<caf::detached>([&result, &phase, st,
                                id](caf::event_based_actor* self) {
      auto ac = std::make_shared<async_client>(self, st);
      auto note = answer_log(2, [&result, self](std::string text) {
        result.set_value(std::move(text));
        self->quit();
      });
      ac->acquire<counter>(id, std::chrono::milliseconds{0})
        .then(
          [note](async_session<counter> s) {
            note("acquired " + std::to_string(s->value)); // dropped: aborted
          },
          [=](caf::error& e) { note("acquire " + code_name(e)); });
      phase = 1; // the thread creates the context now
      while (phase.load() != 2) {
        // the thread's store returns at once
      }
      ac->store<counter>(id, counter{9})
        .then([note](uint64_t) { note("stored"); },
              [=](caf::error& e) { note("store " + code_name(e)); });
      return caf::behavior{[ac](int) {}};
    });
    while (phase.load() != 1) {
      // the actor sent its acquire
    }
    f.client->store<counter>(id, counter{7});
    phase = 2;
    auto log = await(f, fut, "the actor's acquire and store");
    if (log == "acquire no_such_context;stored;")
      ++found_nothing;
    else if (log == "acquired 7;stored;")
      ++found_thread_value;
    else
      FAIL_CHECK("round " << round << ": " << log);
    CHECK(f.client->snapshot<counter>(id).value == 9);
  }
  CHECK(found_nothing + found_thread_value == 100);
}
