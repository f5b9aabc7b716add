// Specifications of storage options from CAF's configuration: the `ctxstore`
// group is set on the command line or in caf-application.ini like any CAF
// option, and spawn_storage(sys) and default_storage(sys) apply it.

#include <sstream>
#include <stdexcept>

#include "fixture.hpp"
#include "waiting.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;
using namespace waiting;

namespace {

/// Parses `args` (and `ini`) into `cfg` and returns the error, if any.
caf::error parse(test_config& cfg, caf::actor_system_config::string_list args,
                 const std::string& ini = "") {
  std::istringstream in{ini};
  return cfg.parse(std::move(args), in);
}

} // namespace

SCENARIO("storage options come from the ctxstore group of CAF's config",
         "[config]") {
  GIVEN("nothing set") {
    test_config cfg;
    REQUIRE_FALSE(parse(cfg, {}));
    THEN("the defaults apply: no lease, no limit") {
      auto opts = storage_options_from(cfg);
      CHECK(opts.lease == 0ms);
      CHECK(opts.max_waiters == 0);
      CHECK(opts.local_fast_path);
    }
  }
  GIVEN("options on the command line") {
    test_config cfg;
    REQUIRE_FALSE(
      parse(cfg, {"--ctxstore.lease=250ms", "--ctxstore.max-waiters=3"}));
    auto opts = storage_options_from(cfg);
    CHECK(opts.lease == 250ms);
    CHECK(opts.max_waiters == 3);
  }
  GIVEN("options in caf-application.ini") {
    test_config cfg;
    REQUIRE_FALSE(parse(
      cfg, {}, "[ctxstore]\nlease=2s\nmax-waiters=7\nlocal-fast-path=false\n"));
    auto opts = storage_options_from(cfg);
    CHECK(opts.lease == 2000ms);
    CHECK(opts.max_waiters == 7);
    CHECK_FALSE(opts.local_fast_path);
  }
  GIVEN("values of the wrong type or sign") {
    test_config cfg;
    CHECK(parse(cfg, {"--ctxstore.max-waiters=many"}));
    test_config negative;
    REQUIRE_FALSE(parse(negative, {"--ctxstore.max-waiters=-1"}));
    CHECK_THROWS_AS(storage_options_from(negative), std::invalid_argument);
  }
}

SCENARIO("spawn_storage(sys) and default_storage(sys) apply the configured "
         "options",
         "[config]") {
  // One queued acquire is allowed, the second is refused at once.
  auto check_limit = [](fixture& f) {
    auto id = new_id();
    f.client->store<counter>(id, counter{0});
    std::optional<task<bool>> queued;
    holder<counter> h{f, id};
    h.granted();
    queued.emplace(f, [&] {
      f.client->update<counter>(id, [](counter& c) { ++c.value; });
      return true;
    });
    wait_for_waiters(f, 1);
    CHECK(within(
            f, [&] { return code_of([&] { f.client->acquire<counter>(id); }); },
            "an acquire beyond the configured limit")
          == errc::overloaded);
    h.release();
    CHECK(queued->get("the queued update"));
    CHECK(f.client->snapshot<counter>(id).value == 1);
  };
  WHEN("a storage is spawned without explicit options") {
    fixture f{{"--ctxstore.max-waiters=1"},
              [](caf::actor_system& sys) { return spawn_storage(sys); }};
    check_limit(f);
  }
  WHEN("the default storage is used") {
    fixture f{{"--ctxstore.max-waiters=1"},
              [](caf::actor_system& sys) { return default_storage(sys); }};
    check_limit(f);
  }
}
