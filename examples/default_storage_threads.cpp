// Pattern: the default-storage singleton from plain threads, dependency-
// injection style. Services take a storage handle in their constructor; the
// application wires in `default_storage(sys)` (the reference's
// `context_storage_singleton()`: one storage for the life of the actor
// system, thread-safe), a test wires in a private `spawn_storage(sys)`.
// Output: the threads' line, the final cart, the isolated service's error,
// then "default_storage_threads: ok".

#include <iostream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/uuid/random_generator.hpp>
#include <caf/all.hpp>

#include "context_types.hpp"
#include "ctxstore/ctxstore.hpp"

using examples::cart;
constexpr int n_threads = 4, rounds = 50; // updates per thread

// A service of the application: it knows the storage only as a handle it was
// given, so the same code runs on the default storage or on a test's own.
class cart_service {
public:
  cart_service(caf::actor_system& sys, ctxstore::storage st)
      : client_(sys, std::move(st)) {
    // nop
  }

  void open(const ctxstore::context_id& id, std::string owner) {
    client_.store<cart>(id, cart{std::move(owner), {}, {}, 0});
  }

  void add(const ctxstore::context_id& id, std::string sku, int qty) {
    client_.update<cart>(id, [&](cart& c) { // one session per call
      c.items.push_back({std::move(sku), qty});
      c.total += qty;
    });
  }

  ctxstore::versioned<cart> get(const ctxstore::context_id& id) {
    return client_.snapshot_versioned<cart>(id);
  }

private:
  ctxstore::blocking_client client_; // one per service; cheap to make
};

bool run(caf::actor_system& sys) {
  auto id = boost::uuids::random_generator{}();
  cart_service{sys, ctxstore::default_storage(sys)}.open(id, "team");
  std::mutex mtx;
  std::set<caf::actor_addr> storages; // which storage each thread was given
  std::vector<std::thread> threads;
  for (int t = 0; t < n_threads; ++t)
    threads.emplace_back([&, t] {
      auto& st = ctxstore::default_storage(sys); // any thread, any time
      {
        std::lock_guard<std::mutex> guard{mtx};
        storages.insert(st.registry().address());
      }
      cart_service svc{sys, st}; // injected
      for (int n = 0; n < rounds; ++n)
        svc.add(id, "t" + std::to_string(t), n % 4 + 1);
    });
  for (auto& t : threads)
    t.join();
  std::cout << "threads: " << n_threads << " x " << rounds
            << " updates through default_storage(sys), " << storages.size()
            << " storage" << (storages.size() == 1 ? "" : "s") << std::endl;
  // The threads' services are gone; the default storage and its cart are not.
  auto v = cart_service{sys, ctxstore::default_storage(sys)}.get(id);
  int64_t expected = 0;
  for (int n = 0; n < rounds; ++n)
    expected += n_threads * (n % 4 + 1);
  std::cout << "final: " << v.value.owner << " total=" << v.value.total
            << " items=" << v.value.items.size() << " version=" << v.version
            << " (expected total " << expected << ")" << std::endl;
  bool ok = storages.size() == 1 && v.value.total == expected
            && v.value.items.size() == size_t{n_threads * rounds}
            && v.version == uint64_t{n_threads * rounds + 1};
  cart_service isolated{sys, ctxstore::spawn_storage(sys)}; // as in a test
  try {
    isolated.get(id);
    ok = false;
  } catch (const ctxstore::error& e) {
    std::cout << "isolated: a service given its own storage does not see it: "
              << ctxstore::to_string(e.code()) << std::endl;
    ok = ok && e.code() == ctxstore::errc::no_such_context;
  }
  return ok;
}

int main() {
  bool ok = false;
  {
    caf::actor_system_config cfg; // must outlive the actor system
    examples::add_example_types(cfg);
    caf::actor_system sys{cfg};
    ok = run(sys);
  } // the default storage stops with the system, which does not wait for it
  std::cout << (ok ? "default_storage_threads: ok"
                   : "default_storage_threads: FAILED")
            << std::endl;
  return ok ? 0 : 1;
}
