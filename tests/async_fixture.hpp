#pragma once

// Shared by the specifications of the async client (tests/async_*.cpp): a
// body run inside an event-based actor with an async client, and an actor
// that holds a counter's session on command.
//
// The direct path of actors: in the storage's process an actor takes a free
// context under the context's mutex, without a message, and ends its session
// there (see actors/.../context.hpp); as soon as anybody else is involved it asks the
// owner. ctest runs every specification with the fast path off too
// (specs_without_local_fast_path): the same rules hold on both paths.

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>

#include "fixture.hpp"
#include "test_hooks.hpp"
#include "waiting.hpp"

namespace async_fixture {

using namespace ctxstore;

/// Spawns an actor that runs `body(self, client, done)` and waits for it to
/// call `done(result)`; returns the result. Fails the test after 10 s.
template <class R, class Body>
R run_in_actor(fixture& f, Body body) {
  std::promise<R> promise;
  auto fut = promise.get_future();
  f.sys.spawn([&](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, f.store);
    auto done = [self, &promise](R result) {
      promise.set_value(std::move(result));
      self->quit();
    };
    body(self, ac, done);
    return caf::behavior{[ac](int) {}};
  });
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  return fut.get();
}

using done_fn = std::function<void(std::string)>;
using client_ptr = std::shared_ptr<async_client>;

/// True unless this run has the local fast path off (see fixture.hpp).
inline bool fast_path_on() {
  return with_test_fast_path({}).local_fast_path;
}

/// What a holder actor reports when it was granted.
struct grant_seen {
  uint64_t version = 0;
  uint64_t token = 0;
  int64_t value = 0;
  bool direct = false; // a session on the context's cell (no owner handle)
};

/// Spawns an actor that acquires the counter `id`, sets its working copy to
/// `change` without committing, and reports its grant; then each `int`
/// command ends up in `cmd(self, ac, session)`.
template <class Cmd>
std::future<grant_seen>
spawn_counter_holder(fixture& f, waiting::actor_reaper& reaper,
                     const context_id& id, int64_t change, Cmd cmd,
                     caf::actor& out) {
  auto granted = std::make_shared<std::promise<grant_seen>>();
  auto fut = granted->get_future();
  auto st = f.store;
  out = f.sys.spawn([=](caf::event_based_actor* self) -> caf::behavior {
    auto ac = std::make_shared<async_client>(self, st);
    auto kept = std::make_shared<async_session<counter>>();
    ac->acquire<counter>(id).then(
      [=](async_session<counter> s) {
        messages::context_key key{"counter", id};
        auto held = detail::find_async_held(self, st.registry(), key);
        auto seen = grant_seen{s.version(), s.token(), s->value,
                               held && held->cell != nullptr};
        s->value = change;
        *kept = s;
        granted->set_value(seen);
      },
      [=](caf::error& err) {
        granted->set_exception(std::make_exception_ptr(
          ctxstore::error{to_errc(err), describe(err)}));
      });
    return {[=](int x) mutable { cmd(x, self, ac, *kept); }};
  });
  reaper.actors.push_back(out);
  return fut;
}

} // namespace async_fixture
