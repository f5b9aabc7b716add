// The async client's requests from inside an event-based actor: store,
// snapshot, update and erase answered with `.then`, errors as values, shared
// values stored without a copy, a moved-from client, and new contexts created
// directly when the local fast path is on.

#include "async_fixture.hpp"
#include "fixture.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

using namespace ctxstore;
using namespace async_fixture;

SCENARIO("an actor stores, snapshots, updates and erases contexts", "[async]") {
  fixture f;
  auto id = new_id();
  auto log = run_in_actor<std::string>(
    f, [id](caf::event_based_actor*, client_ptr ac, done_fn done) {
      auto fail = [done](caf::error& err) { done("error: " + describe(err)); };
      ac->store<cart>(id, cart{"ann", {}, {}, 1})
        .then(
          [=](uint64_t v1) {
            ac->update<cart>(id, [](cart& c) { c.total += 41; })
              .then(
                [=](uint64_t v2) {
                  ac->snapshot_versioned<cart>(id).then(
                    [=](versioned<cart> x) {
                      ac->erase<cart>(id).then(
                        [=](bool existed) {
                          done(std::to_string(v1) + " " + std::to_string(v2)
                               + " " + x.value.owner + " "
                               + std::to_string(x.value.total) + " "
                               + std::to_string(x.version) + " "
                               + (existed ? "erased" : "missing"));
                        },
                        fail);
                    },
                    fail);
                },
                fail);
          },
          fail);
    });
  CHECK(log == "1 2 ann 42 2 erased");
  CHECK(f.client->stats().contexts == 0);
}

SCENARIO("an actor gets errors as values", "[async]") {
  fixture f;
  auto id = new_id();
  auto code = run_in_actor<errc>(f, [id](caf::event_based_actor*, client_ptr ac,
                                         std::function<void(errc)> done) {
    ac->snapshot<cart>(id).then([done](cart) { done(errc{}); },
                                [done](caf::error& e) { done(to_errc(e)); });
  });
  CHECK(code == errc::no_such_context);
}

SCENARIO("an async client that was moved from still talks to its storage",
         "[async]") {
  fixture f;
  auto id = new_id();
  f.client->store(id, cart{"ann", {}, {}, 7});
  auto total = run_in_actor<int64_t>(f, [id](caf::event_based_actor*,
                                             client_ptr ac, auto done) {
    auto other = std::make_shared<async_client>(std::move(*ac));
    ac->snapshot<cart>(id).then(
      [=](cart c) {
        other->snapshot<cart>(id).then([=](cart d) { done(c.total + d.total); },
                                       [=](caf::error&) { done(-1); });
      },
      [=](caf::error&) { done(-2); });
  });
  CHECK(total == 14);
}

SCENARIO("an actor stores a shared value without a copy, also while it holds "
         "the key",
         "[async][store][shared]") {
  fixture f;
  auto fresh = new_id();
  auto held = new_id();
  f.client->store<cart>(held, cart{"ann", {}, {}, 1});
  auto value = share(cart{"bob", {}, {}, 10});
  auto log = run_in_actor<std::string>(
    f, [=](caf::event_based_actor*, client_ptr ac, done_fn done) {
      auto fail = [done](caf::error& err) { done("error: " + describe(err)); };
      ac->store(fresh, value).then(
        [=](uint64_t) {
          ac->snapshot<cart>(fresh).then(
            [=](const cart& stored) {
              auto same = &stored == &*value ? "same object" : "a copy";
              ac->acquire<cart>(held).then(
                [=](async_session<cart> s) {
                  ac->store(held, value).then(
                    [=](uint64_t) mutable {
                      s->total += 1; // on top of what it stored
                      s.release().then(
                        [=](uint64_t version) {
                          done(std::string{same} + " "
                               + std::to_string(version));
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
  CHECK(log == "same object 3");
  auto now = f.client->snapshot<cart>(held);
  CHECK(now.owner == "bob");
  CHECK(now.total == 11);
  CHECK(value->total == 10); // the session's write copied it
}

SCENARIO("an actor creates a new context directly exactly when the local "
         "fast path is on",
         "[async][direct]") {
  fixture f;
  auto id = new_id();
  auto seen = run_in_actor<std::string>(
    f, [&f, id](caf::event_based_actor*, client_ptr ac, done_fn done) {
      ac->store<counter>(id, counter{7})
        .then([done](uint64_t version) { done(std::to_string(version)); },
              [done](caf::error& e) { done(describe(e)); });
      // Before the answer: on the board already if it was created directly.
      messages::context_key key{"counter", id};
      if (fast_path_on() && !detail::read_board(*f.store.board(), key))
        done("not created directly");
    });
  CHECK(seen == "1");
  CHECK(f.client->snapshot<counter>(id).value == 7);
  CHECK(f.client->stats().contexts == 1);
}
