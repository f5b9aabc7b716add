#include "fixture.hpp"

#include <stdexcept>

using namespace ctxstore;

SCENARIO("a session hands out a working copy and publishes it on commit",
         "[session]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<cart>(id, cart{"ann", {}, {}, 1});
  GIVEN("an open session with an uncommitted change") {
    auto s = c.acquire<cart>(id);
    CHECK(s.version() == 1);
    CHECK(s.token() != 0);
    s->total = 2;
    THEN("snapshots still show the last committed value") {
      CHECK(c.snapshot<cart>(id).total == 1);
    }
    WHEN("the holder commits") {
      s.commit();
      THEN("snapshots see the change, the version grows, the session stays") {
        auto v = c.snapshot_versioned<cart>(id);
        CHECK(v.value.total == 2);
        CHECK(v.version == 2);
        CHECK(s.version() == 2);
        CHECK(static_cast<bool>(s));
        s->total = 3;
        s.release();
        CHECK(c.snapshot_versioned<cart>(id).version == 3);
        CHECK(c.snapshot<cart>(id).total == 3);
      }
    }
    WHEN("the holder aborts") {
      s.abort();
      THEN("the change is discarded and the version is unchanged") {
        auto v = c.snapshot_versioned<cart>(id);
        CHECK(v.value.total == 1);
        CHECK(v.version == 1);
        CHECK(f.client->stats().sessions == 0);
      }
      THEN("the ended session refuses further use") {
        CHECK(error_code_of([&] { s.commit(); }) == errc::session_expired);
        CHECK(error_code_of([&] { s.release(); }) == errc::session_expired);
      }
    }
  }
}

SCENARIO("a session that only reads makes no copy of the value",
         "[session][read]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<cart>(id, cart{"ann", {}, {}, 1});
  auto committed = c.view<cart>(id);
  GIVEN("an open session") {
    auto s = c.acquire<cart>(id);
    THEN("read shows the committed value itself, not a copy") {
      CHECK(&s.read() == &*committed);
      CHECK(s.read().total == 1);
    }
    WHEN("the holder writes") {
      s->total = 2;
      THEN("read shows its own working copy; snapshots the commit") {
        CHECK(&s.read() != &*committed);
        CHECK(s.read().total == 2);
        CHECK(committed->total == 1);
        CHECK(c.snapshot<cart>(id).total == 1);
      }
    }
    WHEN("the session ended") {
      s.release();
      THEN("read refuses") {
        CHECK(error_code_of([&] { s.read(); }) == errc::session_expired);
      }
    }
  }
}

SCENARIO("leaving a session's scope releases it, an exception aborts it",
         "[session]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<cart>(id, cart{"ann", {}, {}, 10});
  WHEN("the scope ends normally") {
    {
      auto s = c.acquire<cart>(id);
      s->total = 11;
    }
    THEN("the working copy is committed and the session is closed") {
      auto v = c.snapshot_versioned<cart>(id);
      CHECK(v.value.total == 11);
      CHECK(v.version == 2);
      CHECK(c.stats().sessions == 0);
    }
  }
  WHEN("the scope is left by an exception") {
    try {
      auto s = c.acquire<cart>(id);
      s->total = 99;
      s->items.push_back(item{"half-written", 1});
      throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
      // expected
    }
    THEN("nothing of the session is committed and the context is free") {
      auto v = c.snapshot_versioned<cart>(id);
      CHECK(v.value.total == 10);
      CHECK(v.value.items.empty());
      CHECK(v.version == 1);
      CHECK(c.stats().sessions == 0);
      auto again = c.acquire<cart>(id, std::chrono::milliseconds{0});
      CHECK(again->total == 10);
    }
  }
}

SCENARIO("update runs a function in a session", "[session][update]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{5});
  WHEN("the function succeeds") {
    c.update<counter>(id, [](counter& x) { x.value += 1; });
    THEN("its change is committed") {
      auto v = c.snapshot_versioned<counter>(id);
      CHECK(v.value.value == 6);
      CHECK(v.version == 2);
    }
  }
  WHEN("the function throws") {
    CHECK_THROWS_AS(c.update<counter>(id,
                                      [](counter& x) {
                                        x.value = 1000;
                                        throw std::logic_error("no");
                                      }),
                    std::logic_error);
    THEN("the context is unchanged") {
      auto v = c.snapshot_versioned<counter>(id);
      CHECK(v.value.value == 5);
      CHECK(v.version == 1);
    }
  }
  WHEN("the context does not exist") {
    THEN("update fails with no_such_context") {
      CHECK(error_code_of([&] { c.update<counter>(new_id(), [](counter&) {}); })
            == errc::no_such_context);
    }
  }
}

SCENARIO("versions count every store, commit and committing release",
         "[session][version]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{0}); // 1
  c.store<counter>(id, counter{0}); // 2: same value counts
  {
    auto s = c.acquire<counter>(id);
    s.commit(); // 3
    s.commit(); // 4
  }             // 5: release commits
  {
    auto s = c.acquire<counter>(id);
    s.abort(); // abort adds nothing
  }
  CHECK(c.snapshot_versioned<counter>(id).version == 5);
}

SCENARIO("sessions carry increasing fencing tokens", "[session][token]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{0});
  uint64_t first = 0;
  {
    auto s = c.acquire<counter>(id);
    first = s.token();
  }
  auto s = c.acquire<counter>(id);
  CHECK(first != 0);
  CHECK(s.token() > first);
}

SCENARIO("sessions are move-only handles", "[session]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{1});
  auto s = c.acquire<counter>(id);
  s->value = 2;
  auto moved = std::move(s);
  CHECK_FALSE(static_cast<bool>(s));
  moved->value += 1;
  moved.release();
  CHECK(c.snapshot<counter>(id).value == 3);
}
