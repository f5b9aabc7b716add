#include "fixture.hpp"

#include <optional>
#include <utility>

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

SCENARIO("a view is a snapshot that shares the committed value",
         "[snapshot][view]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  GIVEN("no context") {
    THEN("a view fails with no_such_context") {
      CHECK(error_code_of([&] { c.view<cart>(id); }) == errc::no_such_context);
    }
  }
  GIVEN("a stored cart and a view of it") {
    c.store<cart>(id, cart{"ann", {{"apple", 2}}, {}, 3});
    auto before = c.view<cart>(id);
    THEN("the view shows the committed value and its version") {
      CHECK(before.version() == 1);
      CHECK(before->owner == "ann");
      CHECK((*before).items.at(0).sku == "apple");
    }
    THEN("a view with another type asks for another context") {
      CHECK(error_code_of([&] { c.view<counter>(id); })
            == errc::no_such_context);
    }
    WHEN("a session changes and commits the context") {
      auto s = c.acquire<cart>(id);
      s->owner = "bob";
      THEN("no view shows the uncommitted change") {
        CHECK(c.view<cart>(id)->owner == "ann");
        CHECK(before->owner == "ann");
      }
      s.commit();
      THEN("a new view shows the commit and the old one is unchanged") {
        auto after = c.view<cart>(id);
        CHECK(after.version() == 2);
        CHECK(after->owner == "bob");
        CHECK(before.version() == 1);
        CHECK(before->owner == "ann");
      }
    }
  }
}

SCENARIO("sessions that reuse replaced commits for their working copies "
         "never touch a value that a reader still holds",
         "[snapshot][session]") {
  // A session's first write copy-assigns into a commit that an earlier
  // session replaced and nobody holds any more (recycled_value.hpp).
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  auto cart_of = [](int round) {
    cart x{"owner " + std::to_string(round), {}, {}, round};
    for (int i = 0; i < round % 4; ++i)
      x.items.push_back(item{"sku " + std::to_string(round * 10 + i), i});
    for (int i = 0; i < (round + 2) % 3; ++i)
      x.tags["tag " + std::to_string(i)] = std::string(20 + round, 'x');
    return x;
  };
  c.store<cart>(id, cart_of(0));
  auto first = c.view<cart>(id); // a reader keeps it all along
  std::optional<snapshot_view<cart>> later;
  for (int round = 1; round <= 12; ++round) {
    {
      auto s = c.acquire<cart>(id);
      *s = cart_of(round);
      if (round % 2 == 0)
        s.commit(); // a commit replaces a value too; the release after it
      s->total += 1000;
      s->total -= 1000;
    }
    auto now = c.view<cart>(id);
    auto want = cart_of(round);
    CHECK(now->owner == want.owner);
    CHECK(now->items.size() == want.items.size());
    CHECK(now->tags == want.tags);
    CHECK(now->total == want.total);
    if (round == 6)
      later = now; // a reader keeps this one from here on
  }
  THEN("the values readers kept are as they were when committed") {
    for (auto [kept, round] : {std::pair{&first, 0}, std::pair{&*later, 6}}) {
      auto want = cart_of(round);
      CHECK((*kept)->owner == want.owner);
      CHECK((*kept)->items.size() == want.items.size());
      CHECK((*kept)->tags == want.tags);
      CHECK((*kept)->total == want.total);
    }
  }
}

SCENARIO("a shared value is stored without a copy and never changed through "
         "the storage",
         "[store][shared]") {
  fixture f;
  auto& c = *f.client;
  auto a = new_id();
  auto b = new_id();
  auto value = share(cart{"ann", {{"apple", 2}}, {{"k", "v"}}, 3});
  c.store(a, value);
  c.store(b, value);
  THEN("both contexts hold the very object the handle holds") {
    CHECK(&*c.view<cart>(a) == &*value);
    CHECK(&*c.view<cart>(b) == &*value);
    CHECK(c.snapshot<cart>(a).items.at(0).sku == "apple");
  }
  WHEN("a session changes one of them") {
    {
      auto s = c.acquire<cart>(a);
      s->owner = "bob";
      s->items.push_back(item{"pear", 1});
    }
    THEN("that context has the change, the other and the handle do not") {
      CHECK(c.snapshot<cart>(a).owner == "bob");
      CHECK(c.snapshot<cart>(a).items.size() == 2);
      CHECK(&*c.view<cart>(b) == &*value);
      CHECK(value->owner == "ann");
      CHECK(value->items.size() == 1);
    }
  }
  WHEN("the holder of a context stores a shared value and writes on") {
    auto other = share(cart{"cy", {}, {}, 10});
    {
      auto s = c.acquire<cart>(a);
      s->owner = "dropped by the store";
      c.store(a, other);
      CHECK(&*c.view<cart>(a) == &*other); // committed at once, no copy
      CHECK(s->owner == "cy");              // the working copy is the value
      s->total += 1;                        // ... and its writes copy it
    }
    THEN("the release commits on top of it and the value is unchanged") {
      auto now = c.snapshot_versioned<cart>(a);
      CHECK(now.value.owner == "cy");
      CHECK(now.value.total == 11);
      CHECK(now.version == 3);
      CHECK(other->total == 10);
    }
  }
  WHEN("a view is shared and stored under another id") {
    auto seen = c.view<cart>(a);
    auto copy_id = new_id();
    c.store(copy_id, shared_value<cart>{seen});
    THEN("the new context holds the viewed object itself") {
      CHECK(&*c.view<cart>(copy_id) == &*seen);
      CHECK(c.snapshot_versioned<cart>(copy_id).version == 1);
    }
  }
}
