// An actor's sessions through the async client: commit on release, abort
// when dropped, reads without a copy, a deadline behind a holder, the holder's
// own requests and nested levels (reentrancy), and how a session ends when its
// actor is killed, its lease runs out or it erases the context.

#include "async_fixture.hpp"
#include "fixture.hpp"
#include "waiting.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

using namespace ctxstore;
using namespace async_fixture;
using namespace waiting;

SCENARIO("an actor session commits on release and aborts when dropped",
         "[async][session]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  WHEN("the actor releases its session") {
    auto version
      = run_in_actor<uint64_t>(f, [id](caf::event_based_actor*, client_ptr ac,
                                       std::function<void(uint64_t)> done) {
          ac->acquire<counter>(id).then(
            [done](async_session<counter> s) {
              s->value = 2;
              s.release().then(done, [done](caf::error&) { done(0); });
            },
            [done](caf::error&) { done(0); });
        });
    THEN("the change is committed") {
      CHECK(version == 2);
      CHECK(f.client->snapshot<counter>(id).value == 2);
    }
  }
  WHEN("the actor drops its session without releasing it") {
    auto dropped
      = run_in_actor<bool>(f, [id](caf::event_based_actor*, client_ptr ac,
                                   std::function<void(bool)> done) {
          ac->acquire<counter>(id).then(
            [done](async_session<counter> s) {
              s->value = 99;
              done(true);
            },
            [done](caf::error&) { done(false); });
        });
    REQUIRE(dropped);
    THEN("the session is aborted and the context is free again") {
      auto s = f.client->acquire<counter>(id, std::chrono::seconds{10});
      CHECK(s->value == 1);
      CHECK(s.version() == 1);
    }
  }
}

SCENARIO("actor sessions that reuse replaced commits never touch a value a "
         "reader still holds",
         "[async][snapshot][session]") {
  // Through the owner, the commit a release replaces is kept on the owner's
  // thread; an actor's first write on that thread copy-assigns into it
  // (recycled_value.hpp). Readers keep views of some commits meanwhile.
  fixture f;
  auto id = new_id();
  auto cart_of = [](int64_t round) {
    cart x{"owner " + std::to_string(round), {}, {}, round};
    for (int64_t i = 0; i < round % 4; ++i)
      x.items.push_back(item{"sku " + std::to_string(round * 10 + i), 1});
    if (round % 3 != 0)
      x.tags["tag"] = std::string(20 + round, 'x');
    return x;
  };
  f.client->store<cart>(id, cart_of(0));
  std::vector<std::pair<snapshot_view<cart>, int64_t>> kept;
  kept.emplace_back(f.client->view<cart>(id), 0);
  for (int64_t round = 1; round <= 16; ++round) {
    auto version = run_in_actor<uint64_t>(
      f, [id, round, cart_of](caf::event_based_actor*, client_ptr ac,
                              std::function<void(uint64_t)> done) {
        ac->acquire<cart>(id).then(
          [=](async_session<cart> s) mutable {
            *s = cart_of(round);
            s.release().then(done, [done](caf::error&) { done(0); });
          },
          [done](caf::error&) { done(0); });
      });
    REQUIRE(version == static_cast<uint64_t>(round + 1));
    auto now = f.client->view<cart>(id);
    CHECK(now->owner == cart_of(round).owner);
    if (round % 5 == 0)
      kept.emplace_back(now, round); // a reader keeps this one from here on
  }
  THEN("the values readers kept are as they were when committed") {
    for (auto& [view, round] : kept) {
      auto want = cart_of(round);
      CHECK(view->owner == want.owner);
      CHECK(view->items.size() == want.items.size());
      CHECK(view->tags == want.tags);
      CHECK(view->total == want.total);
    }
  }
}

SCENARIO("an actor's acquire with a deadline times out behind a holder",
         "[async][timeout]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  auto held = f.client->acquire<counter>(id);
  auto code = run_in_actor<errc>(f, [id](caf::event_based_actor*, client_ptr ac,
                                         std::function<void(errc)> done) {
    ac->acquire<counter>(id, std::chrono::milliseconds{30})
      .then([done](async_session<counter>) { done(errc{}); },
            [done](caf::error& e) { done(to_errc(e)); });
  });
  CHECK(code == errc::timeout);
  held.release();
  CHECK(f.client->stats().waiters == 0);
  CHECK(f.client->stats().sessions == 0);
}

SCENARIO("an actor's store while it holds the key proceeds at once",
         "[async][reentrancy]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1});
  auto total
    = run_in_actor<int64_t>(f, [id](caf::event_based_actor*, client_ptr ac,
                                    std::function<void(int64_t)> done) {
        auto fail = [done](caf::error&) { done(-1); };
        ac->acquire<cart>(id).then(
          [=](async_session<cart> s) {
            ac->store<cart>(id, cart{"bob", {}, {}, 10})
              .then(
                [=](uint64_t) mutable {
                  s->total += 1; // on top of what it stored
                  s.release().then([=](uint64_t) mutable { done(s.version()); },
                                   fail);
                },
                fail);
          },
          fail);
      });
  CHECK(total == 3);
  auto v = f.client->snapshot<cart>(id);
  CHECK(v.owner == "bob");
  CHECK(v.total == 11);
}

SCENARIO("an actor that drops its session and lives on gets no stray answer "
         "and the context stays usable",
         "[async][session]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  messages::context_key key{"counter", id};
  std::promise<int> promise;
  auto fut = promise.get_future();
  auto st = f.store;
  auto a = f.sys.spawn([&promise, st, key](caf::event_based_actor* self) {
    auto strays = std::make_shared<int>(0);
    auto ac = std::make_shared<async_client>(self, st);
    auto done = [&promise](int n) { promise.set_value(n); };
    ac->acquire<counter>(key.id).then(
      [=](async_session<counter> s) {
        s->value = 99;
        // Ask the owner itself after the abort: messages from one sender to
        // one receiver arrive in order, and so do the owner's answers. (A
        // direct session, see "the direct path" below, has no owner handle:
        // it is aborted on the context's cell, without any message.)
        auto owner = detail::find_async_held(self, st.registry(), key)->owner;
        auto dest = owner ? owner : st.registry();
        s = async_session<counter>{}; // dropped: aborts with a plain message
        self->request(dest, caf::infinite, messages::snapshot_atom::value, key)
          .then([=](messages::versioned_value&) { done(*strays); },
                [=](caf::error&) { done(-1); });
      },
      [=](caf::error&) { done(-1); });
    // The actor lives on; an answer to the abort would land here.
    return caf::behavior{[strays](uint64_t) { ++*strays; }, [ac](int) {}};
  });
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  auto strays = fut.get();
  caf::anon_send_exit(a, caf::exit_reason::kill);
  THEN("the abort was not answered into the actor's mailbox") {
    CHECK(strays == 0);
  }
  THEN("the context is free and unchanged") {
    auto s = f.client->acquire<counter>(id, std::chrono::seconds{10});
    CHECK(s->value == 1);
    CHECK(s.version() == 1);
  }
}

SCENARIO("an actor's session that only reads makes no copy of the value",
         "[async][session][read]") {
  fixture f;
  auto id = new_id();
  f.client->store<cart>(id, cart{"ann", {}, {}, 1});
  auto committed = f.client->view<cart>(id);
  const cart* seen = &*committed;
  auto log = run_in_actor<std::string>(
    f, [id, seen](caf::event_based_actor*, client_ptr ac, done_fn done) {
      ac->acquire<cart>(id).then(
        [=](async_session<cart> s) mutable {
          std::string out = &s.read() == seen ? "shared" : "a copy";
          s->total = 2;
          out += &s.read() == seen ? ", shared" : ", own copy";
          out += " " + std::to_string(s.read().total);
          s.release().then(
            [=](uint64_t) {
              try {
                s.read();
                done(out + ", readable after the end");
              } catch (const error& e) {
                done(out + ", " + to_string(e.code()));
              }
            },
            [=](caf::error& err) { done("error: " + describe(err)); });
        },
        [=](caf::error& err) { done("error: " + describe(err)); });
    });
  CHECK(log == "shared, own copy 2, session_expired");
  CHECK(committed->total == 1);
  CHECK(f.client->snapshot<cart>(id).total == 2);
}

// -- the direct path of actors (see async_fixture.hpp)
// ---------------------------------------------------------

SCENARIO("an actor takes a free context directly exactly when the local fast "
         "path is on",
         "[async][direct]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  caf::actor a;
  auto granted = spawn_counter_holder(
    f, reaper, id, 2,
    [](int, caf::event_based_actor*, client_ptr, async_session<counter>&) {},
    a);
  auto seen = await(f, granted, "the actor's acquire");
  THEN("its session is a direct one with the fast path, else the owner's") {
    CHECK(seen.direct == fast_path_on());
    CHECK(seen.version == 1);
    CHECK(seen.value == 1);
    CHECK(f.client->stats().sessions == 1);
  }
}

SCENARIO("an actor killed while it holds a session frees the context, even "
         "when its session object lives on elsewhere",
         "[async][direct][failure]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  GIVEN("an actor that committed 2, changed its copy to 99 and handed a copy "
        "of its session to someone else; a thread waits for the context") {
    auto handed = std::make_shared<std::promise<async_session<counter>>>();
    auto fut = handed->get_future();
    auto st = f.store;
    auto a = f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
      auto ac = std::make_shared<async_client>(self, st);
      ac->acquire<counter>(id).then(
        [=](async_session<counter> s) {
          s->value = 2;
          s.commit().then(
            [=](uint64_t) mutable {
              s->value = 99;
              handed->set_value(s);
            },
            [=](caf::error&) { handed->set_value({}); });
        },
        [=](caf::error&) { handed->set_value({}); });
      return {[ac](int) {}};
    });
    reaper.actors.push_back(a);
    auto kept = await(f, fut, "the actor's acquire and commit");
    REQUIRE(kept.version() == 2);
    task<std::pair<int64_t, uint64_t>> waiter{
      f, [&f, id] {
        auto s = f.client->acquire<counter>(id);
        auto seen = std::make_pair(s->value, s.version());
        s.release();
        return seen;
      }};
    wait_for_waiters(f, 1);
    WHEN("the actor is killed") {
      caf::anon_send_exit(a, caf::exit_reason::kill);
      THEN("the thread gets the last committed value; the change is lost") {
        auto seen = waiter.get("the waiter behind the dead actor");
        CHECK(seen.first == 2);
        CHECK(seen.second == 2);
        auto v = f.client->snapshot_versioned<counter>(id);
        CHECK(v.value.value == 2);
        CHECK(v.version == 3);
        kept = async_session<counter>{}; // the last copy: nothing left to end
        auto s = f.client->stats();
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
      }
    }
  }
}

SCENARIO("an actor's session past its lease is revoked and its late commit "
         "fails",
         "[async][direct][lease]") {
  storage_options opts;
  opts.lease = std::chrono::milliseconds{100};
  fixture f{opts};
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  auto late = std::make_shared<std::promise<errc>>();
  auto late_fut = late->get_future();
  caf::actor a;
  auto granted = spawn_counter_holder(
    f, reaper, id, 99,
    [=](int, caf::event_based_actor*, client_ptr, async_session<counter>& s) {
      s.commit().then([=](uint64_t) { late->set_value(errc{}); },
                      [=](caf::error& e) { late->set_value(to_errc(e)); });
    },
    a);
  auto seen = await(f, granted, "the actor's acquire");
  WHEN("a thread waits for the context beyond the lease") {
    auto next = f.client->acquire<counter>(id, std::chrono::seconds{5});
    THEN("it gets the last committed value and a newer token") {
      CHECK(next->value == 1);
      CHECK(next.version() == 1);
      CHECK(next.token() > seen.token);
    }
    AND_WHEN("the late holder commits") {
      caf::anon_send(a, 1);
      THEN("its commit fails with session_expired and changes nothing") {
        CHECK(await(f, late_fut, "the late commit") == errc::session_expired);
        next.release();
        auto v = f.client->snapshot_versioned<counter>(id);
        CHECK(v.value.value == 1);
        CHECK(v.version == 2);
      }
    }
  }
}

SCENARIO("an actor's nested levels share its direct session",
         "[async][direct][reentrancy]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  auto log = run_in_actor<std::string>(
    f, [id](caf::event_based_actor*, client_ptr ac, done_fn done) {
      auto fail = [done](caf::error& e) { done("error: " + describe(e)); };
      ac->acquire<counter>(id).then(
        [=](async_session<counter> outer) {
          outer->value = 2;
          ac->acquire<counter>(id).then(
            [=](async_session<counter> inner) mutable {
              auto shared = inner->value; // the holder's working copy
              inner->value = 3;
              inner.release().then(
                [=](uint64_t) mutable {
                  ac->store<counter>(id, counter{10})
                    .then(
                      [=](uint64_t stored) mutable {
                        outer->value += 1; // on top of what it stored
                        outer.release().then(
                          [=](uint64_t released) mutable {
                            inner.abort().then(
                              [=](uint64_t) { done("inner abort accepted"); },
                              [=](caf::error& e) {
                                done(std::to_string(shared) + " "
                                     + std::to_string(stored) + " "
                                     + std::to_string(released) + " "
                                     + to_string(to_errc(e)));
                              });
                          },
                          fail);
                      },
                      fail);
                },
                fail);
            },
            fail);
        },
        fail);
    });
  CHECK(log == "2 2 3 session_expired");
  auto v = f.client->snapshot_versioned<counter>(id);
  CHECK(v.value.value == 11);
  CHECK(v.version == 3);
  CHECK(f.client->stats().sessions == 0);
}

SCENARIO("an actor that holds a context and erases it ends its session and "
         "the queued acquires",
         "[async][direct][erase]") {
  fixture f;
  actor_reaper reaper;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  auto erased = std::make_shared<std::promise<bool>>();
  auto erased_fut = erased->get_future();
  GIVEN("an actor holding the context and a thread queued behind it") {
    caf::actor a;
    auto granted = spawn_counter_holder(
      f, reaper, id, 2,
      [=](int, caf::event_based_actor*, client_ptr ac,
          async_session<counter>&) {
        ac->erase<counter>(id).then(
          [=](bool existed) { erased->set_value(existed); },
          [=](caf::error&) { erased->set_value(false); });
      },
      a);
    REQUIRE(await(f, granted, "the actor's acquire").value == 1);
    task<std::optional<errc>> waiter{
      f, [&f, id] { return code_of([&] { f.client->acquire<counter>(id); }); }};
    wait_for_waiters(f, 1);
    WHEN("the actor erases the context") {
      caf::anon_send(a, 1);
      THEN("the context is gone, the thread learns it, and a new store starts "
           "at version 1") {
        CHECK(await(f, erased_fut, "the actor's erase"));
        CHECK(waiter.get("the queued thread") == errc::no_such_context);
        auto s = f.client->stats();
        CHECK(s.contexts == 0);
        CHECK(s.sessions == 0);
        CHECK(s.waiters == 0);
        CHECK(error_code_of([&] { f.client->snapshot<counter>(id); })
              == errc::no_such_context);
        f.client->store<counter>(id, counter{7});
        CHECK(f.client->snapshot_versioned<counter>(id).version == 1);
      }
    }
  }
}
