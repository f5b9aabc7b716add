// Specifications of the owner's queue (docs/design.md §2, §3): while a session is
// open, snapshots are answered at once from the last commit; acquire, store
// and erase of other clients wait and then run in arrival order; different
// keys never block each other.
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

namespace {

/// Spawns an actor that acquires `id` through an async_client, runs `fn` on
/// the working copy, releases, and quits; the future holds the version of
/// the release.
template <class T>
std::future<uint64_t> spawn_updater(fixture& f, actor_reaper& reaper,
                                    const context_id& id,
                                    std::function<void(T&)> fn,
                                    std::chrono::milliseconds wait = -1ms) {
  auto done = std::make_shared<std::promise<uint64_t>>();
  auto fut = done->get_future();
  auto st = f.store;
  reaper.actors.push_back(
    f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      async_client ac{self, st};
      auto fail = [=](caf::error& err) {
        done->set_exception(std::make_exception_ptr(
          ctxstore::error{to_errc(err), describe(err)}));
        self->quit();
      };
      ac.acquire<T>(id, wait).then(
        [=](async_session<T> s) mutable {
          fn(*s);
          s.release().then(
            [=](uint64_t version) {
              done->set_value(version);
              self->quit();
            },
            fail);
        },
        fail);
      return {[](int) {}};
    }));
  return fut;
}

/// Asks for a snapshot from inside an actor.
template <class T>
std::future<versioned<T>> actor_snapshot(fixture& f, actor_reaper& reaper,
                                         const context_id& id) {
  auto done = std::make_shared<std::promise<versioned<T>>>();
  auto fut = done->get_future();
  auto st = f.store;
  reaper.actors.push_back(
    f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      async_client ac{self, st};
      ac.snapshot_versioned<T>(id).then(
        [=](versioned<T> v) {
          done->set_value(std::move(v));
          self->quit();
        },
        [=](caf::error& err) {
          done->set_exception(std::make_exception_ptr(
            ctxstore::error{to_errc(err), describe(err)}));
          self->quit();
        });
      return {[](int) {}};
    }));
  return fut;
}

} // namespace

// -- snapshots while a session is open ---------------------------------------------

SCENARIO("snapshots answer at once from the last commit while a session is "
         "open and requests are queued",
         "[queue][snapshot]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {{"apple", 1}}, {}, 1}); // version 1
  GIVEN("a thread holding the context with uncommitted changes, and a store "
        "and an acquire queued behind it") {
    std::optional<task<void>> queued_store;
    std::optional<task<uint64_t>> queued_acquire;
    holder<cart> h{f, id};
    REQUIRE(h.granted().version == 1);
    h.change([](cart& c) {
      c.owner = "holder-draft";
      c.total = 99;
      c.items.push_back(item{"pear", 2});
    });
    queued_store.emplace(f, [&] {
      f.client->store<cart>(id, cart{"queued-store", {}, {}, 5});
    });
    wait_for_waiters(f, 1);
    queued_acquire.emplace(f, [&] {
      auto s = f.client->acquire<cart>(id);
      return s.version();
    });
    wait_for_waiters(f, 2);

    WHEN("another thread asks for a snapshot") {
      auto v = within(
        f, [&] { return f.client->snapshot_versioned<cart>(id); },
        "a snapshot while the context is held");
      THEN("it gets the last committed value and its version, without the "
           "holder's draft") {
        CHECK(v.version == 1);
        CHECK(v.value.owner == "ann");
        CHECK(v.value.total == 1);
        REQUIRE(v.value.items.size() == 1);
        CHECK(v.value.items[0].sku == "apple");
      }
      THEN("the session and the queued requests are still in place") {
        auto s = f.client->stats();
        CHECK(s.sessions == 1);
        CHECK(s.waiters == 2);
        CHECK_FALSE(queued_store->done());
        CHECK_FALSE(queued_acquire->done());
      }
    }

    WHEN("an actor asks for a snapshot") {
      auto fut = actor_snapshot<cart>(f, reaper, id);
      auto v = await(f, fut, "an actor's snapshot while the context is held");
      THEN("it gets the last committed value and its version too") {
        CHECK(v.version == 1);
        CHECK(v.value.owner == "ann");
        CHECK(v.value.total == 1);
      }
    }

    WHEN("the holder commits and then keeps changing its working copy") {
      h.commit();
      h.change([](cart& c) {
        c.owner = "holder-after-commit";
        c.total = 100;
      });
      auto v = within(
        f, [&] { return f.client->snapshot_versioned<cart>(id); },
        "a snapshot after the holder's commit");
      THEN("the snapshot shows the committed change with the next version, "
           "and not the later draft") {
        CHECK(v.version == 2);
        CHECK(v.value.owner == "holder-draft");
        CHECK(v.value.total == 99);
        CHECK(v.value.items.size() == 2);
      }
      THEN("the queued requests still wait: commit keeps the session") {
        auto s = f.client->stats();
        CHECK(s.sessions == 1);
        CHECK(s.waiters == 2);
      }
    }

    WHEN("the holder finally releases") {
      h.leave_scope();
      queued_store->get("the queued store");
      auto acquired_version = queued_acquire->get("the queued acquire");
      THEN("the queued requests ran after it, in order") {
        // release = version 2, queued store = 3; the acquire saw 3 and
        // released it unchanged as version 4.
        CHECK(acquired_version == 3);
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 4);
        CHECK(v.value.owner == "queued-store");
        auto s = f.client->stats();
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
      }
    }
  }

  GIVEN("an actor holding the context with an uncommitted change") {
    auto granted = std::make_shared<std::promise<uint64_t>>();
    auto granted_fut = granted->get_future();
    auto st = f.store;
    auto holder_actor
      = f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
          auto kept = std::make_shared<async_session<cart>>();
          async_client ac{self, st};
          ac.acquire<cart>(id).then(
            [=](async_session<cart> s) {
              s->owner = "actor-draft";
              s->total = 42;
              *kept = s;
              granted->set_value(s.version());
            },
            [=](caf::error& err) {
              granted->set_exception(std::make_exception_ptr(
                ctxstore::error{to_errc(err), describe(err)}));
            });
          // `kept` holds the session open while the actor lives.
          return {[kept](int) {}};
        });
    reaper.actors.push_back(holder_actor);
    REQUIRE(await(f, granted_fut, "the actor's acquire") == 1);
    std::optional<task<void>> queued_store;
    queued_store.emplace(f, [&] {
      f.client->store<cart>(id, cart{"queued-store", {}, {}, 5});
    });
    wait_for_waiters(f, 1);
    WHEN("a thread asks for a snapshot") {
      auto v = within(
        f, [&] { return f.client->snapshot_versioned<cart>(id); },
        "a snapshot while an actor holds the context");
      THEN("it gets the last committed value at once") {
        CHECK(v.version == 1);
        CHECK(v.value.owner == "ann");
        CHECK(v.value.total == 1);
        CHECK(f.client->stats().waiters == 1);
      }
    }
    // Let the queued store finish before the test ends.
    caf::anon_send_exit(holder_actor, caf::exit_reason::kill);
    queued_store->get("the store queued behind the actor");
  }
}

// -- arrival order -------------------------------------------------------------------

SCENARIO("queued acquirers are granted in arrival order", "[queue][fifo]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 0});
  constexpr int n = 6;

  GIVEN("a thread holding the context and six threads queued one after "
        "another") {
    std::mutex mtx;
    std::vector<int> order; // guarded by mtx
    std::vector<task<std::size_t>> waiters;
    holder<cart> h{f, id};
    h.granted();
    for (int i = 0; i < n; ++i) {
      waiters.emplace_back(f, [&, i] {
        auto s = f.client->acquire<cart>(id);
        auto seen = s->items.size();
        s->items.push_back(item{"w" + std::to_string(i), i});
        {
          std::lock_guard<std::mutex> guard{mtx};
          order.push_back(i);
        }
        s.release();
        return seen;
      });
      wait_for_waiters(f, static_cast<uint64_t>(i) + 1);
    }
    CHECK(f.client->stats().waiters == n);
    WHEN("the holder releases") {
      h.release();
      std::vector<std::size_t> seen;
      for (int i = 0; i < n; ++i)
        seen.push_back(waiters[i].get("queued acquirer " + std::to_string(i)));
      THEN("they were granted one at a time, in the order they arrived") {
        {
          std::lock_guard<std::mutex> guard{mtx};
          CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5});
        }
        for (int i = 0; i < n; ++i)
          CHECK(seen[i] == static_cast<std::size_t>(i));
        auto v = f.client->snapshot_versioned<cart>(id);
        REQUIRE(v.value.items.size() == static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i)
          CHECK(v.value.items[i].qty == i);
        // store + holder release + n releases
        CHECK(v.version == 2 + n);
        auto s = f.client->stats();
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
      }
    }
  }

  GIVEN("a thread holding the context and six actors queued one after "
        "another") {
    std::vector<std::future<uint64_t>> waiters;
    holder<cart> h{f, id};
    h.granted();
    for (int i = 0; i < n; ++i) {
      waiters.push_back(spawn_updater<cart>(f, reaper, id, [i](cart& c) {
        c.items.push_back(item{"a" + std::to_string(i), i});
      }));
      wait_for_waiters(f, static_cast<uint64_t>(i) + 1);
    }
    WHEN("the holder releases") {
      h.release();
      std::vector<uint64_t> versions;
      for (int i = 0; i < n; ++i)
        versions.push_back(
          await(f, waiters[i], "queued actor " + std::to_string(i)));
      THEN("the actors were granted in the order they arrived") {
        auto v = f.client->snapshot_versioned<cart>(id);
        REQUIRE(v.value.items.size() == static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) {
          CHECK(v.value.items[i].qty == i);
          // The holder's release is version 2; actor i released 3 + i.
          CHECK(versions[i] == static_cast<uint64_t>(3 + i));
        }
        CHECK(f.client->stats().sessions == 0);
      }
    }
  }

  GIVEN("a thread holding the context, then an acquire, a store and another "
        "acquire queued in that order") {
    std::optional<task<cart>> first;
    std::optional<task<void>> store;
    std::optional<task<cart>> second;
    holder<cart> h{f, id};
    h.granted();
    h.change([](cart& c) { c.owner = "holder"; });
    first.emplace(f, [&] {
      auto s = f.client->acquire<cart>(id);
      cart seen = *s;
      s->items.push_back(item{"first", 1});
      s.release();
      return seen;
    });
    wait_for_waiters(f, 1);
    store.emplace(f, [&] {
      f.client->store<cart>(id, cart{"stored", {{"stored", 2}}, {}, 0});
    });
    wait_for_waiters(f, 2);
    second.emplace(f, [&] {
      auto s = f.client->acquire<cart>(id);
      cart seen = *s;
      s->items.push_back(item{"second", 3});
      s.release();
      return seen;
    });
    wait_for_waiters(f, 3);
    WHEN("the holder releases") {
      h.release();
      auto first_saw = first->get("the first queued acquire");
      store->get("the queued store");
      auto second_saw = second->get("the second queued acquire");
      THEN("each ran after the one before it") {
        CHECK(first_saw.owner == "holder");
        CHECK(first_saw.items.empty());
        CHECK(second_saw.owner == "stored");
        REQUIRE(second_saw.items.size() == 1);
        CHECK(second_saw.items[0].sku == "stored");
        auto v = f.client->snapshot_versioned<cart>(id);
        CHECK(v.value.owner == "stored");
        REQUIRE(v.value.items.size() == 2);
        CHECK(v.value.items[0].sku == "stored");
        CHECK(v.value.items[1].sku == "second");
        // store 1, holder release 2, first 3, store 4, second 5
        CHECK(v.version == 5);
      }
    }
  }
}

SCENARIO("threads and actors queued on one context are granted in arrival "
         "order across both kinds",
         "[queue][fifo]") {
  // Threads of the storage's process may wait in the context's own queue and
  // actors in the owner's: one order spans both.
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 0});
  GIVEN("a thread holding the context, then a thread, an actor, a thread and "
        "an actor queued in that order") {
    holder<cart> h{f, id};
    h.granted();
    auto add = [](const std::string& who, int qty) {
      return [who, qty](cart& c) { c.items.push_back(item{who, qty}); };
    };
    std::vector<task<void>> threads;
    std::vector<std::future<uint64_t>> actors;
    auto queue_thread = [&](const std::string& who, int qty) {
      threads.emplace_back(f, [&f, id, fn = add(who, qty)] {
        auto s = f.client->acquire<cart>(id);
        fn(*s);
        s.release();
      });
    };
    queue_thread("t0", 0);
    wait_for_waiters(f, 1);
    actors.push_back(spawn_updater<cart>(f, reaper, id, add("a1", 1)));
    wait_for_waiters(f, 2);
    queue_thread("t2", 2);
    wait_for_waiters(f, 3);
    actors.push_back(spawn_updater<cart>(f, reaper, id, add("a3", 3)));
    wait_for_waiters(f, 4);
    WHEN("the holder releases") {
      h.release();
      for (auto& t : threads)
        t.get("a queued thread");
      for (auto& a : actors)
        await(f, a, "a queued actor");
      THEN("each was granted after the one that arrived before it") {
        auto v = f.client->snapshot_versioned<cart>(id);
        REQUIRE(v.value.items.size() == 4);
        for (int i = 0; i < 4; ++i)
          CHECK(v.value.items[static_cast<size_t>(i)].qty == i);
        CHECK(v.version == 6); // store, holder, four releases
        auto s = f.client->stats();
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
      }
    }
  }
}

SCENARIO("a holder that erases its context ends the queued acquires with "
         "no_such_context",
         "[queue][erase]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 0});
  GIVEN("a thread holding the context, two threads and an actor queued") {
    holder<cart> h{f, id};
    h.granted();
    auto acquire = [&f, id] {
      return code_of([&] { f.client->acquire<cart>(id); });
    };
    task<std::optional<errc>> first{f, acquire};
    wait_for_waiters(f, 1);
    auto actor = spawn_updater<cart>(f, reaper, id, [](cart&) {});
    wait_for_waiters(f, 2);
    task<std::optional<errc>> second{f, acquire};
    wait_for_waiters(f, 3);
    WHEN("the holder erases the context") {
      h.with([&](session<cart>&) { CHECK(f.client->erase<cart>(id)); },
             "the holder's erase");
      THEN("every queued acquire fails with no_such_context") {
        CHECK(first.get("the first queued thread") == errc::no_such_context);
        CHECK(second.get("the second queued thread")
              == errc::no_such_context);
        CHECK(error_code_of([&] { await(f, actor, "the queued actor"); })
              == errc::no_such_context);
        auto s = f.client->stats();
        CHECK(s.contexts == 0);
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
      }
    }
  }
}

// -- store and erase wait like acquire ------------------------------------------------

SCENARIO("stores and erases of other clients wait behind a session and run in "
         "arrival order",
         "[queue][store][erase]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1});

  GIVEN("a thread holding the context with an uncommitted change") {
    std::optional<task<void>> first_store;
    std::optional<task<bool>> erase;
    std::optional<task<void>> second_store;
    holder<cart> h{f, id};
    h.granted();
    h.change([](cart& c) { c.owner = "holder"; });

    WHEN("another thread stores and then a third one erases") {
      first_store.emplace(f, [&] {
        f.client->store<cart>(id, cart{"stored", {}, {}, 2});
      });
      wait_for_waiters(f, 1);
      erase.emplace(f, [&] { return f.client->erase<cart>(id); });
      wait_for_waiters(f, 2);
      THEN("neither has run while the session is open") {
        auto v = within(
          f, [&] { return f.client->snapshot_versioned<cart>(id); },
          "a snapshot while a store and an erase wait");
        CHECK(v.version == 1);
        CHECK(v.value.owner == "ann");
        CHECK_FALSE(first_store->done());
        CHECK_FALSE(erase->done());
      }
      AND_WHEN("the holder releases") {
        h.release();
        first_store->get("the queued store");
        auto existed = erase->get("the queued erase");
        THEN("the store ran and then the erase removed the context") {
          CHECK(existed);
          CHECK(code_of([&] { f.client->snapshot<cart>(id); })
                == errc::no_such_context);
          auto s = f.client->stats();
          CHECK(s.contexts == 0);
          CHECK(s.sessions == 0);
          CHECK(s.waiters == 0);
        }
      }
    }

    WHEN("another thread erases and then a third one stores") {
      erase.emplace(f, [&] { return f.client->erase<cart>(id); });
      wait_for_waiters(f, 1);
      second_store.emplace(f, [&] {
        f.client->store<cart>(id, cart{"stored-after-erase", {}, {}, 3});
      });
      wait_for_waiters(f, 2);
      AND_WHEN("the holder releases") {
        h.release();
        auto existed = erase->get("the queued erase");
        second_store->get("the queued store");
        THEN("the erase ran first and the store created the context anew") {
          CHECK(existed);
          auto c = f.client->snapshot<cart>(id);
          CHECK(c.owner == "stored-after-erase");
          CHECK(c.total == 3);
          auto s = f.client->stats();
          CHECK(s.contexts == 1);
          CHECK(s.sessions == 0);
          CHECK(s.waiters == 0);
        }
      }
    }

    WHEN("another thread stores while the holder commits") {
      first_store.emplace(f, [&] {
        f.client->store<cart>(id, cart{"stored", {}, {}, 2});
      });
      wait_for_waiters(f, 1);
      h.commit(); // version 2: "holder"
      THEN("the store still waits: only the end of the session lets it run") {
        CHECK(f.client->stats().waiters == 1);
        CHECK_FALSE(first_store->done());
        CHECK(f.client->snapshot<cart>(id).owner == "holder");
      }
      AND_WHEN("the holder releases") {
        h.release(); // version 3
        first_store->get("the queued store");
        THEN("the store replaced the holder's value afterwards") {
          auto v = f.client->snapshot_versioned<cart>(id);
          CHECK(v.value.owner == "stored");
          CHECK(v.version == 4);
        }
      }
    }
  }
}

// -- independence of keys -----------------------------------------------------------------

SCENARIO("a session on one key never delays requests on other keys",
         "[queue][keys]") {
  fixture f;
  actor_reaper reaper;
  auto a = new_id();
  auto b = new_id();
  f.client->store<cart>(a, cart{"a", {}, {}, 1});
  f.client->store<cart>(b, cart{"b", {}, {}, 1});

  GIVEN("a thread holding context A, with an acquire queued behind it") {
    std::optional<task<void>> queued;
    holder<cart> h{f, a};
    h.granted();
    h.change([](cart& c) { c.owner = "a-draft"; });
    queued.emplace(f, [&] { f.client->acquire<cart>(a); });
    wait_for_waiters(f, 1);

    WHEN("another thread acquires, stores and snapshots context B") {
      auto v = within(
        f,
        [&] {
          {
            auto s = f.client->acquire<cart>(b, 0ms); // try once
            s->owner = "b-session";
            s.release(); // version 2
          }
          f.client->store<cart>(b, cart{"b-stored", {}, {}, 7}); // version 3
          return f.client->snapshot_versioned<cart>(b);
        },
        "acquire, store and snapshot of B while A is held");
      THEN("all of them proceed at once") {
        CHECK(v.version == 3);
        CHECK(v.value.owner == "b-stored");
        CHECK(v.value.total == 7);
      }
      THEN("A is still held with its request queued") {
        auto s = f.client->stats();
        CHECK(s.sessions == 1);
        CHECK(s.waiters == 1);
        CHECK_FALSE(queued->done());
      }
    }

    WHEN("another thread creates a new context and erases B") {
      auto c = new_id();
      auto erased = within(
        f,
        [&] {
          f.client->store<cart>(c, cart{"c", {}, {}, 1});
          return f.client->erase<cart>(b);
        },
        "store of a new key and erase of B while A is held");
      THEN("both proceed at once") {
        CHECK(erased);
        CHECK(f.client->snapshot<cart>(c).owner == "c");
        CHECK(code_of([&] { f.client->snapshot<cart>(b); })
              == errc::no_such_context);
      }
    }

    WHEN("another thread uses the same id with another context type") {
      auto seen = within(
        f,
        [&] {
          f.client->store<counter>(a, counter{5});
          auto s = f.client->acquire<counter>(a, 0ms); // try once
          s->value += 1;
          s.release();
          return f.client->snapshot<counter>(a).value;
        },
        "a counter with A's id while the cart A is held");
      THEN("it is another context and proceeds at once") {
        CHECK(seen == 6);
        CHECK(f.client->snapshot<cart>(a).owner == "a");
      }
    }

    WHEN("an actor acquires context B") {
      auto fut = spawn_updater<cart>(
        f, reaper, b, [](cart& c) { c.owner = "b-actor"; }, 0ms);
      auto version = await(f, fut, "an actor's acquire of B while A is held");
      THEN("it is granted at once and its release is published") {
        CHECK(version == 2);
        CHECK(f.client->snapshot<cart>(b).owner == "b-actor");
        CHECK(f.client->stats().waiters == 1);
      }
    }

    h.leave_scope();
    queued->get("the acquire queued on A");
  }
}
