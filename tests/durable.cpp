// Durable contexts (storage_options::backend), through the storage, with a
// real SQLite file and a real redis-server: write-through, activation with
// versions that continue across restarts, failures that change nothing,
// order behind a session, a server that dies and comes back.

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "ctxstore/actors/context_index.hpp" // counts of passivations
#include "eventually.hpp"
#include "temp_dir.hpp"
#include "fixture.hpp"
#include "forwarding_backend.hpp"
#include "redis_server.hpp"
#include "resident_memory.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<backend> sqlite_at(const std::string& file) {
  auto x = open_sqlite(file);
  if (!x)
    FAIL("open_sqlite: " << describe(x.error()));
  return *x;
}

/// The real backend, whose writes fail while `failing` is set (a disk that
/// is full, for a while): the storage must change nothing then.
class failing_backend final : public forwarding_backend {
public:
  explicit failing_backend(std::shared_ptr<backend> real)
      : forwarding_backend(std::move(real), "failing") {
    // nop
  }

  void write(backend_write w, write_done done) override {
    if (failing) {
      // Answered from another thread, like a real backend's.
      std::thread{[done = std::move(done)] {
        done(make_error(errc::backend_failure, "disk full (test)"));
      }}.detach();
      return;
    }
    forwarding_backend::write(std::move(w), std::move(done));
  }

  std::atomic<bool> failing{false};
};

/// The real backend, whose writes land but are reported failed while
/// `lying` is set: a server that applied the write and then stopped
/// answering. Both ways of writing lie: the owner's (`write`) and a
/// thread's own commit (`write_and_wait`).
class landed_but_failed final : public forwarding_backend {
public:
  explicit landed_but_failed(std::shared_ptr<backend> real)
      : forwarding_backend(std::move(real), "landed-but-failed") {
    // nop
  }

  void write(backend_write w, write_done done) override {
    forwarding_backend::write(
      std::move(w), [this, done = std::move(done)](const caf::error& err) {
        if (lying && !err)
          done(make_error(errc::backend_failure, "no reply (test)"));
        else
          done(err);
      });
  }

  caf::error write_and_wait(backend_write w) override {
    auto err = real().write_and_wait(std::move(w));
    if (lying && !err)
      return make_error(errc::backend_failure, "no reply (test)");
    return err;
  }

  std::atomic<bool> lying{false};
};

/// Keeps `b`'s worker thread busy until `release` is called: writes
/// submitted meanwhile wait in its queue.
class busy_worker {
public:
  explicit busy_worker(backend& b) {
    backend_write w;
    w.type = "busy-worker";
    w.id = new_id();
    w.version = 1;
    w.bytes = {'x'};
    auto gate = gate_.get_future().share();
    b.write(std::move(w), [entered = entered_, gate](const caf::error&) {
      entered->set_value();
      gate.wait(); // the answer runs on the worker
    });
    REQUIRE(entered_->get_future().wait_for(5s) == std::future_status::ready);
  }

  ~busy_worker() {
    release();
  }

  void release() {
    if (!released_) {
      released_ = true;
      gate_.set_value();
    }
  }

private:
  std::shared_ptr<std::promise<void>> entered_
    = std::make_shared<std::promise<void>>();
  std::promise<void> gate_;
  bool released_ = false;
};

cart cart_of(const std::string& owner, int64_t total) {
  cart c;
  c.owner = owner;
  c.total = total;
  return c;
}

storage_options durable_options(std::shared_ptr<backend> b) {
  storage_options opts;
  opts.backend = std::move(b);
  return opts;
}

/// Spawns a storage with `opts` whose every request goes through the
/// context's owner (the local fast path off, whatever ctest's run asks for:
/// the fixture's own constructor would apply CTXSTORE_TEST_LOCAL_FAST_PATH),
/// for fixture's second constructor.
auto through_owners(storage_options opts) {
  opts.local_fast_path = false;
  return [opts](caf::actor_system& sys) { return spawn_storage(sys, opts); };
}

/// Writes `bytes` as version `version` of the cart `id` into the SQLite
/// file `file`, straight through its backend (a value ctxstore never wrote).
void put_row(const std::string& file, const context_id& id, uint64_t version,
             std::vector<char> bytes) {
  auto b = sqlite_at(file);
  backend_write w;
  w.type = "cart";
  w.id = id;
  w.version = version;
  w.bytes = std::move(bytes);
  std::promise<caf::error> done;
  b->write(std::move(w), [&](const caf::error& err) { done.set_value(err); });
  auto fut = done.get_future();
  REQUIRE(fut.wait_for(10s) == std::future_status::ready);
  REQUIRE(!fut.get());
}

/// Checks that `op` fails as a value that does not decode.
template <class F>
void check_undecodable(F op) {
  try {
    op();
    FAIL("a value that does not decode was read");
  } catch (const error& e) {
    CHECK(e.code() == errc::backend_failure);
    CHECK(std::string{e.what()}.find("does not decode") != std::string::npos);
  }
}

} // namespace

SCENARIO("a durable context survives the storage and continues its versions",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  auto id = new_id();
  {
    fixture f{durable_options(sqlite_at(file))};
    f.client->store(id, cart_of("ada", 1));
    f.client->update<cart>(id, [](cart& c) { c.total = 2; });
    auto s = f.client->acquire<cart>(id);
    s->total = 3;
    s.commit();
    s->total = 4; // never committed: lost with the session
    s.abort();
    CHECK(f.client->snapshot_versioned<cart>(id).version == 3);
  }
  GIVEN("a new storage on the same file") {
    fixture f{durable_options(sqlite_at(file))};
    THEN("the last commit is there, with its version") {
      auto x = f.client->snapshot_versioned<cart>(id);
      CHECK(x.value.owner == "ada");
      CHECK(x.value.total == 3);
      CHECK(x.version == 3);
    }
    THEN("the next change continues the versions") {
      f.client->update<cart>(id, [](cart& c) { c.total = 5; });
      CHECK(f.client->snapshot_versioned<cart>(id).version == 4);
    }
    THEN("it can be erased") {
      CHECK(f.client->erase<cart>(id));
      CHECK_THROWS_AS(f.client->snapshot<cart>(id), error);
    }
  }
}

SCENARIO("an erased durable context stays erased after a restart",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  auto id = new_id();
  {
    fixture f{durable_options(sqlite_at(file))};
    f.client->store(id, cart_of("bob", 1));
    CHECK(f.client->erase<cart>(id));
    CHECK_FALSE(f.client->erase<cart>(id));
  }
  fixture f{durable_options(sqlite_at(file))};
  try {
    f.client->snapshot<cart>(id);
    FAIL("the erased context came back");
  } catch (const error& e) {
    CHECK(e.code() == errc::no_such_context);
  }
  AND_THEN("it can be created again") {
    f.client->store(id, cart_of("bob", 2));
    CHECK(f.client->snapshot<cart>(id).total == 2);
  }
}

SCENARIO("an id in neither memory nor backend leaves nothing behind",
         "[durable]") {
  temp_dir dir;
  fixture f{durable_options(sqlite_at(dir.path + "/contexts.db"))};
  auto id = new_id();
  try {
    f.client->snapshot<cart>(id);
    FAIL("a snapshot of an unknown id succeeded");
  } catch (const error& e) {
    CHECK(e.code() == errc::no_such_context);
  }
  CHECK_THROWS_AS(f.client->acquire<cart>(id), error);
  CHECK(f.client->stats().contexts == 0);
}

SCENARIO("a change the backend refuses changes nothing", "[durable]") {
  temp_dir dir;
  auto disk = std::make_shared<failing_backend>(
    sqlite_at(dir.path + "/contexts.db"));
  fixture f{durable_options(disk)};
  auto id = new_id();
  f.client->store(id, cart_of("cy", 1));
  disk->failing = true;
  WHEN("a store, a commit, a release and an erase fail") {
    CHECK(error_code_of([&] { f.client->store(id, cart_of("cy", 2)); })
          == errc::backend_failure);
    {
      auto s = f.client->acquire<cart>(id);
      s->total = 3;
      CHECK(error_code_of([&] { s.commit(); }) == errc::backend_failure);
      CHECK(error_code_of([&] { s.release(); }) == errc::backend_failure);
    }
    CHECK(error_code_of([&] { f.client->erase<cart>(id); })
          == errc::backend_failure);
    THEN("memory, snapshots and versions stay at the last durable commit") {
      auto x = f.client->snapshot_versioned<cart>(id);
      CHECK(x.value.total == 1);
      CHECK(x.version == 1);
      AND_THEN("the failed release ended its session") {
        auto s = f.client->acquire<cart>(id, 0ms);
        CHECK(s->total == 1);
      }
    }
    AND_WHEN("the disk has room again") {
      disk->failing = false;
      f.client->store(id, cart_of("cy", 4));
      THEN("the versions go on from the last durable one") {
        CHECK(f.client->snapshot_versioned<cart>(id).version == 2);
      }
    }
  }
}

SCENARIO("a thread's commit that landed but was reported failed is read "
         "again",
         "[durable]") {
  temp_dir dir;
  auto disk = std::make_shared<landed_but_failed>(
    sqlite_at(dir.path + "/contexts.db"));
  fixture f{durable_options(disk)};
  auto id = new_id();
  f.client->store(id, cart_of("lee", 1));
  WHEN("a thread's release fails although the backend applied it") {
    disk->lying = true;
    {
      auto s = f.client->acquire<cart>(id);
      s->total = 2;
      CHECK(error_code_of([&] { s.release(); }) == errc::backend_failure);
    }
    disk->lying = false;
    THEN("the next session sees what the backend holds, and commits on it") {
      // (Kept at version 1 in memory, its commit would conflict.)
      auto s = f.client->acquire<cart>(id, 5s);
      CHECK(s->total == 2);
      s->total = 3;
      s.release();
      auto x = f.client->snapshot_versioned<cart>(id);
      CHECK(x.value.total == 3);
      CHECK(x.version == 3);
    }
  }
}

SCENARIO("a lease that runs out while the holder's commit is on its way to "
         "the disk",
         "[durable]") {
  temp_dir dir;
  auto disk = sqlite_at(dir.path + "/contexts.db");
  auto opts = durable_options(disk);
  opts.lease = 50ms;
  fixture f{opts};
  auto id = new_id();
  f.client->store(id, cart_of("lou", 1));
  GIVEN("a thread's session whose commit waits behind a busy backend") {
    auto s = f.client->acquire<cart>(id);
    busy_worker busy{*disk};
    s->total = 2;
    auto commit = std::async(std::launch::async, [&s] { return s.commit(); });
    // Another client queues for the context.
    auto next = std::async(std::launch::async, [&f, id] {
      blocking_client c{f.sys, f.store};
      auto t = c.acquire<cart>(id, 5s);
      return t->total;
    });
    // Destroyed first: the futures above wait for a worker that must go on.
    struct on_exit {
      busy_worker& busy;
      ~on_exit() {
        busy.release();
      }
    } unblock{busy};
    // When the thread took the context itself, the other client waits in
    // its queue. When its session came through the owner (fast path off, or
    // a request still on its way when it acquired), the owner makes the
    // commit durable and the acquire waits in the owner's mailbox meanwhile,
    // not counted: then this gives up after a second. Either way it gets
    // the committed value.
    eventually([&] { return f.client->stats().waiters == 1; }, 1s);
    // The lease is a duration: nothing to await but its end.
    std::this_thread::sleep_for(opts.lease * 3);
    WHEN("the backend answers") {
      busy.release();
      THEN("the commit counts, the session is revoked after it, and the "
           "next client gets the committed value") {
        CHECK_NOTHROW(commit.get());
        CHECK(next.get() == 2);
        CHECK(error_code_of([&] { s.commit(); }) == errc::session_expired);
        auto x = f.client->snapshot_versioned<cart>(id);
        CHECK(x.value.total == 2);
        CHECK(x.version == 3); // the next client's session released
      }
    }
  }
}

SCENARIO("threads cycling on durable contexts lose nothing across a restart",
         "[durable][stress]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  constexpr int threads = 4;
  constexpr int rounds = 60;
  auto shared = new_id();
  std::vector<context_id> own;
  for (int t = 0; t < threads; ++t)
    own.push_back(new_id());
  {
    fixture f{durable_options(sqlite_at(file))};
    f.client->store(shared, cart_of("all", 0));
    for (auto& id : own)
      f.client->store(id, cart_of("one", 0));
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        blocking_client c{f.sys, f.store};
        for (int i = 0; i < rounds; ++i) {
          {
            auto s = c.acquire<cart>(shared);
            s->total += 1;
            s.release();
          }
          c.update<cart>(own[t], [](cart& x) { x.total += 1; });
        }
      });
    for (auto& w : workers)
      w.join();
    auto x = f.client->snapshot_versioned<cart>(shared);
    CHECK(x.value.total == threads * rounds);
    CHECK(x.version == 1 + threads * rounds);
  }
  fixture f{durable_options(sqlite_at(file))};
  auto x = f.client->snapshot_versioned<cart>(shared);
  CHECK(x.value.total == threads * rounds);
  CHECK(x.version == 1 + threads * rounds);
  for (auto& id : own) {
    auto y = f.client->snapshot_versioned<cart>(id);
    CHECK(y.value.total == rounds);
    CHECK(y.version == 1 + rounds);
  }
}

SCENARIO("changes queued behind a session become durable in arrival order",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  auto id = new_id();
  {
    fixture f{durable_options(sqlite_at(file))};
    f.client->store(id, cart_of("dee", 1));
    auto s = f.client->acquire<cart>(id);
    // Two stores wait behind the session (each a thread of its own client).
    auto queued = [&](int64_t total) {
      return std::async(std::launch::async, [&f, id, total] {
        blocking_client c{f.sys, f.store};
        c.store(id, cart_of("dee", total));
      });
    };
    auto first = queued(10);
    while (f.client->stats().waiters < 1)
      std::this_thread::yield(); // the first is queued before the second
    auto second = queued(20);
    while (f.client->stats().waiters < 2)
      std::this_thread::yield();
    s->total = 2;
    s.release();
    first.get();
    second.get();
    auto x = f.client->snapshot_versioned<cart>(id);
    CHECK(x.value.total == 20);
    CHECK(x.version == 4);
  }
  fixture f{durable_options(sqlite_at(file))};
  auto x = f.client->snapshot_versioned<cart>(id);
  CHECK(x.value.total == 20);
  CHECK(x.version == 4);
}

SCENARIO("a stored value that does not decode fails only its context",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  auto bad = new_id();
  auto good = new_id();
  put_row(file, bad, 7, {'\x01', '\x02'}); // truncated
  fixture f{durable_options(sqlite_at(file))};
  f.client->store(good, cart_of("eve", 1));
  check_undecodable([&] { f.client->snapshot<cart>(bad); });
  CHECK(f.client->snapshot<cart>(good).owner == "eve");
}

SCENARIO("a stored value that does not decode can be replaced or erased "
         "through its owner",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  auto bad = new_id();
  put_row(file, bad, 7, {'\x01', '\x02'}); // truncated
  fixture f{{}, through_owners(durable_options(sqlite_at(file)))};
  GIVEN("its owner read it first") {
    check_undecodable([&] { f.client->snapshot<cart>(bad); });
    check_undecodable([&] { f.client->acquire<cart>(bad); });
    check_undecodable([&] { f.client->watch<cart>(bad); });
    WHEN("a client stores it") {
      THEN("the store replaces it as the version after the one held") {
        f.client->store(bad, cart_of("fix", 1));
        auto x = f.client->snapshot_versioned<cart>(bad);
        CHECK(x.value.owner == "fix");
        CHECK(x.version == 8);
      }
    }
    WHEN("a client erases it") {
      THEN("it was there, and is gone") {
        CHECK(f.client->erase<cart>(bad));
        CHECK_FALSE(f.client->erase<cart>(bad));
        CHECK_THROWS_AS(f.client->snapshot<cart>(bad), error);
      }
    }
  }
  GIVEN("a store is the first request on it") {
    THEN("the store replaces it") {
      f.client->store(bad, cart_of("fix", 2));
      auto x = f.client->snapshot_versioned<cart>(bad);
      CHECK(x.value.total == 2);
      CHECK(x.version == 8);
    }
  }
}

namespace {

/// Counts the loads and one-step stores that reach a real backend.
class counting_backend : public forwarding_backend {
public:
  explicit counting_backend(std::shared_ptr<backend> real)
      : forwarding_backend(std::move(real), "counting") {
    // nop
  }

  void load(const std::string& type, const context_id& id,
            load_done done) override {
    ++loads;
    forwarding_backend::load(type, id, std::move(done));
  }

  void store(backend_write w, store_done done) override {
    ++stores;
    real().store(std::move(w), std::move(done));
  }

  std::atomic<int> loads{0};
  std::atomic<int> stores{0};
};

} // namespace

SCENARIO("an owner stores a durable context that is not in memory in one "
         "backend step",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  auto stored = new_id();
  put_row(file, stored, 7, {'\x01', '\x02'}); // not even readable
  auto counting = std::make_shared<counting_backend>(sqlite_at(file));
  // Through the owners alone: an actor's or a remote client's way (the
  // fixture's blocking client would store on its own thread otherwise).
  fixture f{{}, through_owners(durable_options(counting))};
  WHEN("a client stores a context that is in the backend") {
    f.client->store(stored, cart_of("one", 1));
    THEN("the backend wrote the version after its own, unread") {
      CHECK(counting->loads.load() == 0);
      CHECK(counting->stores.load() == 1);
      auto x = f.client->snapshot_versioned<cart>(stored);
      CHECK(x.value.owner == "one");
      CHECK(x.version == 8);
      CHECK(counting->loads.load() == 0); // in memory now
    }
  }
  WHEN("a client stores a context that is nowhere") {
    auto fresh = new_id();
    f.client->store(fresh, cart_of("one", 2));
    THEN("it is version 1, written in one step") {
      CHECK(counting->loads.load() == 0);
      CHECK(counting->stores.load() == 1);
      CHECK(f.client->snapshot_versioned<cart>(fresh).version == 1);
    }
  }
  WHEN("the first request on a context is not a store") {
    CHECK_THROWS_AS(f.client->snapshot<cart>(new_id()), error);
    THEN("it is read first, as always") {
      CHECK(counting->loads.load() == 1);
      CHECK(counting->stores.load() == 0);
    }
  }
}

SCENARIO("an owner's one-step store that the backend refuses changes "
         "nothing",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  auto id = new_id();
  {
    fixture g{durable_options(sqlite_at(file))};
    g.client->store(id, cart_of("ann", 1));
  }
  // A failing_backend makes its stores with the default backend::store
  // (a load, then a write): the write fails.
  auto disk = std::make_shared<failing_backend>(sqlite_at(file));
  disk->failing = true;
  fixture f{{}, through_owners(durable_options(disk))};
  CHECK(error_code_of([&] { f.client->store(id, cart_of("ann", 2)); })
        == errc::backend_failure);
  disk->failing = false;
  THEN("the context is read again: the last durable commit, its version") {
    auto x = f.client->snapshot_versioned<cart>(id);
    CHECK(x.value.total == 1);
    CHECK(x.version == 1);
    AND_THEN("the next store goes on from there") {
      f.client->store(id, cart_of("ann", 3));
      CHECK(f.client->snapshot_versioned<cart>(id).version == 2);
    }
  }
}

SCENARIO("concurrent commits of many contexts are all durable",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  constexpr int threads = 8;
  constexpr int per_thread = 25;
  std::vector<context_id> ids;
  for (int i = 0; i < threads * per_thread; ++i)
    ids.push_back(new_id());
  {
    fixture f{durable_options(sqlite_at(file))};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        blocking_client c{f.sys, f.store};
        for (int i = 0; i < per_thread; ++i) {
          auto& id = ids[t * per_thread + i];
          c.store(id, cart_of("many", i));
          c.update<cart>(id, [](cart& x) { x.total += 1000; });
        }
      });
    for (auto& w : workers)
      w.join();
  }
  fixture f{durable_options(sqlite_at(file))};
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < per_thread; ++i) {
      auto x = f.client->snapshot_versioned<cart>(ids[t * per_thread + i]);
      CHECK(x.value.total == 1000 + i);
      CHECK(x.version == 2);
    }
}

SCENARIO("the backend can come from CAF's configuration", "[durable]") {
  temp_dir dir;
  auto id = new_id();
  auto uri = "--ctxstore.backend=sqlite:" + dir.path + "/contexts.db";
  {
    fixture f{{uri}, [](caf::actor_system& sys) { return spawn_storage(sys); }};
    f.client->store(id, cart_of("fay", 1));
  }
  fixture f{{uri}, [](caf::actor_system& sys) { return spawn_storage(sys); }};
  CHECK(f.client->snapshot<cart>(id).owner == "fay");
  WHEN("the file is held by that storage") {
    THEN("another storage on it fails to start, saying why") {
      try {
        fixture g{{uri},
                  [](caf::actor_system& sys) { return spawn_storage(sys); }};
        FAIL("two storages opened one file");
      } catch (const error& e) {
        CHECK(e.code() == errc::backend_failure);
      }
    }
  }
  WHEN("the option is malformed") {
    THEN("the storage fails to start with bad_request") {
      for (auto bad : {"--ctxstore.backend=sqlite:",
                       "--ctxstore.backend=mysql://x",
                       "--ctxstore.backend=redis://127.0.0.1:99999/p"}) {
        try {
          fixture g{{bad},
                    [](caf::actor_system& sys) { return spawn_storage(sys); }};
          FAIL("accepted " << bad);
        } catch (const error& e) {
          CHECK(e.code() == errc::bad_request);
        }
      }
    }
  }
}

SCENARIO("a durable storage on Redis survives the server's crash", "[durable]") {
  redis_server server;
  auto id = new_id();
  auto opened = open_redis("127.0.0.1", server.port(), "durable-spec");
  REQUIRE(opened);
  fixture f{durable_options(*opened)};
  f.client->store(id, cart_of("gus", 1));
  f.client->update<cart>(id, [](cart& c) { c.total = 2; });
  WHEN("the server dies") {
    server.kill();
    THEN("a change fails with backend_failure within a bound") {
      auto start = std::chrono::steady_clock::now();
      CHECK(error_code_of([&] { f.client->store(id, cart_of("gus", 3)); })
            == errc::backend_failure);
      CHECK(std::chrono::steady_clock::now() - start < 5s);
      // Until the server answers again the storage cannot tell whether the
      // failed write landed: the context answers backend_failure (or, read
      // before it learnt that, the last durable commit), never a guess.
      uint64_t seen = 2;
      try {
        seen = f.client->snapshot_versioned<cart>(id).version;
      } catch (const error& e) {
        CHECK(e.code() == errc::backend_failure);
      }
      CHECK(seen == 2);
      AND_WHEN("it comes back (its AOF reloaded)") {
        server.restart();
        THEN("the storage resumes by itself: nothing changed, nothing "
             "acknowledged is lost") {
          auto x = f.client->snapshot_versioned<cart>(id);
          CHECK(x.value.total == 2);
          CHECK(x.version == 2);
          f.client->update<cart>(id, [](cart& c) { c.total += 10; });
          x = f.client->snapshot_versioned<cart>(id);
          CHECK(x.value.total == 12);
          CHECK(x.version == 3);
        }
      }
    }
  }
}

SCENARIO("an idle durable context leaves memory and comes back on demand",
         "[durable][passivation]") {
  temp_dir dir;
  auto opts = durable_options(sqlite_at(dir.path + "/contexts.db"));
  opts.idle_timeout = 20ms;
  fixture f{opts};
  auto id = new_id();
  f.client->store(id, cart_of("hal", 1));
  f.client->update<cart>(id, [](cart& c) { c.total = 2; });
  WHEN("nobody uses it for longer than idle_timeout") {
    REQUIRE(eventually([&] { return f.client->stats().contexts == 0; }));
    REQUIRE(eventually([&] { return f.client->stats().owners == 0; }));
    THEN("the next request reads it again, with its version") {
      // (Counted, not seen resident: 20 ms later it may have left again.)
      auto& stats = *f.store.board()->defaults().stats;
      auto activations = stats.activations.load();
      auto x = f.client->snapshot_versioned<cart>(id);
      CHECK(x.value.total == 2);
      CHECK(x.version == 2);
      CHECK(stats.activations.load() == activations + 1);
      f.client->update<cart>(id, [](cart& c) { c.total = 3; });
      CHECK(f.client->snapshot_versioned<cart>(id).version == 3);
    }
  }
  WHEN("a session holds it") {
    auto s = f.client->acquire<cart>(id);
    // Another context, idle since after the acquire, leaves memory twice:
    // more than two idle timeouts passed while the session held `id`.
    auto& stats = *f.store.board()->defaults().stats;
    auto before = stats.passivations.load(); // `id` may have left once
    auto other = new_id();
    f.client->store(other, cart_of("hal", 9));
    REQUIRE(eventually([&] { return stats.passivations.load() > before; }));
    CHECK(f.client->snapshot<cart>(other).total == 9);
    REQUIRE(eventually([&] { return stats.passivations.load() > before + 1; }));
    THEN("it stays, and the session commits") {
      CHECK(f.client->stats().contexts == 1);
      s->total = 4;
      s.release();
      CHECK(f.client->snapshot_versioned<cart>(id).version == 3);
    }
  }
}

SCENARIO("requests racing with passivation are neither lost nor reordered",
         "[durable][passivation]") {
  temp_dir dir;
  auto opts = durable_options(sqlite_at(dir.path + "/contexts.db"));
  opts.idle_timeout = 1ms; // contexts leave memory all the time
  fixture f{opts};
  constexpr int keys = 16;
  constexpr int rounds = 40;
  std::vector<context_id> ids;
  for (int i = 0; i < keys; ++i) {
    ids.push_back(new_id());
    f.client->store(ids.back(), cart_of("ivy", 0));
  }
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t)
    workers.emplace_back([&, t] {
      blocking_client c{f.sys, f.store};
      for (int r = 0; r < rounds; ++r) {
        auto& id = ids[(t * 7 + r) % keys];
        c.update<cart>(id, [](cart& x) { x.total += 1; });
        if (r % 5 == 0)
          std::this_thread::sleep_for(2ms); // let some leave memory
        c.snapshot<cart>(id);
      }
    });
  for (auto& w : workers)
    w.join();
  int64_t total = 0;
  uint64_t versions = 0;
  for (auto& id : ids) {
    auto x = f.client->snapshot_versioned<cart>(id);
    total += x.value.total;
    versions += x.version;
    CHECK(static_cast<uint64_t>(x.value.total) + 1 == x.version);
  }
  CHECK(total == 4 * rounds);
  CHECK(versions == keys + 4 * rounds);
  auto& stats = *f.store.board()->defaults().stats;
  CHECK(stats.passivations.load() > 0);
  CHECK(stats.activations.load() > 0);
}

SCENARIO("the registry is told once per drain of the adoption queue",
         "[durable][passivation]") {
  actors::adoption_queue q;
  messages::context_key a{"cart", new_id()};
  messages::context_key b{"cart", new_id()};
  GIVEN("a first key queued") {
    REQUIRE(q.push(a)); // the caller tells the registry
    THEN("keys queued before the registry's take need no message") {
      CHECK_FALSE(q.push(b));
      auto taken = q.take();
      REQUIRE(taken.size() == 2);
      CHECK(taken[0] == a);
      CHECK(taken[1] == b);
      AND_THEN("a key queued while the drain goes on needs none either") {
        CHECK_FALSE(q.push(a));
        CHECK(q.take().size() == 1);
      }
      AND_THEN("after an empty take, the next key starts a drain again") {
        CHECK(q.take().empty());
        CHECK(q.push(b));
      }
    }
  }
}

SCENARIO("max_resident bounds the durable contexts in memory",
         "[durable][passivation]") {
  temp_dir dir;
  auto opts = durable_options(sqlite_at(dir.path + "/contexts.db"));
  opts.max_resident = 4;
  fixture f{opts};
  constexpr int keys = 24;
  std::vector<context_id> ids;
  for (int i = 0; i < keys; ++i) {
    ids.push_back(new_id());
    f.client->store(ids.back(), cart_of("joy", i));
  }
  // A thread's store of a new context hands it to an owner after it
  // returns (blocking_core.cpp, store_new_durable), with the others stored
  // meanwhile (the registry's adoption_interval, 50 ms): the bound holds
  // once the registry has them all.
  REQUIRE(eventually([&] { return f.client->stats().contexts <= 4 + 1; }));
  WHEN("every context is read again, twice") {
    for (int round = 0; round < 2; ++round)
      for (int i = 0; i < keys; ++i) {
        auto x = f.client->snapshot_versioned<cart>(ids[i]);
        CHECK(x.value.total == i);
        CHECK(x.version == 1);
      }
    THEN("about max_resident of them stay in memory") {
      // Each context read in asks one of the least recently used out; the
      // last ones asked may still be leaving.
      CHECK(eventually([&] { return f.client->stats().contexts <= 4 + 1; }));
      auto& stats = *f.store.board()->defaults().stats;
      CHECK(stats.passivations.load() >= keys);
      CHECK(stats.activations.load() >= keys);
    }
  }
}

SCENARIO("an owner that keeps its context for max_resident makes another "
         "leave",
         "[durable][passivation]") {
  temp_dir dir;
  auto opts = durable_options(sqlite_at(dir.path + "/contexts.db"));
  opts.max_resident = 2;
  // Through the owners alone: each request marks its context used, in the
  // order they are sent.
  fixture f{{}, through_owners(opts)};
  auto kept = new_id();
  auto other = new_id();
  f.client->store(kept, cart_of("kim", 1));
  f.client->store(other, cart_of("kim", 2));
  auto w = f.client->watch<cart>(kept); // its watchers keep it in memory
  f.client->update<cart>(other, [](cart& c) { c.total += 1; }); // used last
  REQUIRE(f.client->stats().contexts == 2);
  WHEN("a third context is read in") {
    f.client->store(new_id(), cart_of("kim", 3));
    THEN("the least recently used that can leave does, though the least "
         "recently used of all stays") {
      // The registry asks the least recently used (the watched one) first.
      CHECK(eventually([&] { return f.client->stats().contexts <= 2; },
                       std::chrono::seconds{5}));
      CHECK(f.client->snapshot<cart>(kept).total == 1);
      CHECK(f.client->snapshot<cart>(other).total == 3);
    }
  }
}

SCENARIO("passivation returns counts and memory to the baseline",
         "[durable][passivation]") {
  temp_dir dir;
  auto opts = durable_options(sqlite_at(dir.path + "/contexts.db"));
  opts.idle_timeout = 5ms;
  fixture f{opts};
  constexpr int keys = 1000;
  const std::string name(4000, 'k'); // about 4 KiB per context
  std::vector<context_id> ids;
  for (int i = 0; i < keys; ++i)
    ids.push_back(new_id());
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      blocking_client c{f.sys, f.store};
      for (int i = t; i < keys; i += 4)
        c.store(ids[i], cart_of(name, i));
    });
  for (auto& w : writers)
    w.join();
  auto& stats = *f.store.board()->defaults().stats;
  auto all_left = [&] {
    return eventually([&] {
      auto x = f.client->stats();
      return x.contexts == 0 && x.owners == 0;
    });
  };
  // One round: every context read into memory, then left idle until all of
  // them passivated.
  auto round = [&] {
    for (int i = 0; i < keys; ++i)
      REQUIRE(f.client->snapshot<cart>(ids[i]).total == i);
    REQUIRE(all_left());
  };
  REQUIRE(all_left());
  round(); // the allocator's pools reach their working size
  auto baseline = resident_memory::bytes();
  constexpr int rounds = 4;
  auto activations = stats.activations.load();
  for (int r = 0; r < rounds; ++r)
    round();
  auto x = f.client->stats();
  CHECK(x.contexts == 0);
  CHECK(x.owners == 0);
  CHECK(x.sessions == 0);
  CHECK(x.waiters == 0);
  CHECK(stats.activations.load() >= activations + rounds * keys);
  CHECK(f.store.board()->size() == 0);
  auto grown = resident_memory::bytes() - baseline;
  INFO("resident memory grew " << grown / 1024 << " KiB over " << rounds
                               << " rounds of " << keys
                               << " contexts of 4 KiB in and out of memory");
  // 4 MiB of contexts come and go each round; a leak of 1 KiB per
  // activation would add 4 MiB.
  if (!resident_memory::meaningful)
    WARN("resident memory not checked under a sanitizer");
  else
    CHECK(grown < 2 * 1024 * 1024);
}

namespace {

/// The real backend, which notes on which thread contexts are read and
/// written, and can hold a thread's read (`load_and_wait`) at a gate.
class watched_backend final : public forwarding_backend {
public:
  explicit watched_backend(std::shared_ptr<backend> real)
      : forwarding_backend(std::move(real), "watched") {
    // nop
  }

  void load(const std::string& type, const context_id& id,
            load_done done) override {
    loads += 1;
    forwarding_backend::load(type, id, std::move(done));
  }

  void write(backend_write w, write_done done) override {
    writes += 1;
    if (failing) {
      std::thread{[done = std::move(done)] {
        done(make_error(errc::backend_failure, "disk full (test)"));
      }}.detach();
      return;
    }
    forwarding_backend::write(std::move(w), std::move(done));
  }

  caf::error write_and_wait(backend_write w) override {
    if (failing)
      return make_error(errc::backend_failure, "disk full (test)");
    {
      std::lock_guard<std::mutex> guard{mtx_};
      writers_.push_back(std::this_thread::get_id());
    }
    if (gate_write.exchange(false))
      wait_at_gate();
    return real().write_and_wait(std::move(w));
  }

  caf::expected<std::optional<stored_value>>
  load_and_wait(const std::string& type, const context_id& id) override {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      readers_.push_back(std::this_thread::get_id());
    }
    if (gate_load.exchange(false))
      wait_at_gate();
    return real().load_and_wait(type, id);
  }


  std::vector<std::thread::id> readers() {
    std::lock_guard<std::mutex> guard{mtx_};
    return readers_;
  }

  std::vector<std::thread::id> writers() {
    std::lock_guard<std::mutex> guard{mtx_};
    return writers_;
  }

  std::atomic<int> loads{0};
  std::atomic<int> writes{0};
  std::atomic<bool> failing{false}; // every write fails
  /// The next thread's read (write) waits at the gate: `entered` is ready
  /// once it does, `open()` lets it go on.
  std::atomic<bool> gate_load{false};
  std::atomic<bool> gate_write{false};
  std::promise<void> entered;

  std::future<void> entered_future = entered.get_future();

  void open() {
    gate_.set_value();
  }

private:
  void wait_at_gate() {
    entered.set_value();
    gate_future_.wait();
  }

  std::promise<void> gate_;
  std::shared_future<void> gate_future_ = gate_.get_future().share();
  std::mutex mtx_;
  std::vector<std::thread::id> readers_;
  std::vector<std::thread::id> writers_;
};

/// Opens `disk`'s gate on every way out of a spec: a thread held at it must
/// not wait forever.
struct gate_opener {
  watched_backend& disk;

  ~gate_opener() {
    try {
      disk.open();
    } catch (const std::future_error&) {
      // opened already
    }
  }
};

} // namespace

SCENARIO("a thread stores a durable context that is not in memory on its "
         "own thread",
         "[durable]") {
  temp_dir dir;
  auto file = dir.path + "/contexts.db";
  auto fresh = new_id();
  auto kept = new_id();
  {
    fixture f{durable_options(sqlite_at(file))};
    f.client->store(kept, cart_of("kim", 1));
    f.client->store(kept, cart_of("kim", 2));
  }
  auto disk = std::make_shared<watched_backend>(sqlite_at(file));
  auto opts = durable_options(disk);
  opts.idle_timeout = 20ms;
  fixture f{opts};
  // (With the fast path off, the owner reads and writes it.)
  auto fast = with_test_fast_path({}).local_fast_path;
  WHEN("a thread stores a new context") {
    f.client->store(fresh, cart_of("kim", 10));
    THEN("it read and wrote the backend itself: version 1, durable") {
      auto me = std::this_thread::get_id();
      if (fast) {
        CHECK(disk->readers() == std::vector<std::thread::id>{me});
        CHECK(disk->writers() == std::vector<std::thread::id>{me});
      }
      CHECK(disk->loads == (fast ? 0 : 1));
      CHECK(disk->writes == (fast ? 0 : 1));
      auto x = f.client->snapshot_versioned<cart>(fresh);
      CHECK(x.version == 1);
      CHECK(x.value.total == 10);
      AND_THEN("the context gets an owner, which lets it leave memory") {
        REQUIRE(eventually([&] { return f.client->stats().owners == 1; }));
        REQUIRE(eventually([&] { return f.client->stats().contexts == 0; }));
        CHECK(f.client->snapshot_versioned<cart>(fresh).version == 1);
      }
    }
  }
  WHEN("a thread stores a context that only the backend holds") {
    f.client->store(kept, cart_of("kim", 3));
    THEN("its versions go on from the backend's") {
      CHECK(disk->readers().size() == (fast ? 1 : 0));
      auto x = f.client->snapshot_versioned<cart>(kept);
      CHECK(x.version == 3);
      CHECK(x.value.total == 3);
    }
  }
}

SCENARIO("requests on a new durable context that a thread reads in wait for "
         "it, in order",
         "[durable]") {
  if (!with_test_fast_path({}).local_fast_path)
    return; // the thread's own path only (the owner's: the specs above)
  temp_dir dir;
  auto disk = std::make_shared<watched_backend>(
    sqlite_at(dir.path + "/contexts.db"));
  fixture f{durable_options(disk)};
  auto id = new_id();
  GIVEN("a thread's store of a new context held in its read of the backend") {
    disk->gate_load = true;
    auto first = std::async(std::launch::async, [&] {
      blocking_client c{f.sys, f.store};
      c.store(id, cart_of("mo", 1));
    });
    gate_opener opener{*disk};
    REQUIRE(disk->entered_future.wait_for(5s)
            == std::future_status::ready);
    WHEN("another client stores and reads it meanwhile") {
      auto second = std::async(std::launch::async, [&] {
        blocking_client c{f.sys, f.store};
        c.store(id, cart_of("mo", 2));
        return c.snapshot_versioned<cart>(id).version;
      });
      // Its store reached the registry, which gave the context an owner:
      // that owner waits for the thread.
      REQUIRE(eventually([&] { return f.client->stats().owners == 1; }));
      CHECK(second.wait_for(20ms) == std::future_status::timeout);
      disk->open();
      THEN("the thread's store comes first, then the other one") {
        first.get();
        CHECK(second.get() == 2);
        auto x = f.client->snapshot_versioned<cart>(id);
        CHECK(x.version == 2);
        CHECK(x.value.total == 2);
        CHECK(disk->loads == 0); // nobody read it twice
      }
    }
  }
}

SCENARIO("a thread's store of a new durable context that the backend refuses "
         "leaves nothing",
         "[durable]") {
  temp_dir dir;
  auto disk = std::make_shared<watched_backend>(
    sqlite_at(dir.path + "/contexts.db"));
  fixture f{durable_options(disk)};
  auto id = new_id();
  WHEN("the write fails") {
    disk->failing = true;
    CHECK(error_code_of([&] { f.client->store(id, cart_of("nia", 1)); })
          == errc::backend_failure);
    disk->failing = false;
    THEN("the context is in neither memory nor backend") {
      CHECK(error_code_of([&] { f.client->snapshot<cart>(id); })
            == errc::no_such_context);
      REQUIRE(eventually([&] {
        auto x = f.client->stats();
        return x.contexts == 0 && x.owners == 0;
      }));
      AND_THEN("a later store creates it at version 1") {
        f.client->store(id, cart_of("nia", 2));
        auto x = f.client->snapshot_versioned<cart>(id);
        CHECK(x.version == 1);
        CHECK(x.value.total == 2);
      }
    }
  }
}

SCENARIO("a thread stores a free resident durable context on its own thread; "
         "others wait for that write",
         "[durable]") {
  if (!with_test_fast_path({}).local_fast_path)
    return; // the thread's own path only (the owner's: the specs above)
  temp_dir dir;
  auto disk = std::make_shared<watched_backend>(
    sqlite_at(dir.path + "/contexts.db"));
  fixture f{durable_options(disk)};
  auto id = new_id();
  f.client->store(id, cart_of("oz", 1));
  REQUIRE(eventually([&] { return f.client->stats().owners == 1; }));
  WHEN("it stores it again while another client's store comes") {
    disk->gate_write = true;
    auto first = std::async(std::launch::async, [&] {
      blocking_client c{f.sys, f.store};
      c.store(id, cart_of("oz", 2));
    });
    gate_opener opener{*disk};
    REQUIRE(disk->entered_future.wait_for(5s)
            == std::future_status::ready);
    auto second = std::async(std::launch::async, [&] {
      blocking_client c{f.sys, f.store};
      c.store(id, cart_of("oz", 3));
    });
    // The other store waits in the context's queue at its owner.
    REQUIRE(eventually([&] { return f.client->stats().waiters == 1; }));
    disk->open();
    first.get();
    second.get();
    THEN("both are durable, the thread's first") {
      auto me = disk->writers();
      CHECK(me.size() >= 2); // the first store's and the thread's
      CHECK(disk->writes >= 1); // the other one, by the owner
      auto x = f.client->snapshot_versioned<cart>(id);
      CHECK(x.version == 3);
      CHECK(x.value.total == 3);
    }
  }
}
