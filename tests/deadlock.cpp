#include "async_fixture.hpp"
#include "fixture.hpp"
#include "waiting.hpp"

#include <boost/uuid/uuid_io.hpp>

#include <chrono>
#include <future>
#include <random>
#include <thread>

// Deadlock detection (errc::deadlock): an acquire that would wait for a
// context whose holder waits, directly or through a chain, for a context the
// requester holds fails at once, naming the cycle; every session stays open.
// Threads are identified on the local fast path (their waits are in the
// context's queue) and off it (their acquires go through the owner, sent by
// a requester actor that stands in for the thread): the specs with threads
// run both ways in each ctest run (GENERATE).

using namespace ctxstore;
using namespace waiting;
using async_fixture::spawn_counter_holder;

namespace {

/// Makes the storage of a fixture, with the local fast path on or off.
auto storage_with_fast_path(bool on) {
  return [on](caf::actor_system& sys) {
    storage_options opts;
    opts.local_fast_path = on;
    return spawn_storage(sys, opts);
  };
}

/// `n` new counters, stored with the value 0.
std::vector<context_id> stored_counters(fixture& f, size_t n) {
  std::vector<context_id> ids;
  for (size_t i = 0; i < n; ++i) {
    ids.push_back(new_id());
    f.client->store<counter>(ids.back(), counter{0});
  }
  return ids;
}

std::string text(const context_id& id) {
  return boost::uuids::to_string(id);
}

/// The error of `fn` (which must throw a ctxstore::error).
template <class F>
ctxstore::error error_of(F&& fn) {
  try {
    fn();
  } catch (const ctxstore::error& e) {
    return e;
  }
  FAIL("expected a ctxstore::error");
  return ctxstore::error{errc{}, ""};
}

/// A release or abort whose answer nobody needs.
template <class Pending>
void ignore(Pending&& p) {
  p.then([](uint64_t) {}, [](caf::error&) {});
}

/// A thread of another blocking client that acquires `first`, says so
/// (`holds`), waits for `go`, acquires `second`, adds 1 to both and
/// releases both; it returns 1.
task<int64_t> nested_acquirer(fixture& f, context_id first, context_id second,
                              std::promise<void>& holds, std::future<void> go) {
  blocking_client client = *f.client;
  return task<int64_t>{f, [&holds, client, first, second,
                           go = std::move(go)]() mutable {
                         auto s1 = client.acquire<counter>(first);
                         holds.set_value();
                         go.wait();
                         auto s2 = client.acquire<counter>(second);
                         s1->value += 1;
                         s2->value += 1;
                         s2.release();
                         s1.release();
                         return int64_t{1};
                       }};
}

/// Acquires `id` as a thread that would otherwise wait for ever: a missed
/// deadlock fails with timeout after 5 s, not at once (hangs are no result).
void acquire_bounded(blocking_client& c, const context_id& id) {
  auto start = std::chrono::steady_clock::now();
  try {
    c.acquire<counter>(id, std::chrono::seconds{5});
  } catch (...) {
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds{1});
    throw;
  }
}

/// A ready `go` for nested_acquirer.
std::future<void> at_once() {
  std::promise<void> go;
  go.set_value();
  return go.get_future();
}

/// Spawns an actor that holds `first` (its working copy set to `change`,
/// not committed) and, sent an int, acquires `second`. Granted: it adds 1 to
/// `second`, releases both and reports "granted"; refused: it reports
/// "<code>: <text>" and releases `first`.
std::future<async_fixture::grant_seen>
spawn_nested_holder(fixture& f, actor_reaper& reaper, context_id first,
                    context_id second, int64_t change,
                    std::shared_ptr<std::promise<std::string>> done,
                    caf::actor& out) {
  return spawn_counter_holder(
    f, reaper, first, change,
    [done, second](int, caf::event_based_actor*, async_fixture::client_ptr ac,
                   async_session<counter>& s) {
      auto held = s;
      ac->acquire<counter>(second).then(
        [done, held](async_session<counter> s2) mutable {
          s2->value += 1;
          ignore(s2.release());
          ignore(held.release());
          done->set_value("granted");
        },
        [done, held](caf::error& e) mutable {
          done->set_value(to_string(to_errc(e)) + ": " + describe(e));
          ignore(held.release());
        });
    },
    out);
}

} // namespace

SCENARIO("two threads that would wait for each other", "[deadlock]") {
  auto fast_path = GENERATE(true, false);
  INFO("local fast path " << (fast_path ? "on" : "off"));
  fixture f{{}, storage_with_fast_path(fast_path)};
  auto& c = *f.client;
  auto ids = stored_counters(f, 2);
  auto a = ids[0];
  auto b = ids[1];
  GIVEN("this thread holds a; another holds b and waits for a") {
    auto sa = c.acquire<counter>(a);
    std::promise<void> holds_b;
    auto other_holds_b = holds_b.get_future();
    auto other = nested_acquirer(f, b, a, holds_b, at_once());
    await(f, other_holds_b, "the other thread's acquire of b");
    wait_for_waiters(f, 1);
    WHEN("this thread acquires b") {
      auto e = error_of([&] { acquire_bounded(c, b); });
      THEN("it fails at once with deadlock, naming the cycle") {
        CHECK(e.code() == errc::deadlock);
        std::string what = e.what();
        CHECK(what.find(text(a)) != std::string::npos);
        CHECK(what.find(text(b)) != std::string::npos);
        CHECK(what.find("thread") != std::string::npos);
        CHECK(what.find("actor") == std::string::npos); // threads, not agents
        AND_THEN("the sessions stay: released, the other thread goes on") {
          CHECK(static_cast<bool>(sa));
          sa->value = 10;
          sa.release();
          CHECK(other.get("the other thread") == 1);
          CHECK(c.snapshot<counter>(a).value == 11);
          CHECK(c.snapshot<counter>(b).value == 1);
        }
      }
    }
  }
}

SCENARIO("two actors that would wait for each other", "[deadlock]") {
  fixture f; // both paths: the owner detects actors' waits too
  auto ids = stored_counters(f, 2);
  auto a = ids[0];
  auto b = ids[1];
  actor_reaper reaper;
  auto x_done = std::make_shared<std::promise<std::string>>();
  auto y_done = std::make_shared<std::promise<std::string>>();
  auto x_result = x_done->get_future();
  auto y_result = y_done->get_future();
  caf::actor x;
  caf::actor y;
  // x holds a; told so, it waits for b. y holds b; told so, it tries a.
  auto x_granted = spawn_nested_holder(f, reaper, a, b, 1, x_done, x);
  auto y_granted = spawn_nested_holder(f, reaper, b, a, 2, y_done, y);
  await(f, x_granted, "x's acquire of a");
  await(f, y_granted, "y's acquire of b");
  caf::anon_send(x, 1);
  wait_for_waiters(f, 1);
  WHEN("y acquires a while x waits for b") {
    caf::anon_send(y, 1);
    THEN("y's acquire fails with deadlock, x gets b once y released it") {
      auto ys = await(f, y_result, "y's acquire");
      CHECK(ys.rfind("deadlock: ", 0) == 0);
      CHECK(ys.find("actor") != std::string::npos);
      CHECK(ys.find(text(a)) != std::string::npos);
      CHECK(ys.find(text(b)) != std::string::npos);
      CHECK(await(f, x_result, "x's acquire of b") == "granted");
      poll_stats(
        f, [](const storage_stats& s) { return s.sessions == 0; },
        "no session left");
      CHECK(f.client->snapshot<counter>(a).value == 1);
      CHECK(f.client->snapshot<counter>(b).value == 3);
    }
  }
}

SCENARIO("a thread and an actor that would wait for each other",
         "[deadlock]") {
  auto fast_path = GENERATE(true, false);
  INFO("local fast path " << (fast_path ? "on" : "off"));
  fixture f{{}, storage_with_fast_path(fast_path)};
  auto& c = *f.client;
  auto ids = stored_counters(f, 2);
  auto a = ids[0];
  auto b = ids[1];
  actor_reaper reaper;
  auto x_done = std::make_shared<std::promise<std::string>>();
  auto x_result = x_done->get_future();
  caf::actor x;
  GIVEN("this thread holds a; an actor holds b and waits for a") {
    auto sa = c.acquire<counter>(a);
    auto x_granted = spawn_nested_holder(f, reaper, b, a, 1, x_done, x);
    await(f, x_granted, "the actor's acquire of b");
    caf::anon_send(x, 1);
    wait_for_waiters(f, 1);
    WHEN("this thread acquires b") {
      auto e = error_of([&] { acquire_bounded(c, b); });
      THEN("it fails with deadlock; its session goes on") {
        CHECK(e.code() == errc::deadlock);
        std::string what = e.what();
        CHECK(what.find("actor") != std::string::npos);
        CHECK(what.find("thread") != std::string::npos);
        CHECK(static_cast<bool>(sa));
        sa->value = 5;
        sa.release();
        CHECK(await(f, x_result, "the actor's acquire of a") == "granted");
        poll_stats( // the actor's releases are on their way
          f, [](const storage_stats& s) { return s.sessions == 0; },
          "no session left");
        CHECK(c.snapshot<counter>(a).value == 6);
      }
    }
  }
}

SCENARIO("a cycle of three holders", "[deadlock]") {
  auto fast_path = GENERATE(true, false);
  INFO("local fast path " << (fast_path ? "on" : "off"));
  fixture f{{}, storage_with_fast_path(fast_path)};
  auto& c = *f.client;
  auto ids = stored_counters(f, 3);
  auto a = ids[0];
  auto b = ids[1];
  auto d = ids[2];
  GIVEN("this thread holds a, another b waiting for d, a third d waiting "
        "for a") {
    auto sa = c.acquire<counter>(a);
    std::promise<void> holds_b, holds_d, go_b, go_d;
    auto t_b = nested_acquirer(f, b, d, holds_b, go_b.get_future());
    auto t_d = nested_acquirer(f, d, a, holds_d, go_d.get_future());
    auto fb = holds_b.get_future();
    auto fd = holds_d.get_future();
    await(f, fb, "the acquire of b");
    await(f, fd, "the acquire of d");
    go_b.set_value();
    wait_for_waiters(f, 1);
    go_d.set_value();
    wait_for_waiters(f, 2);
    WHEN("this thread acquires b") {
      auto e = error_of([&] { acquire_bounded(c, b); });
      THEN("the error names the whole cycle; releasing a unwinds it") {
        CHECK(e.code() == errc::deadlock);
        std::string what = e.what();
        for (auto& id : {a, b, d})
          CHECK(what.find(text(id)) != std::string::npos);
        sa.release();
        CHECK(t_d.get("the holder of d") == 1);
        CHECK(t_b.get("the holder of b") == 1);
        CHECK(c.snapshot<counter>(a).value == 1);
        CHECK(c.snapshot<counter>(b).value == 1);
        CHECK(c.snapshot<counter>(d).value == 2); // by both other threads
      }
    }
  }
}

SCENARIO("nested acquires in a fixed order never report a deadlock",
         "[deadlock]") {
  auto fast_path = GENERATE(true, false);
  INFO("local fast path " << (fast_path ? "on" : "off"));
  fixture f{{}, storage_with_fast_path(fast_path)};
  auto& c = *f.client;
  constexpr int contexts = 5;
  constexpr int threads = 4;
  constexpr int rounds = 150;
  auto ids = stored_counters(f, contexts);
  std::vector<task<int64_t>> workers;
  for (int t = 0; t < threads; ++t) {
    blocking_client client = c;
    workers.emplace_back(f, [client, ids, t]() mutable {
      std::mt19937 rng{static_cast<unsigned>(t + 1)};
      int64_t increments = 0;
      for (int r = 0; r < rounds; ++r) {
        // A random subset, acquired in the ids' order (never a cycle).
        std::vector<session<counter>> held;
        for (auto& id : ids) {
          if (rng() % 2 != 0)
            continue;
          held.push_back(client.acquire<counter>(id));
          held.back()->value += 1;
          ++increments;
        }
        while (!held.empty()) {
          held.back().release();
          held.pop_back();
        }
      }
      return increments;
    });
  }
  int64_t total = 0;
  for (auto& w : workers)
    total += w.get("a worker"); // a deadlock error would propagate here
  int64_t stored = 0;
  for (auto& id : ids)
    stored += c.snapshot<counter>(id).value;
  CHECK(stored == total);
  CHECK(c.stats().waiters == 0);
}

SCENARIO("an actor whose release is on its way to the owner closes no cycle",
         "[deadlock]") {
  // Off the fast path an actor's release is a message: until the owner
  // reads it, the context still counts the actor as its holder.
  fixture f{{}, storage_with_fast_path(false)};
  constexpr int rounds = 20;
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    auto ids = stored_counters(f, 2);
    auto x = ids[0];
    auto y = ids[1];
    actor_reaper reaper;
    auto done = std::make_shared<std::promise<std::string>>();
    auto outcome = done->get_future();
    caf::actor holder;
    // The actor holds x; sent an int, it releases x and at once acquires y.
    auto granted = async_fixture::spawn_counter_holder(
      f, reaper, x, 0,
      [done, y](int, caf::event_based_actor*, async_fixture::client_ptr ac,
                async_session<counter>& s) {
        ignore(s.release());
        ac->acquire<counter>(y).then(
          [done](async_session<counter> s2) mutable {
            s2->value += 1;
            s2.release().then(
              [done](uint64_t) { done->set_value("granted"); },
              [done](caf::error& e) { done->set_value(describe(e)); });
          },
          [done](caf::error& e) {
            done->set_value(to_string(to_errc(e)) + ": " + describe(e));
          });
      },
      holder);
    await(f, granted, "the actor's grant of x");
    // A thread holds y and waits for x.
    std::promise<void> holds_y;
    auto thread_holds_y = holds_y.get_future();
    auto thread = nested_acquirer(f, y, x, holds_y, at_once());
    await(f, thread_holds_y, "the thread's acquire of y");
    wait_for_waiters(f, 1);
    caf::anon_send(holder, 1);
    // The actor's acquire of y would close "actor -> y -> thread -> x ->
    // actor" only through its own release, already sent: no deadlock.
    CHECK(await(f, outcome, "the actor's acquire of y") == "granted");
    CHECK(thread.get("the thread") == 1);
    CHECK(f.client->snapshot<counter>(y).value == 2);
  }
}
