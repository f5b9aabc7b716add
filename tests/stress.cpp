#include "fixture.hpp"

#include <atomic>
#include <future>
#include <thread>
#include <vector>

// Invariant of every scenario here: each acknowledged increment is counted
// exactly once (no lost update, no double apply). Sizes are bounded so that a
// run takes seconds, also under ThreadSanitizer.

using namespace ctxstore;

namespace {

constexpr int threads = 8;
constexpr int per_thread = 2000;

/// Runs `fn(thread_index)` on `n` threads and waits at most `limit`.
template <class F>
void run_threads(int n, F fn, std::chrono::seconds limit) {
  std::vector<std::future<void>> done;
  for (int t = 0; t < n; ++t)
    done.emplace_back(std::async(std::launch::async, fn, t));
  for (auto& d : done) {
    REQUIRE(d.wait_for(limit) == std::future_status::ready);
    d.get(); // rethrows a failure of the thread
  }
}

} // namespace

SCENARIO("8 threads x 2,000 updates of ONE context lose nothing", "[stress]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{0});
  run_threads(
    threads,
    [&](int) {
      blocking_client c{f.sys, f.store};
      for (int i = 0; i < per_thread; ++i)
        c.update<counter>(id, [](counter& x) { ++x.value; });
    },
    std::chrono::seconds{120});
  auto v = f.client->snapshot_versioned<counter>(id);
  CHECK(v.value.value == threads * per_thread);
  CHECK(v.version == 1 + threads * per_thread);
  auto st = f.client->stats();
  CHECK(st.sessions == 0);
  CHECK(st.waiters == 0);
}

SCENARIO("8 threads x 2,000 updates spread over 1,000 contexts lose nothing",
         "[stress]") {
  fixture f;
  constexpr int keys = 1000;
  std::vector<context_id> ids;
  for (int i = 0; i < keys; ++i) {
    ids.push_back(new_id());
    f.client->store<counter>(ids.back(), counter{0});
  }
  run_threads(
    threads,
    [&](int t) {
      blocking_client c{f.sys, f.store};
      for (int i = 0; i < per_thread; ++i)
        c.update<counter>(ids[(i * 7 + t * 13) % keys],
                          [](counter& x) { ++x.value; });
    },
    std::chrono::seconds{120});
  std::vector<int64_t> expected(keys, 0);
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < per_thread; ++i)
      ++expected[(i * 7 + t * 13) % keys];
  int64_t total = 0;
  int wrong = 0;
  for (int k = 0; k < keys; ++k) {
    auto value = f.client->snapshot<counter>(ids[k]).value;
    total += value;
    if (value != expected[k])
      ++wrong;
  }
  CHECK(wrong == 0);
  CHECK(total == threads * per_thread);
  CHECK(f.client->stats().contexts == keys);
}

SCENARIO("actors and threads updating one context together lose nothing",
         "[stress][async]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{0});
  constexpr int actors = 16;
  constexpr int per_actor = 250;
  std::atomic<int> finished{0};
  std::atomic<int> failures{0};
  std::promise<void> all_done;
  auto st = f.store;
  for (int a = 0; a < actors; ++a) {
    f.sys.spawn([&, st](caf::event_based_actor* self) {
      auto ac = std::make_shared<async_client>(self, st);
      auto left = std::make_shared<int>(per_actor);
      // The behavior owns the loop; the loop refers to itself weakly, so
      // nothing (and no storage handle) outlives the actor.
      auto step = std::make_shared<std::function<void()>>();
      std::weak_ptr<std::function<void()>> next = step;
      *step = [=, &finished, &failures, &all_done] {
        if ((*left)-- == 0) {
          if (++finished == actors)
            all_done.set_value();
          self->quit();
          return;
        }
        ac->update<counter>(id, [](counter& x) { ++x.value; })
          .then(
            [next](uint64_t) {
              if (auto f = next.lock())
                (*f)();
            },
            [next, &failures](caf::error&) {
              ++failures;
              if (auto f = next.lock())
                (*f)();
            });
      };
      (*step)();
      return caf::behavior{[step](int) {}};
    });
  }
  run_threads(
    2,
    [&](int) {
      blocking_client c{f.sys, f.store};
      for (int i = 0; i < per_thread / 2; ++i)
        c.update<counter>(id, [](counter& x) { ++x.value; });
    },
    std::chrono::seconds{120});
  auto fut = all_done.get_future();
  REQUIRE(fut.wait_for(std::chrono::seconds{120}) == std::future_status::ready);
  CHECK(failures == 0);
  CHECK(f.client->snapshot<counter>(id).value
        == actors * per_actor + per_thread);
}

SCENARIO("readers see only committed, increasing versions during updates",
         "[stress][snapshot]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{0});
  std::atomic<bool> stop{false};
  auto reader = std::async(std::launch::async, [&] {
    blocking_client c{f.sys, f.store};
    uint64_t last_version = 0;
    int bad = 0;
    int reads = 0;
    while (!stop) {
      auto v = c.snapshot_versioned<counter>(id);
      // Each update commits value == version - 1: anything else is torn or
      // uncommitted state.
      if (v.value.value != static_cast<int64_t>(v.version) - 1
          || v.version < last_version)
        ++bad;
      last_version = v.version;
      ++reads;
    }
    return std::make_pair(bad, reads);
  });
  run_threads(
    4,
    [&](int) {
      blocking_client c{f.sys, f.store};
      for (int i = 0; i < 500; ++i) {
        auto s = c.acquire<counter>(id);
        s->value += 1000; // uncommitted garbage first ...
        s->value -= 999;  // ... then the real increment
        s.release();
      }
    },
    std::chrono::seconds{120});
  stop = true;
  REQUIRE(reader.wait_for(std::chrono::seconds{30})
          == std::future_status::ready);
  auto [bad, reads] = reader.get();
  CHECK(bad == 0);
  CHECK(reads > 0);
  CHECK(f.client->snapshot<counter>(id).value == 2000);
}
