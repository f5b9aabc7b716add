// The change feed (issue 22): watchers get a context's commits and erases in
// version order, and every change they miss is announced by `skipped`.

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "eventually.hpp"
#include "temp_dir.hpp"
#include "fixture.hpp"
#include "test_hooks.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;

namespace {

/// Not registered with any storage.
struct unregistered {
  int x = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unregistered& x) {
  return f(caf::meta::type_name("unregistered"), x.x);
}

/// Everything queued in `w` now (changes are queued by the commit itself:
/// once the commit returned, its change waits here).
template <class T>
std::vector<change<T>> drain(watcher<T>& w) {
  std::vector<change<T>> result;
  while (auto x = w.next(0ms))
    result.push_back(std::move(*x));
  return result;
}

storage_options with_buffer(size_t n) {
  storage_options opts;
  opts.watch_buffer = n;
  return opts;
}

} // namespace

SCENARIO("a watcher gets every commit of its context in version order",
         "[feed]") {
  fixture f;
  auto id = new_id();
  GIVEN("a watcher of a context that does not exist yet") {
    auto w = f.client->watch<counter>(id);
    CHECK(!w.next(0ms));
    WHEN("it is created, changed, erased and created again") {
      f.client->store(id, counter{1});
      f.client->update<counter>(id, [](counter& c) { c.value = 2; });
      {
        auto s = f.client->acquire<counter>(id);
        s->value = 3;
        s.commit();
        s->value = 4; // aborted: never a change
        s.abort();
      }
      CHECK(f.client->erase<counter>(id));
      f.client->store(id, counter{5});
      THEN("it sees each change once, in order; the erase without a value") {
        auto xs = drain(w);
        REQUIRE(xs.size() == 5);
        std::vector<uint64_t> versions;
        for (auto& x : xs) {
          versions.push_back(x.version);
          CHECK(x.skipped == 0);
          CHECK(x.id == id);
        }
        CHECK(versions == std::vector<uint64_t>{1, 2, 3, 4, 1});
        CHECK(xs[0].value->value == 1);
        CHECK(xs[1].value->value == 2);
        CHECK(xs[2].value->value == 3);
        CHECK(!xs[3].value);
        CHECK(xs[4].value->value == 5);
      }
    }
  }
  GIVEN("a watcher of an existing context") {
    f.client->store(id, counter{1});
    f.client->store(id, counter{2});
    auto w = f.client->watch<counter>(id);
    THEN("it starts with the current value, then gets what follows") {
      f.client->store(id, counter{3});
      auto xs = drain(w);
      REQUIRE(xs.size() == 2);
      CHECK(xs[0].version == 2);
      CHECK(xs[0].skipped == 0);
      CHECK(xs[1].version == 3);
      CHECK(xs[1].value->value == 3);
    }
  }
  GIVEN("a thread that waits for the next change") {
    f.client->store(id, counter{1});
    auto w = f.client->watch<counter>(id);
    REQUIRE(w.next(0ms)->version == 1);
    auto got = std::async(std::launch::async, [&] { return w.next(10s); });
    f.client->store(id, counter{2});
    THEN("the commit wakes it") {
      auto x = got.get();
      REQUIRE(x);
      CHECK(x->version == 2);
    }
  }
}

SCENARIO("a watcher that falls behind gets the newest with skipped", "[feed]") {
  fixture f{with_buffer(4)};
  auto id = new_id();
  auto w = f.client->watch<counter>(id);
  for (int i = 1; i <= 20; ++i)
    f.client->store(id, counter{i});
  auto xs = drain(w);
  THEN("it never holds more than watch_buffer changes and loses none "
       "silently") {
    REQUIRE(!xs.empty());
    CHECK(xs.size() <= 4);
    uint64_t accounted = 0;
    uint64_t prev = 0;
    for (auto& x : xs) {
      CHECK(x.version > prev);
      CHECK(x.version == prev + 1 + x.skipped);
      accounted += 1 + x.skipped;
      prev = x.version;
    }
    CHECK(accounted == 20);
    CHECK(xs.back().version == 20);
    CHECK(xs.back().value->value == 20);
    CHECK(
      std::any_of(xs.begin(), xs.end(), [](auto& x) { return x.skipped > 0; }));
  }
}

namespace {

/// The incarnation of `id`'s current life, as a watcher learns it.
uint64_t incarnation_of(blocking_client& client, const context_id& id) {
  auto w = client.watch<counter>(id);
  auto x = w.next(0ms);
  REQUIRE(x);
  CHECK(x->incarnation != 0);
  return x->incarnation;
}

} // namespace

SCENARIO("a watcher resumes after a version", "[feed]") {
  fixture f;
  auto id = new_id();
  WHEN("the versions after it are retained (the context is watched)") {
    auto keeper = f.client->watch<counter>(id);
    for (int i = 1; i <= 10; ++i)
      f.client->store(id, counter{i});
    auto w = f.client->watch<counter>(id, 6, incarnation_of(*f.client, id));
    THEN("it gets each of them") {
      auto xs = drain(w);
      REQUIRE(xs.size() == 4);
      for (size_t i = 0; i < xs.size(); ++i) {
        CHECK(xs[i].version == 7 + i);
        CHECK(xs[i].skipped == 0);
      }
    }
  }
  WHEN("nothing retained them (nobody watched)") {
    f.client->store(id, counter{1});
    auto life = incarnation_of(*f.client, id);
    for (int i = 2; i <= 10; ++i)
      f.client->store(id, counter{i});
    auto w = f.client->watch<counter>(id, 6, life);
    THEN("it gets the current value, saying how many it missed") {
      auto xs = drain(w);
      REQUIRE(xs.size() == 1);
      CHECK(xs[0].version == 10);
      CHECK(xs[0].skipped == 3);
      CHECK(xs[0].incarnation == life);
    }
  }
  WHEN("it names only the version") {
    f.client->store(id, counter{1});
    f.client->store(id, counter{2});
    auto w = f.client->watch<counter>(id, 2);
    THEN("it gets the current value, and never hears that it missed "
         "nothing (the version could be of an earlier life)") {
      auto xs = drain(w);
      REQUIRE(xs.size() == 1);
      CHECK(xs[0].version == 2);
      CHECK(xs[0].skipped > 0);
    }
  }
  WHEN("it is up to date") {
    f.client->store(id, counter{1});
    auto w = f.client->watch<counter>(id, 1, incarnation_of(*f.client, id));
    THEN("nothing comes until the next commit") {
      CHECK(!w.next(0ms));
      f.client->store(id, counter{2});
      auto x = w.next(0ms);
      REQUIRE(x);
      CHECK(x->version == 2);
      CHECK(x->skipped == 0);
    }
  }
  WHEN("the context was erased meanwhile") {
    f.client->store(id, counter{1});
    f.client->store(id, counter{2});
    CHECK(f.client->erase<counter>(id));
    auto w = f.client->watch<counter>(id, 1);
    THEN("it learns of the erase, and that it missed something") {
      auto x = w.next(0ms);
      REQUIRE(x);
      CHECK(!x->value);
      CHECK(x->skipped > 0);
    }
  }
}

SCENARIO("a watcher that resumes across an erase and a new life of its "
         "context learns of both",
         "[feed]") {
  fixture f;
  auto id = new_id();
  // The first life: versions 1 to 3, as a watcher saw them.
  std::optional<watcher<counter>> keeper;
  auto first_life = [&] {
    for (int i = 1; i <= 3; ++i)
      f.client->store(id, counter{i});
    return incarnation_of(*f.client, id);
  };
  // The second: erased, created again, versions 1 to 3 once more.
  auto second_life = [&] {
    CHECK(f.client->erase<counter>(id));
    for (int i = 10; i <= 30; i += 10)
      f.client->store(id, counter{i});
  };
  WHEN("nothing retained the changes (nobody watched)") {
    auto life = first_life();
    second_life();
    THEN("a resume with the version alone gets the new value, and skipped") {
      auto w = f.client->watch<counter>(id, 3);
      auto xs = drain(w);
      REQUIRE(xs.size() == 1);
      CHECK(xs[0].version == 3);
      CHECK(xs[0].value->value == 30);
      CHECK(xs[0].skipped > 0);
    }
    THEN("a resume with its incarnation gets the new value, counting at "
         "least the erase and the new life's earlier versions") {
      auto w = f.client->watch<counter>(id, 3, life);
      auto xs = drain(w);
      REQUIRE(xs.size() == 1);
      CHECK(xs[0].version == 3);
      CHECK(xs[0].value->value == 30);
      CHECK(xs[0].skipped >= 3);
      CHECK(xs[0].incarnation != life);
    }
  }
  WHEN("the changes were retained (the context was watched)") {
    keeper.emplace(f.client->watch<counter>(id));
    auto life = first_life();
    second_life();
    THEN("a resume with its incarnation gets the erase and the new life") {
      auto w = f.client->watch<counter>(id, 3, life);
      auto xs = drain(w);
      REQUIRE(xs.size() == 4);
      CHECK(!xs[0].value);
      CHECK(xs[0].version == 4);
      CHECK(xs[0].incarnation == life);
      for (size_t i = 1; i < 4; ++i) {
        CHECK(xs[i].version == i);
        CHECK(xs[i].value->value == static_cast<int64_t>(10 * i));
        CHECK(xs[i].incarnation != life);
        CHECK(xs[i].incarnation == xs[1].incarnation);
      }
      for (auto& x : xs)
        CHECK(x.skipped == 0);
      AND_THEN("a resume at the new life's version 3 is up to date") {
        auto w2 = f.client->watch<counter>(id, 3, xs[3].incarnation);
        CHECK(!w2.next(0ms));
      }
    }
    THEN("a resume with the version alone gets the new value, and skipped") {
      auto w = f.client->watch<counter>(id, 3);
      auto xs = drain(w);
      REQUIRE(xs.size() == 1);
      CHECK(xs[0].value->value == 30);
      CHECK(xs[0].skipped > 0);
    }
  }
}

SCENARIO("watch_all gets the changes of every context of a type", "[feed]") {
  fixture f;
  auto a = new_id();
  auto b = new_id();
  f.client->store(a, counter{0});
  auto w = f.client->watch_all<counter>();
  f.client->store(a, counter{1});
  f.client->store(b, counter{10});
  f.client->store(a, counter{2});
  f.client->store(new_id(), cart{}); // another type
  CHECK(f.client->erase<counter>(b));
  auto xs = drain(w);
  REQUIRE(xs.size() == 4);
  CHECK((xs[0].id == a && xs[0].version == 2));
  CHECK((xs[1].id == b && xs[1].version == 1));
  CHECK((xs[2].id == a && xs[2].version == 3));
  CHECK((xs[3].id == b && !xs[3].value));
}

SCENARIO("a watch leaves nothing behind", "[feed]") {
  fixture f;
  auto id = new_id();
  auto& changes = *f.store.board()->defaults().changes;
  {
    auto w1 = f.client->watch<counter>(id);
    auto w2 = f.client->watch_all<counter>();
    f.client->store(id, counter{1});
    CHECK(f.client->stats().watchers == 2);
    CHECK(changes.watched(messages::context_key{"counter", id}));
  }
  CHECK(f.client->stats().watchers == 0);
  CHECK(!changes.watched(messages::context_key{"counter", id}));
  CHECK(!changes.active());
  f.client->store(id, counter{2}); // nobody to tell
}

SCENARIO("bad watches are refused", "[feed][bad_input]") {
  fixture f;
  CHECK(error_code_of([&] { f.client->watch<counter>(context_id{}); })
        == errc::bad_request);
  CHECK(error_code_of([&] { f.client->watch<unregistered>(new_id()); })
        == errc::unknown_type);
  CHECK(error_code_of([&] { f.client->watch_all<unregistered>(); })
        == errc::unknown_type);
  CHECK(f.client->stats().watchers == 0);
}

SCENARIO("a watch of another type than the one stored under an id is a "
         "watch of another context",
         "[feed][bad_input]") {
  // A type name is bound to one C++ type in a process, and a context is its
  // (type name, id): watch<counter> can only meet counters. (So the watch's
  // type_mismatch cannot arise through this API; watcher::next keeps the
  // check as a guard.)
  fixture f;
  auto id = new_id();
  f.client->store(id, cart{});
  auto w = f.client->watch<counter>(id);
  CHECK(!w.next(0ms));
  f.client->store(id, cart{});
  CHECK(!w.next(0ms));
  f.client->store(id, counter{7});
  auto x = w.next(0ms);
  REQUIRE(x);
  CHECK(x->version == 1);
  CHECK(x->value->value == 7);
}

SCENARIO("a watcher learns that the storage stopped", "[feed]") {
  fixture f;
  auto id = new_id();
  auto w = f.client->watch<counter>(id);
  f.client->store(id, counter{1});
  f.client.reset();
  f.store = storage{};
  THEN("after the queued changes, next throws storage_down") {
    auto x = w.next(0ms);
    REQUIRE(x);
    CHECK(x->version == 1);
    CHECK(error_code_of([&] { w.next(5s); }) == errc::storage_down);
  }
}

// -- async
// ------------------------------------------------------------------------

namespace {

struct async_seen {
  std::vector<change<counter>> changes;
  std::optional<errc> error;
};

} // namespace

SCENARIO("an actor's handler gets each change in order through its mailbox",
         "[feed][async]") {
  fixture f;
  auto id = new_id();
  f.client->store(id, counter{1});
  std::promise<async_seen> result;
  auto fut = result.get_future();
  auto started = std::make_shared<std::promise<void>>();
  auto st = f.store;
  auto actor = f.sys.spawn([&, st, started](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto seen = std::make_shared<async_seen>();
    auto handle = std::make_shared<watch_handle>();
    *handle = ac->watch<counter>(
      id, 0,
      [=, &result](change<counter>& c) {
        seen->changes.push_back(c);
        if (c.version == 1) {
          started->set_value();
        } else if (!c.value) {
          handle->stop(); // nothing after this
          result.set_value(*seen);
        }
      },
      [=](caf::error& err) { seen->error = to_errc(err); });
    return caf::behavior{[ac, handle](int) {}};
  });
  REQUIRE(started->get_future().wait_for(10s) == std::future_status::ready);
  for (int i = 2; i <= 50; ++i)
    f.client->store(id, counter{i});
  CHECK(f.client->erase<counter>(id));
  f.client->store(id, counter{99}); // after the stop
  REQUIRE(fut.wait_for(10s) == std::future_status::ready);
  auto seen = fut.get();
  CHECK(!seen.error);
  REQUIRE(seen.changes.size() == 51);
  for (size_t i = 0; i < 50; ++i) {
    CHECK(seen.changes[i].version == i + 1);
    CHECK(seen.changes[i].value->value == static_cast<int64_t>(i + 1));
  }
  CHECK(eventually([&] { return f.client->stats().watchers == 0; }));
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

SCENARIO("an actor resumes a watch with the version and incarnation",
         "[feed][async]") {
  fixture f;
  auto id = new_id();
  auto keeper = f.client->watch<counter>(id);
  f.client->store(id, counter{1});
  auto life = incarnation_of(*f.client, id);
  f.client->store(id, counter{2});
  CHECK(f.client->erase<counter>(id));
  f.client->store(id, counter{3});
  std::promise<std::vector<change<counter>>> result;
  auto st = f.store;
  auto actor = f.sys.spawn([&, st](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto seen = std::make_shared<std::vector<change<counter>>>();
    auto handle = std::make_shared<watch_handle>();
    *handle = ac->watch<counter>(
      id, 1, life,
      [=, &result](change<counter>& c) {
        seen->push_back(c);
        if (c.value && c.value->value == 3) {
          handle->stop();
          result.set_value(*seen);
        }
      },
      [](caf::error&) {});
    return caf::behavior{[ac, handle](int) {}};
  });
  auto fut = result.get_future();
  REQUIRE(fut.wait_for(10s) == std::future_status::ready);
  auto xs = fut.get();
  REQUIRE(xs.size() == 3);
  CHECK(xs[0].version == 2);
  CHECK(!xs[1].value);
  CHECK(xs[1].version == 3);
  CHECK(xs[2].version == 1);
  CHECK(xs[2].incarnation != life);
  for (auto& x : xs)
    CHECK(x.skipped == 0);
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
}

SCENARIO("a watching actor that dies is dropped", "[feed][async]") {
  fixture f;
  auto id = new_id();
  std::promise<void> ready;
  auto st = f.store;
  // The handle outlives the actor (it is not in its state): the watch ends
  // at the first change the dead actor cannot get.
  auto leaked = std::make_shared<watch_handle>();
  auto actor = f.sys.spawn([&, st, leaked](caf::event_based_actor* self) {
    async_client ac{self, st};
    *leaked = ac.watch<counter>(
      id, 0, [](change<counter>&) {}, [](caf::error&) {});
    ready.set_value();
    return caf::behavior{[](int) {}};
  });
  REQUIRE(ready.get_future().wait_for(10s) == std::future_status::ready);
  CHECK(f.client->stats().watchers == 1);
  {
    caf::scoped_actor self{f.sys};
    self->monitor(actor);
    caf::anon_send_exit(actor, caf::exit_reason::kill);
    self->receive([](caf::down_msg&) {});
  }
  actor = nullptr;
  // The actor's end ends its watch (an attachable of the actor), which CAF
  // may run just after it sent the down message: awaited, not assumed.
  CHECK(eventually([&] { return f.client->stats().watchers == 0; }));
  f.client->store(id, counter{1});
}

SCENARIO("a watcher in another actor system of this process runs on that "
         "system's workers",
         "[feed][async]") {
  // An actor's direct commit wakes its watchers from its own worker
  // (actors/host_scope.hpp); a watcher of another actor system must still
  // be scheduled by its own system.
  fixture f;
  auto id = new_id();
  f.client->store(id, counter{0});
  test_config cfg_b;
  caf::actor_system sys_b{cfg_b};
  struct seen_t {
    std::mutex mtx;
    int changes = 0;
    int foreign = 0; // handlers run by a worker of another system
    std::promise<void> done;
  };
  auto seen = std::make_shared<seen_t>();
  auto started = std::make_shared<std::promise<void>>();
  auto st = f.store;
  auto watcher = sys_b.spawn([=](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto handle = std::make_shared<watch_handle>();
    *handle = ac->watch<counter>(
      id, 0,
      [=](change<counter>& c) {
        std::lock_guard<std::mutex> guard{seen->mtx};
        if (&self->context()->system() != &self->home_system())
          seen->foreign += 1;
        if (c.version == 1)
          started->set_value();
        else if (++seen->changes == 20)
          seen->done.set_value();
      },
      [](caf::error&) {});
    return caf::behavior{[ac, handle](int) {}};
  });
  REQUIRE(started->get_future().wait_for(10s) == std::future_status::ready);
  auto writer = f.sys.spawn([=](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    ac->acquire<counter>(id).then(
      [](async_session<counter> s) {
        for (int i = 1; i <= 20; ++i) {
          s->value = i;
          s.commit().then([](uint64_t) {}, [](caf::error&) {});
        }
        s.release().then([](uint64_t) {}, [](caf::error&) {});
      },
      [](caf::error&) {});
    return caf::behavior{[ac](int) {}};
  });
  REQUIRE(seen->done.get_future().wait_for(10s)
          == std::future_status::ready);
  {
    std::lock_guard<std::mutex> guard{seen->mtx};
    CHECK(seen->foreign == 0);
  }
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
}

SCENARIO("an actor's bad watch reports its error", "[feed][async][bad_input]") {
  fixture f;
  std::promise<errc> result;
  auto st = f.store;
  f.sys.spawn([&, st](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto handle = std::make_shared<watch_handle>(ac->watch<counter>(
      context_id{}, 0, [](change<counter>&) {},
      [&](caf::error& err) { result.set_value(to_errc(err)); }));
    return caf::behavior{[ac, handle](int) {}};
  });
  auto fut = result.get_future();
  REQUIRE(fut.wait_for(10s) == std::future_status::ready);
  CHECK(fut.get() == errc::bad_request);
}

// -- a randomized history
// ------------------------------------------------------------

namespace {

/// What the writers committed, by value (every value is committed once).
struct commit_log {
  std::mutex mtx;
  std::map<int64_t, std::pair<context_id, uint64_t>> by_value;

  void add(int64_t value, const context_id& id, uint64_t version) {
    std::lock_guard<std::mutex> guard{mtx};
    by_value[value] = {id, version};
  }
};

/// What one watcher saw of one context.
struct seen_state {
  bool any = false;
  uint64_t version = 0;
  uint64_t incarnation = 0;
  bool erased = false;
  std::optional<int64_t> value;
};

/// Checks one change against what its watcher saw before and the log.
void check_change(std::map<context_id, seen_state>& seen, commit_log& log,
                  const change<counter>& c, uint64_t after,
                  uint64_t after_incarnation) {
  auto& s = seen[c.id];
  if (c.value) {
    std::lock_guard<std::mutex> guard{log.mtx};
    auto i = log.by_value.find(c.value->value);
    CHECK(i != log.by_value.end());
    if (i != log.by_value.end()) {
      CHECK(i->second.first == c.id);
      CHECK(i->second.second == c.version);
    }
  }
  CHECK(c.incarnation != 0);
  if (!s.any && after > 0 && c.skipped == 0) {
    // Resumed: the next of the same life (a version alone never says so).
    CHECK(after_incarnation != 0);
    CHECK(c.incarnation == after_incarnation);
    CHECK(c.version == after + 1);
  }
  if (s.any && c.skipped == 0) {
    if (s.erased) { // created again
      CHECK(c.version == 1);
      CHECK(c.incarnation != s.incarnation);
    } else { // no gap untold
      CHECK(c.version == s.version + 1);
      CHECK(c.incarnation == s.incarnation);
    }
  }
  s.any = true;
  s.version = c.version;
  s.incarnation = c.incarnation;
  s.erased = !c.value;
  s.value = c.value ? std::optional<int64_t>{c.value->value} : std::nullopt;
}

struct random_watcher {
  std::optional<watcher<counter>> w;
  bool all = false;
  context_id id;
  uint64_t after = 0;
  uint64_t after_incarnation = 0; // 0: resumed with the version alone
  std::map<context_id, seen_state> seen;
};

} // namespace

SCENARIO("a randomized history agrees with the commit log", "[feed][random]") {
  auto seed = std::random_device{}();
  INFO("seed " << seed);
  fixture f{with_buffer(8)};
  constexpr int contexts = 6;
  constexpr int writers = 2;
  constexpr int ops_per_writer = 4000;
  std::vector<context_id> ids;
  for (int i = 0; i < contexts; ++i)
    ids.push_back(new_id());
  commit_log log;
  std::atomic<int64_t> next_value{1};
  std::atomic<int> finished{0};
  std::atomic<int> wrong_versions{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < writers; ++t) {
    threads.emplace_back([&, t] {
      blocking_client client{f.sys, f.store};
      std::mt19937 rng{seed + t};
      std::map<context_id, uint64_t> version; // absent: erased or new
      for (int n = 0; n < ops_per_writer; ++n) {
        // Each writer owns every `writers`-th context.
        auto& id = ids[t + writers * (rng() % (contexts / writers))];
        auto v = next_value++;
        auto op = rng() % 10;
        auto i = version.find(id);
        // Logged before it is committed: a watcher may see it at once.
        // (One writer per context: the writer knows the next version.)
        if (op == 0 && i != version.end()) {
          client.erase<counter>(id);
          version.erase(i);
        } else if (i == version.end()) {
          log.add(v, id, 1);
          client.store(id, counter{v});
          version[id] = 1;
        } else if (op < 5) {
          log.add(v, id, ++i->second);
          client.store(id, counter{v});
        } else {
          log.add(v, id, ++i->second);
          auto s = client.acquire<counter>(id);
          s->value = v;
          s.commit();
          if (s.version() != i->second)
            wrong_versions += 1;
          s.abort(); // ends the session; commits nothing more
        }
      }
      ++finished;
    });
  }
  // Watchers join (some resuming after a version they saw), lag, and die,
  // while the writers write.
  std::mt19937 rng{seed};
  std::vector<random_watcher> live;
  size_t died = 0;
  auto consume = [&](random_watcher& r, size_t max) {
    for (size_t n = 0; n < max; ++n) {
      auto x = r.w->next(0ms);
      if (!x)
        return;
      check_change(r.seen, log, *x, r.after, r.after_incarnation);
    }
  };
  auto rounds = 0;
  while (finished.load() < writers) {
    ++rounds;
    auto op = rng() % 10;
    if (live.size() < 6 && op < 2) {
      random_watcher r;
      r.all = rng() % 4 == 0;
      r.id = ids[rng() % contexts];
      if (r.all) {
        r.w.emplace(f.client->watch_all<counter>());
      } else {
        // Resume where an earlier watcher of the key stood, at times.
        for (auto& other : live) {
          auto i = other.seen.find(r.id);
          if (!other.all && i != other.seen.end() && !i->second.erased
              && rng() % 2 == 0) {
            r.after = i->second.version;
            r.after_incarnation = rng() % 4 == 0 ? 0 : i->second.incarnation;
          }
        }
        r.w.emplace(
          f.client->watch<counter>(r.id, r.after, r.after_incarnation));
      }
      live.push_back(std::move(r));
    } else if (!live.empty() && op == 2) {
      live.erase(live.begin() + rng() % live.size()); // dies
      ++died;
    } else if (!live.empty()) {
      consume(live[rng() % live.size()], rng() % 12); // lags at times
    }
    if (rounds % 100 == 0)
      std::this_thread::yield();
  }
  for (auto& th : threads)
    th.join();
  CHECK(wrong_versions == 0);
  // Quiescence: every change is queued. Each watcher's last change of each
  // context it saw is that context's last commit.
  for (auto& r : live) {
    consume(r, std::numeric_limits<size_t>::max());
    for (auto& [id, s] : r.seen) {
      auto now = [&]() -> std::optional<versioned<counter>> {
        try {
          return f.client->snapshot_versioned<counter>(id);
        } catch (const error& e) {
          CHECK(e.code() == errc::no_such_context);
          return std::nullopt;
        }
      }();
      if (now) {
        CHECK(!s.erased);
        CHECK(s.version == now->version);
        CHECK(s.value == now->value.value);
      } else {
        CHECK(s.erased);
      }
    }
    if (!r.all && !r.seen.count(r.id)) {
      // Nothing seen: the context has been absent all along, or (resumed
      // with its incarnation) it is still at the version the watcher
      // resumed after.
      CHECK((r.after == 0 || r.after_incarnation != 0));
      if (r.after == 0)
        CHECK(error_code_of([&] { f.client->snapshot<counter>(r.id); })
              == errc::no_such_context);
      else
        CHECK(f.client->snapshot_versioned<counter>(r.id).version == r.after);
    }
  }
  live.clear();
  CHECK(f.client->stats().watchers == 0);
  INFO("watchers died: " << died);
}

// -- durable
// --------------------------------------------------------------------------

SCENARIO("a watched durable context stays in memory and reports durable "
         "commits",
         "[feed][durable]") {
  temp_dir dir;
  auto backend = open_sqlite(dir.path + "/feed.db");
  REQUIRE(backend);
  storage_options opts;
  opts.backend = *backend;
  opts.idle_timeout = 5ms;
  fixture f{opts};
  auto watched = new_id();
  auto idle = new_id();
  auto& board = *f.store.board();
  auto resident = [&](const context_id& id) {
    return board.find(messages::context_key{"counter", id}).has_value();
  };
  f.client->store(watched, counter{1});
  auto w = f.client->watch<counter>(watched);
  f.client->store(idle, counter{1});
  REQUIRE(eventually([&] { return !resident(idle); }));
  // Another one, idle since after the first left: more than an idle timeout
  // passed since `watched` was last used.
  auto later = new_id();
  f.client->store(later, counter{1});
  REQUIRE(eventually([&] { return !resident(later); }));
  THEN("the watched context is still there, and its commits come in order") {
    CHECK(resident(watched));
    f.client->store(watched, counter{2});
    f.client->update<counter>(watched, [](counter& c) { c.value = 3; });
    auto xs = drain(w);
    REQUIRE(xs.size() == 3);
    CHECK(xs[0].version == 1);
    CHECK(xs[1].version == 2);
    CHECK(xs[2].version == 3);
    CHECK(xs[2].value->value == 3);
  }
  WHEN("a context left memory and is watched again") {
    auto w2 = f.client->watch<counter>(idle, 0);
    THEN("the watch reads it again and starts with its value") {
      auto x = w2.next(0ms);
      REQUIRE(x);
      CHECK(x->version == 1);
      f.client->store(idle, counter{2});
      auto y = w2.next(0ms);
      REQUIRE(y);
      CHECK(y->version == 2);
    }
  }
}
