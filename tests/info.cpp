#include "eventually.hpp"
#include "temp_dir.hpp"
#include "async_fixture.hpp"
#include "ctxstore/actors/context_index.hpp" // counts of activations
#include "fixture.hpp"
#include "tls_certs.hpp"
#include "two_nodes.hpp"
#include "waiting.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <vector>
#include <cstdlib>
#include <future>
#include <thread>

#include <sys/syscall.h>
#include <unistd.h>

#include <caf/io/middleman.hpp>

// Who holds what: info<T>(id) names the holder (a thread by its OS thread id,
// an actor by its id, a holder of another node with its node), how long it
// has held the context, and how many wait and for how long.

using namespace ctxstore;
using remote_fixture::two_nodes;
using namespace waiting;
using async_fixture::spawn_counter_holder;

namespace {

ctxstore::storage fast_path_storage(caf::actor_system& sys) {
  storage_options opts;
  opts.local_fast_path = true;
  return spawn_storage(sys, opts);
}

std::string this_thread_name() {
  return "thread " + std::to_string(::syscall(SYS_gettid));
}


/// A backend whose loads wait until `answer_loads`: an info caught while the
/// backend reads a context's row.
class stalled_loads final : public backend {
public:
  void load(const std::string&, const context_id&, load_done done) override {
    std::lock_guard<std::mutex> guard{mtx_};
    pending_.push_back(std::move(done));
    cv_.notify_all();
  }

  void write(backend_write, write_done) override {
    FAIL("nothing is written here");
  }

  std::string name() const override {
    return "stalled";
  }

  bool await_load() {
    std::unique_lock<std::mutex> guard{mtx_};
    return cv_.wait_for(guard, std::chrono::seconds{5},
                        [this] { return !pending_.empty(); });
  }

  /// Answers every load (nothing stored), as the backend's own thread would.
  void answer_loads() {
    std::vector<load_done> loads;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      loads.swap(pending_);
    }
    std::thread{[loads = std::move(loads)] {
      for (auto& done : loads)
        done(std::optional<stored_value>{});
    }}.join();
  }

private:
  std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<load_done> pending_;
};

} // namespace

SCENARIO("info of a free context", "[info]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  f.client->store<counter>(id, counter{2});
  auto x = f.client->info<counter>(id);
  CHECK(x.version == 2);
  CHECK_FALSE(x.held);
  CHECK(x.holder.empty());
  CHECK(x.held_for.count() == 0);
  CHECK(x.waiters == 0);
  CHECK(x.oldest_wait.count() == 0);
}

SCENARIO("info of an unknown context is no_such_context", "[info]") {
  fixture f;
  CHECK(error_code_of([&] { f.client->info<counter>(new_id()); })
        == errc::no_such_context);
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  f.client->erase<counter>(id);
  CHECK(error_code_of([&] { f.client->info<counter>(id); })
        == errc::no_such_context);
}

SCENARIO("info of a durable context that left memory", "[info][durable]") {
  using namespace std::chrono_literals;
  temp_dir dir;
  auto db = open_sqlite(dir.path + "/contexts.db");
  REQUIRE(db);
  storage_options opts;
  opts.backend = *db;
  opts.idle_timeout = 20ms;
  fixture f{opts};
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{1});
  c.update<counter>(id, [](counter& x) { x.value = 2; });
  auto& stats = *f.store.board()->defaults().stats;
  REQUIRE(eventually([&] { return c.stats().contexts == 0; }));
  REQUIRE(eventually([&] { return c.stats().owners == 0; }));
  auto activations = stats.activations.load();
  WHEN("its info is asked (blocking and async)") {
    auto x = c.info<counter>(id);
    auto from_actor = async_fixture::run_in_actor<uint64_t>(
      f, [id](caf::event_based_actor*, async_fixture::client_ptr ac,
              auto done) {
        ac->info<counter>(id).then([done](context_info i) { done(i.version); },
                                   [done](caf::error&) { done(0); });
      });
    THEN("it answers the backend's version, free, and stays out of memory") {
      CHECK(x.version == 2);
      CHECK_FALSE(x.held);
      CHECK(x.holder.empty());
      CHECK(x.waiters == 0);
      CHECK(from_actor == 2);
      CHECK(stats.activations.load() == activations);
      CHECK(c.stats().contexts == 0);
      CHECK(c.stats().owners == 0);
    }
  }
  WHEN("an unknown id's info is asked") {
    CHECK(error_code_of([&] { c.info<counter>(new_id()); })
          == errc::no_such_context);
    THEN("nothing stays behind") {
      CHECK(c.stats().contexts == 0);
      CHECK(c.stats().owners == 0);
      CHECK(stats.activations.load() == activations);
    }
  }
  WHEN("it is erased") {
    c.erase<counter>(id);
    THEN("its info is no_such_context") {
      CHECK(error_code_of([&] { c.info<counter>(id); })
            == errc::no_such_context);
    }
  }
}

SCENARIO("an info waiting for the backend fails when the storage stops",
         "[info][durable][lifetime]") {
  auto stalled = std::make_shared<stalled_loads>();
  storage_options opts;
  opts.backend = stalled;
  fixture f{opts};
  blocking_client c = *f.client;
  auto info = std::async(std::launch::async, [c]() mutable {
    return error_code_of([&] { c.info<counter>(new_id()); });
  });
  REQUIRE(stalled->await_load()); // the registry reads the row
  caf::anon_send_exit(f.store.registry(), caf::exit_reason::kill);
  REQUIRE(info.wait_for(std::chrono::seconds{10})
          == std::future_status::ready);
  CHECK(info.get() == errc::storage_down);
  stalled->answer_loads(); // too late: nobody is there to read it
}

SCENARIO("info names the holding thread and the waiters", "[info]") {
  fixture f{{}, fast_path_storage};
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{0});
  auto s = c.acquire<counter>(id);
  auto first = c.info<counter>(id);
  CHECK(first.held);
  CHECK(first.holder == this_thread_name());
  CHECK(first.held_for.count() > 0);
  CHECK(first.waiters == 0);
  GIVEN("another thread waiting for it") {
    blocking_client other = c;
    task<int64_t> waiter{f, [other, id]() mutable {
                           auto s2 = other.acquire<counter>(id);
                           auto v = s2->value;
                           s2.release();
                           return v;
                         }};
    wait_for_waiters(f, 1);
    auto x = c.info<counter>(id);
    CHECK(x.waiters == 1);
    CHECK(x.oldest_wait.count() > 0);
    CHECK(x.held_for >= first.held_for);
    auto later = c.info<counter>(id);
    CHECK(later.oldest_wait >= x.oldest_wait);
    s->value = 7;
    s.release();
    CHECK(waiter.get("the waiting thread") == 7);
    auto after = c.info<counter>(id);
    CHECK_FALSE(after.held);
    CHECK(after.waiters == 0);
    CHECK(after.version == 3);
  }
}

SCENARIO("info names the holding thread when its acquire went through the "
         "owner", "[info]") {
  fixture f{{}, [](caf::actor_system& sys) {
              storage_options opts;
              opts.local_fast_path = false; // the owner queues and grants
              return spawn_storage(sys, opts);
            }};
  auto id = new_id();
  f.client->store<counter>(id, counter{0});
  auto s = f.client->acquire<counter>(id);
  auto x = f.client->info<counter>(id);
  CHECK(x.held);
  CHECK(x.holder == this_thread_name()); // not its requester actor
  s.release();
  CHECK_FALSE(f.client->info<counter>(id).held);
}

SCENARIO("info names a holding actor; async_client::info", "[info]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{0});
  actor_reaper reaper;
  caf::actor x;
  auto granted = spawn_counter_holder(
    f, reaper, id, 1,
    [](int, caf::event_based_actor*, async_fixture::client_ptr,
       async_session<counter>&) {},
    x);
  await(f, granted, "the actor's acquire");
  auto seen = f.client->info<counter>(id);
  CHECK(seen.held);
  CHECK(seen.holder == "actor " + std::to_string(x.id()));
  auto from_actor = async_fixture::run_in_actor<std::string>(
    f, [id](caf::event_based_actor*, async_fixture::client_ptr ac,
            auto done) {
      ac->info<counter>(id).then(
        [done](context_info i) { done(i.holder); },
        [done](caf::error& e) { done(describe(e)); });
    });
  CHECK(from_actor == seen.holder);
  auto missing = async_fixture::run_in_actor<std::string>(
    f, [](caf::event_based_actor*, async_fixture::client_ptr ac, auto done) {
      ac->info<counter>(new_id()).then(
        [done](context_info) { done("found"); },
        [done](caf::error& e) { done(to_string(to_errc(e))); });
    });
  CHECK(missing == "no_such_context");
}

SCENARIO("info over publish and connect, also read-only", "[info][remote]") {
  GIVEN("a context held by a client of another node") {
    two_nodes n;
    auto id = new_id();
    n.local_client->store<counter>(id, counter{0});
    auto s = n.remote_client->acquire<counter>(id);
    THEN("both sides see the remote holder with its node") {
      auto here = n.local_client->info<counter>(id);
      CHECK(here.held);
      CHECK(here.holder.rfind("actor ", 0) == 0);
      CHECK(here.holder.find(" on ") != std::string::npos);
      auto there = n.remote_client->info<counter>(id);
      CHECK(there.holder == here.holder);
      CHECK(error_code_of([&] { n.remote_client->info<counter>(new_id()); })
            == errc::no_such_context);
      s.release();
      CHECK_FALSE(n.remote_client->info<counter>(id).held);
    }
  }
  GIVEN("a read-only publication") {
    publish_options read_only;
    read_only.read_only = true;
    two_nodes n{read_only};
    auto id = new_id();
    n.local_client->store<counter>(id, counter{0});
    THEN("info and metrics are reads: they pass") {
      CHECK(n.remote_client->info<counter>(id).version == 1);
      CHECK(n.remote_client->metrics().find("ctxstore_remote_requests_total")
            != std::string::npos);
    }
  }
}
