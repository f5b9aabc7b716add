#include "fixture.hpp"

using namespace ctxstore;

SCENARIO("store creates or replaces, snapshot reads the last commit",
         "[store][snapshot]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  GIVEN("no context under an id") {
    THEN("a snapshot fails with no_such_context and the reference's text") {
      try {
        c.snapshot<cart>(id);
        FAIL("snapshot of a missing context succeeded");
      } catch (const ctxstore::error& e) {
        CHECK(e.code() == errc::no_such_context);
        CHECK(std::string{e.what()}
              == "No cart context known for " + boost::uuids::to_string(id));
      }
    }
  }
  GIVEN("a stored cart") {
    c.store<cart>(id, cart{"ann", {{"apple", 2}}, {{"k", "v"}}, 3});
    THEN("a snapshot returns it with version 1") {
      auto v = c.snapshot_versioned<cart>(id);
      CHECK(v.version == 1);
      CHECK(v.value.owner == "ann");
      REQUIRE(v.value.items.size() == 1);
      CHECK(v.value.items[0].sku == "apple");
      CHECK(v.value.tags.at("k") == "v");
    }
    WHEN("it is replaced") {
      c.store<cart>(id, cart{"bob", {}, {}, 7});
      THEN("snapshots see the new value and version 2") {
        auto v = c.snapshot_versioned<cart>(id);
        CHECK(v.version == 2);
        CHECK(v.value.owner == "bob");
        CHECK(v.value.total == 7);
      }
    }
  }
}
