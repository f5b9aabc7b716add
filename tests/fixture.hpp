#pragma once

// Shared by the specifications: the context types they use and a fixture
// with an actor system, a storage and a blocking client.

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include "ctxstore/ctxstore.hpp"

namespace fixture_types {

struct item {
  std::string sku;
  int qty = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, item& x) {
  return f(caf::meta::type_name("item"), x.sku, x.qty);
}

/// A shopping cart, as in the reference's examples.
struct cart {
  std::string owner;
  std::vector<item> items;
  std::map<std::string, std::string> tags;
  int64_t total = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cart& x) {
  return f(caf::meta::type_name("cart"), x.owner, x.items, x.tags, x.total);
}

/// A plain counter, the context of the stress tests.
struct counter {
  int64_t value = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, counter& x) {
  return f(caf::meta::type_name("counter"), x.value);
}

/// Registered under the name of no other type: used for type mismatches.
struct order {
  std::string status;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order& x) {
  return f(caf::meta::type_name("order"), x.status);
}

} // namespace fixture_types

using fixture_types::cart;
using fixture_types::counter;
using fixture_types::item;
using fixture_types::order;

inline ctxstore::context_id new_id() {
  static thread_local boost::uuids::random_generator gen;
  return gen();
}

/// The configuration every test system uses.
struct test_config : caf::actor_system_config {
  test_config() {
    ctxstore::add_context_type<cart>(*this, "cart");
    ctxstore::add_context_type<counter>(*this, "counter");
    ctxstore::add_context_type<order>(*this, "order");
#if defined(__SANITIZE_THREAD__)
    // Under ThreadSanitizer: one work-sharing worker. Debian's CAF is not
    // instrumented, so TSan cannot see the work-stealing hand-off of actors
    // between workers and reports races on every actor's state (see
    // tests/tsan.supp). Client threads still race against that worker.
    set("scheduler.policy", caf::atom("sharing"));
    set("scheduler.max-threads", 1);
#else
    set("scheduler.max-threads", 4);
#endif
    set("logger.console", caf::atom("none"));
  }
};

/// The local fast path of blocking clients is on unless the environment has
/// CTXSTORE_TEST_LOCAL_FAST_PATH=0: ctest runs every specification both ways.
inline ctxstore::storage_options with_test_fast_path(
  ctxstore::storage_options opts) {
  auto env = std::getenv("CTXSTORE_TEST_LOCAL_FAST_PATH");
  opts.local_fast_path = env == nullptr || std::string{env} != "0";
  return opts;
}

/// An actor system with one storage and a blocking client of it.
struct fixture {
  explicit fixture(ctxstore::storage_options opts = {})
      : sys(cfg), store(ctxstore::spawn_storage(sys, with_test_fast_path(opts))),
        client(std::make_unique<ctxstore::blocking_client>(sys, store)) {
    // nop
  }

  /// A fixture whose config is first parsed from `args` (CAF options, e.g.
  /// `--ctxstore.max-waiters=1`) and whose storage is `make_storage(sys)`.
  template <class MakeStorage>
  fixture(caf::actor_system_config::string_list args, MakeStorage make_storage)
      : sys(parsed(cfg, std::move(args))), store(make_storage(sys)),
        client(std::make_unique<ctxstore::blocking_client>(sys, store)) {
    // nop
  }

  ~fixture() {
    client.reset();
    store = ctxstore::storage{};
  }

  test_config cfg;
  caf::actor_system sys;
  ctxstore::storage store;
  std::unique_ptr<ctxstore::blocking_client> client;

private:
  static test_config& parsed(test_config& cfg,
                             caf::actor_system_config::string_list args) {
    if (auto err = cfg.parse(std::move(args)))
      throw std::invalid_argument{"bad CAF options: " + caf::to_string(err)};
    return cfg;
  }
};

/// Runs `fn` and returns the code of the ctxstore::error it throws.
template <class F>
ctxstore::errc error_code_of(F&& fn) {
  try {
    fn();
  } catch (const ctxstore::error& e) {
    return e.code();
  }
  FAIL("expected a ctxstore::error");
  return ctxstore::errc{};
}
