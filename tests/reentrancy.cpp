#include "fixture.hpp"
#include "waiting.hpp"

#include <future>

using namespace ctxstore;

SCENARIO("a thread that holds a context re-enters it without deadlock",
         "[reentrancy]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<cart>(id, cart{"ann", {}, {}, 1});
  GIVEN("an open session of this thread") {
    auto outer = c.acquire<cart>(id);
    outer->total = 2;
    WHEN("it acquires the same key again, through another client too") {
      blocking_client other{f.sys, f.store};
      auto inner = other.acquire<cart>(id);
      THEN("the nested level shares the holder's working copy") {
        CHECK(inner->total == 2);
        CHECK(inner.token() == outer.token());
        inner->total = 3;
        CHECK(outer->total == 3);
      }
      AND_WHEN("the inner level is released") {
        inner->total = 4;
        inner.release();
        THEN("only that level ends; nothing is committed yet") {
          CHECK(static_cast<bool>(outer));
          CHECK(c.snapshot<cart>(id).total == 1);
          outer.release();
          CHECK(c.snapshot<cart>(id).total == 4);
          CHECK(c.stats().sessions == 0);
        }
      }
      AND_WHEN("the inner level commits") {
        inner.commit();
        THEN("the shared working copy is published, the session stays") {
          CHECK(c.snapshot<cart>(id).total == 2);
          CHECK(c.stats().sessions == 1);
        }
      }
      AND_WHEN("the inner level aborts") {
        inner->total = 50;
        inner.abort();
        THEN("the whole session ends; the outer level is expired") {
          CHECK(c.snapshot<cart>(id).total == 1);
          CHECK_FALSE(static_cast<bool>(outer));
          CHECK(error_code_of([&] { outer.commit(); })
                == errc::session_expired);
          CHECK(c.stats().sessions == 0);
        }
      }
    }
    WHEN("it stores the key") {
      cart replacement{"bob", {}, {}, 100};
      c.store<cart>(id, replacement);
      THEN("the store proceeds at once and replaces the working copy") {
        CHECK(c.snapshot<cart>(id).owner == "bob");
        CHECK(outer->owner == "bob");
        outer->total += 1;
        outer.release();
        auto v = c.snapshot<cart>(id);
        CHECK(v.owner == "bob");
        CHECK(v.total == 101); // later changes apply on top of the store
      }
    }
    WHEN("it takes a snapshot") {
      THEN("the snapshot shows the last commit without waiting") {
        CHECK(c.snapshot<cart>(id).total == 1);
      }
    }
    WHEN("it erases the key") {
      CHECK(c.erase<cart>(id));
      THEN("the context is gone and the session has ended") {
        CHECK(error_code_of([&] { c.snapshot<cart>(id); })
              == errc::no_such_context);
        CHECK_FALSE(static_cast<bool>(outer));
        CHECK(c.stats().sessions == 0);
      }
    }
    WHEN("it runs update on the key") {
      c.update<cart>(id, [](cart& x) { x.total += 10; });
      THEN("update shares the open session and commits nothing yet") {
        CHECK(outer->total == 12);
        CHECK(c.snapshot<cart>(id).total == 1);
      }
    }
  }
}

SCENARIO("another thread does not share a thread's session", "[reentrancy]") {
  fixture f;
  auto& c = *f.client;
  auto id = new_id();
  c.store<counter>(id, counter{1});
  auto s = c.acquire<counter>(id);
  auto other = std::async(std::launch::async, [&] {
    return error_code_of(
      [&] { c.acquire<counter>(id, std::chrono::milliseconds{0}); });
  });
  REQUIRE(other.wait_for(std::chrono::seconds{10})
          == std::future_status::ready);
  CHECK(other.get() == errc::timeout);
}

namespace {

struct nested_result {
  int64_t inner_saw = -1;
  uint64_t outer_token = 0;
  uint64_t inner_token = 0;
};

} // namespace

SCENARIO("an actor that holds a context re-enters it without deadlock",
         "[reentrancy][async]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  std::promise<nested_result> done;
  auto fut = done.get_future();
  auto st = f.store;
  f.sys.spawn([st, id, &done](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto fail = [self, &done](caf::error& err) {
      done.set_exception(
        std::make_exception_ptr(ctxstore::error{to_errc(err), describe(err)}));
      self->quit();
    };
    ac->acquire<counter>(id).then(
      [=, &done](async_session<counter> outer) mutable {
        outer->value = 7;
        ac->acquire<counter>(id).then(
          [=, &done](async_session<counter> inner) mutable {
            nested_result r;
            r.inner_saw = inner->value;
            r.outer_token = outer.token();
            r.inner_token = inner.token();
            inner.release().then(
              [=, &done](uint64_t) mutable {
                outer.release().then(
                  [self, r, &done](uint64_t) {
                    done.set_value(r);
                    self->quit();
                  },
                  fail);
              },
              fail);
          },
          fail);
      },
      fail);
    return caf::behavior{[](int) {}};
  });
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  auto r = fut.get();
  CHECK(r.inner_saw == 7);
  CHECK(r.inner_token == r.outer_token);
  CHECK(f.client->snapshot<counter>(id).value == 7);
  CHECK(f.client->stats().sessions == 0);
}

SCENARIO("an actor granted by the owner re-enters its session without deadlock",
         "[reentrancy][async]") {
  // A bounded wait queues at the owner, so the session is the owner's, not
  // a direct one; the nested acquire (unbounded) must reach the owner, which
  // knows the holder, and not queue in the cell behind the actor's own
  // session.
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  auto held = f.client->acquire<counter>(id);
  std::promise<std::pair<uint64_t, uint64_t>> done; // outer, inner token
  auto fut = done.get_future();
  auto st = f.store;
  f.sys.spawn([st, id, &done](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto fail = [self, &done](caf::error& err) {
      done.set_exception(
        std::make_exception_ptr(ctxstore::error{to_errc(err), describe(err)}));
      self->quit();
    };
    ac->acquire<counter>(id, std::chrono::minutes{5})
      .then(
        [=, &done](async_session<counter> outer) mutable {
          ac->acquire<counter>(id).then(
            [=, &done](async_session<counter> inner) mutable {
              auto tokens = std::make_pair(outer.token(), inner.token());
              inner.release().then(
                [=, &done](uint64_t) mutable {
                  outer.release().then(
                    [self, tokens, &done](uint64_t) {
                      done.set_value(tokens);
                      self->quit();
                    },
                    fail);
                },
                fail);
            },
            fail);
        },
        fail);
    return caf::behavior{[](int) {}};
  });
  waiting::wait_for_waiters(f, 1);
  held.release();
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  auto tokens = fut.get();
  CHECK(tokens.first == tokens.second);
  CHECK(f.client->stats().sessions == 0);
}
