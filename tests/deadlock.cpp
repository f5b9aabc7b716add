#include "async_fixture.hpp"
#include "fixture.hpp"
#include "waiting.hpp"

#include <boost/uuid/uuid_io.hpp>

#include <future>
#include <random>
#include <thread>

// Deadlock detection (errc::deadlock): an acquire that would wait for a
// context whose holder waits, directly or through a chain, for a context the
// requester holds fails at once, naming the cycle; every session stays open.
// Threads are identified on the local fast path (their waits are in the
// context's queue): those specs run with it on in both ctest runs.

using namespace ctxstore;
using namespace waiting;
using async_fixture::spawn_counter_holder;

namespace {

ctxstore::storage fast_path_storage(caf::actor_system& sys) {
  storage_options opts;
  opts.local_fast_path = true;
  return spawn_storage(sys, opts);
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

} // namespace

SCENARIO("two threads that would wait for each other", "[deadlock]") {
  fixture f{{}, fast_path_storage};
  auto& c = *f.client;
  auto a = new_id();
  auto b = new_id();
  c.store<counter>(a, counter{0});
  c.store<counter>(b, counter{0});
  GIVEN("this thread holds a; another holds b and waits for a") {
    auto sa = c.acquire<counter>(a);
    std::promise<void> holds_b;
    auto other_holds_b = holds_b.get_future();
    blocking_client other_client = c;
    task<int64_t> other{f, [&holds_b, other_client, a, b]() mutable {
                          auto sb = other_client.acquire<counter>(b);
                          holds_b.set_value();
                          auto sa2 = other_client.acquire<counter>(a);
                          sa2->value += 1;
                          sb->value += 1;
                          sa2.release();
                          sb.release();
                          return int64_t{1};
                        }};
    await(f, other_holds_b, "the other thread's acquire of b");
    wait_for_waiters(f, 1);
    WHEN("this thread acquires b") {
      auto e = error_of([&] { c.acquire<counter>(b); });
      THEN("it fails at once with deadlock, naming the cycle") {
        CHECK(e.code() == errc::deadlock);
        std::string what = e.what();
        CHECK(what.find(text(a)) != std::string::npos);
        CHECK(what.find(text(b)) != std::string::npos);
        CHECK(what.find("thread") != std::string::npos);
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
  auto a = new_id();
  auto b = new_id();
  f.client->store<counter>(a, counter{0});
  f.client->store<counter>(b, counter{0});
  actor_reaper reaper;
  auto x_done = std::make_shared<std::promise<std::string>>();
  auto y_done = std::make_shared<std::promise<std::string>>();
  auto x_result = x_done->get_future();
  auto y_result = y_done->get_future();
  caf::actor x;
  caf::actor y;
  // x holds a; told so, it waits for b, then releases both.
  auto x_granted = spawn_counter_holder(
    f, reaper, a, 1,
    [x_done, b](int, caf::event_based_actor*, async_fixture::client_ptr ac,
                async_session<counter>& s) {
      auto held = s;
      ac->acquire<counter>(b).then(
        [x_done, held](async_session<counter> sb) mutable {
          sb->value += 1;
          ignore(sb.release());
          ignore(held.release());
          x_done->set_value("granted");
        },
        [x_done](caf::error& e) { x_done->set_value(describe(e)); });
    },
    x);
  // y holds b; told so, it tries a, then releases b.
  auto y_granted = spawn_counter_holder(
    f, reaper, b, 2,
    [y_done, a](int, caf::event_based_actor*, async_fixture::client_ptr ac,
                async_session<counter>& s) {
      auto held = s;
      ac->acquire<counter>(a).then(
        [y_done, held](async_session<counter> sa) mutable {
          ignore(sa.release());
          ignore(held.release());
          y_done->set_value("granted");
        },
        [y_done, held](caf::error& e) mutable {
          y_done->set_value(to_string(to_errc(e)) + ": " + describe(e));
          ignore(held.release());
        });
    },
    y);
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
  fixture f{{}, fast_path_storage};
  auto& c = *f.client;
  auto a = new_id();
  auto b = new_id();
  c.store<counter>(a, counter{0});
  c.store<counter>(b, counter{0});
  actor_reaper reaper;
  auto x_done = std::make_shared<std::promise<std::string>>();
  auto x_result = x_done->get_future();
  caf::actor x;
  GIVEN("this thread holds a; an actor holds b and waits for a") {
    auto sa = c.acquire<counter>(a);
    auto x_granted = spawn_counter_holder(
      f, reaper, b, 1,
      [x_done, a](int, caf::event_based_actor*, async_fixture::client_ptr ac,
                  async_session<counter>& s) {
        auto held = s;
        ac->acquire<counter>(a).then(
          [x_done, held](async_session<counter> sa2) mutable {
            sa2->value += 1;
            ignore(sa2.release());
            ignore(held.release());
            x_done->set_value("granted");
          },
          [x_done](caf::error& e) { x_done->set_value(describe(e)); });
      },
      x);
    await(f, x_granted, "the actor's acquire of b");
    caf::anon_send(x, 1);
    wait_for_waiters(f, 1);
    WHEN("this thread acquires b") {
      auto e = error_of([&] { c.acquire<counter>(b); });
      THEN("it fails with deadlock; its session goes on") {
        CHECK(e.code() == errc::deadlock);
        std::string what = e.what();
        CHECK(what.find("actor") != std::string::npos);
        CHECK(what.find("thread") != std::string::npos);
        CHECK(static_cast<bool>(sa));
        sa->value = 5;
        sa.release();
        CHECK(await(f, x_result, "the actor's acquire of a") == "granted");
        CHECK(c.snapshot<counter>(a).value == 6);
      }
    }
  }
}

SCENARIO("a cycle of three holders", "[deadlock]") {
  fixture f{{}, fast_path_storage};
  auto& c = *f.client;
  auto a = new_id();
  auto b = new_id();
  auto d = new_id();
  for (auto& id : {a, b, d})
    c.store<counter>(id, counter{0});
  // `first` is held, then (once told) `second` is acquired; both released.
  auto chain = [&f, &c](context_id first, context_id second,
                        std::promise<void>& holds, std::future<void> go) {
    blocking_client client = c;
    return task<int64_t>{f, [&holds, client, first, second,
                             go = std::move(go)]() mutable {
                           auto s1 = client.acquire<counter>(first);
                           holds.set_value();
                           go.wait();
                           auto s2 = client.acquire<counter>(second);
                           s2->value += 1;
                           s2.release();
                           s1.release();
                           return int64_t{1};
                         }};
  };
  GIVEN("this thread holds a, another b waiting for d, a third d waiting "
        "for a") {
    auto sa = c.acquire<counter>(a);
    std::promise<void> holds_b, holds_d, go_b, go_d;
    auto t_b = chain(b, d, holds_b, go_b.get_future());
    auto t_d = chain(d, a, holds_d, go_d.get_future());
    auto fb = holds_b.get_future();
    auto fd = holds_d.get_future();
    await(f, fb, "the acquire of b");
    await(f, fd, "the acquire of d");
    go_b.set_value();
    wait_for_waiters(f, 1);
    go_d.set_value();
    wait_for_waiters(f, 2);
    WHEN("this thread acquires b") {
      auto e = error_of([&] { c.acquire<counter>(b); });
      THEN("the error names the whole cycle; releasing a unwinds it") {
        CHECK(e.code() == errc::deadlock);
        std::string what = e.what();
        for (auto& id : {a, b, d})
          CHECK(what.find(text(id)) != std::string::npos);
        sa.release();
        CHECK(t_d.get("the holder of d") == 1);
        CHECK(t_b.get("the holder of b") == 1);
        CHECK(c.snapshot<counter>(a).value == 1);
        CHECK(c.snapshot<counter>(d).value == 1);
      }
    }
  }
}

SCENARIO("nested acquires in a fixed order never report a deadlock",
         "[deadlock]") {
  fixture f{{}, fast_path_storage};
  auto& c = *f.client;
  constexpr int contexts = 5;
  constexpr int threads = 4;
  constexpr int rounds = 150;
  std::vector<context_id> ids;
  for (int i = 0; i < contexts; ++i) {
    ids.push_back(new_id());
    c.store<counter>(ids.back(), counter{0});
  }
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
