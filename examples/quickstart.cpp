// Pattern: the first program to run. It registers a context type, stores two
// carts, updates them at once from threads (blocking_client) and actors
// (async_client) while a reader thread prints committed snapshots, checks the
// totals, then shows a session and an error. Last line: "quickstart: ok".

#include <atomic>
#include <future>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <boost/uuid/random_generator.hpp>
#include <caf/all.hpp>

#include "ctxstore/ctxstore.hpp"

struct cart {
  std::string owner;
  std::vector<std::string> items;
  int64_t total = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cart& x) {
  return f(caf::meta::type_name("cart"), x.owner, x.items, x.total);
}

// Context types are registered on the config, before the system exists.
struct config : caf::actor_system_config {
  config() {
    ctxstore::add_context_type<cart>(*this, "cart");
  }
};

using ctxstore::context_id;
constexpr int n_threads = 3, n_actors = 2, rounds = 40; // updates per worker
constexpr int64_t expected = (n_threads + n_actors) * rounds / 2; // per cart

// An event-based worker: `rounds` updates, one after the other, then it quits.
void add_from(caf::event_based_actor* self,
              std::shared_ptr<ctxstore::async_client> ac,
              std::vector<context_id> ids, int n) {
  if (n == rounds)
    return self->quit();
  ac->update<cart>(ids[n % 2], [](cart& c) { c.total += 1; })
    .then([=](uint64_t) { add_from(self, ac, ids, n + 1); },
          [=](caf::error& e) { self->quit(e); }); // shows in the totals
}

caf::behavior adder(caf::event_based_actor* self, ctxstore::storage st,
                    std::vector<context_id> ids) {
  add_from(self, std::make_shared<ctxstore::async_client>(self, st), ids, 0);
  return {[](caf::ok_atom) {}}; // stays alive until add_from quits
}

bool run(caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys);
  ctxstore::blocking_client client{sys, st}; // copies may go to any thread
  boost::uuids::random_generator gen;
  std::vector<context_id> ids{gen(), gen()};
  client.store<cart>(ids[0], cart{"ann", {}, 0});
  client.store<cart>(ids[1], cart{"bob", {}, 0});
  // Every update adds 1 to the total and 1 to the version, so a snapshot
  // with total != version - 1 would show a half-done update.
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader{[&done, &bad, c = client, id = ids[0]]() mutable {
    uint64_t shown = 0;
    while (!done) {
      auto v = c.snapshot_versioned<cart>(id);
      bad += v.value.total + 1 != static_cast<int64_t>(v.version);
      if (v.version < shown + 20)
        continue;
      shown = v.version;
      std::cout << "reader: ann total=" << v.value.total
                << " version=" << v.version << std::endl;
    }
  }};
  std::vector<std::thread> threads;
  for (int t = 0; t < n_threads; ++t)
    threads.emplace_back([&bad, c = client, ids]() mutable {
      try {
        for (int n = 0; n < rounds; ++n)
          c.update<cart>(ids[n % 2], [](cart& x) { x.total += 1; });
      } catch (const ctxstore::error& e) {
        std::cout << "thread: " << e.what() << std::endl;
        ++bad;
      }
    });
  std::vector<caf::actor> actors;
  for (int a = 0; a < n_actors; ++a)
    actors.push_back(sys.spawn(adder, st, ids));
  for (auto& t : threads)
    t.join();
  caf::scoped_actor{sys}->wait_for(actors);
  done = true;
  reader.join();
  bool ok = bad == 0;
  for (auto& id : ids) {
    auto v = client.snapshot_versioned<cart>(id);
    std::cout << "final: " << v.value.owner << " total=" << v.value.total
              << " version=" << v.version << " (expected " << expected << ")\n";
    ok = ok && v.value.total == expected && v.version == uint64_t{expected + 1};
  }
  { // A session: exclusive, reentrant; snapshots see only what it commits.
    auto s = client.acquire<cart>(ids[0]); // blocks others' acquire/store
    s->items.push_back("pear");
    s->total += 5;
    auto during = std::async(std::launch::async, [c = client, &ids]() mutable {
                    return c.snapshot<cart>(ids[0]); // does not wait
                  }).get();
    std::cout << "session: token=" << s.token() << ", snapshot meanwhile: total="
              << during.total << " (uncommitted +5 not visible)" << std::endl;
    s.commit(); // publish now, keep holding
    std::cout << "session: committed, snapshot: total="
              << client.snapshot<cart>(ids[0]).total << std::endl;
    s->items.push_back("plum");
    s.release(); // commit + end (leaving the scope would do the same)
    ok = ok && during.total == expected;
  }
  auto after = client.snapshot<cart>(ids[0]);
  std::cout << "session: released, items=" << after.items.size() << std::endl;
  ok = ok && after.items.size() == 2 && after.total == expected + 5;
  try {
    client.snapshot<cart>(gen());
    ok = false;
  } catch (const ctxstore::error& e) {
    std::cout << "error: " << ctxstore::to_string(e.code()) << ": "
              << e.what() << std::endl;
    ok = ok && e.code() == ctxstore::errc::no_such_context;
  }
  return ok; // `client` and `st` go before the actor system does
}

int main() {
  bool ok = false;
  {
    config cfg; // must outlive the actor system
    caf::actor_system sys{cfg};
    ok = run(sys);
  } // the system shuts down here; the last line proves it did
  std::cout << (ok ? "quickstart: ok" : "quickstart: FAILED") << std::endl;
  return ok ? 0 : 1;
}
