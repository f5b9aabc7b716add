// When an actor's answer handlers run: later than the call that asked,
// in the order answers and other messages arrived, and never after the actor
// quit.

#include "async_fixture.hpp"
#include "fixture.hpp"

#include "test_hooks.hpp"

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <utility>

using namespace ctxstore;
using namespace async_fixture;

SCENARIO("an actor's snapshot handler runs later, never inside the call",
         "[async][snapshot]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{3});
  auto order_seen = run_in_actor<std::string>(
    f, [id](caf::event_based_actor*, client_ptr ac, done_fn done) {
      auto log = std::make_shared<std::string>();
      ac->snapshot<counter>(id).then(
        [=](const counter& c) {
          *log += "value " + std::to_string(c.value) + ";";
          // A second one from inside a handler: still after this handler.
          ac->snapshot<counter>(id).then(
            [=](counter) { done(*log + "second;"); },
            [=](caf::error& e) { done(describe(e)); });
          *log += "handler returned;";
        },
        [=](caf::error& e) { done(describe(e)); });
      *log += "then returned;";
    });
  CHECK(order_seen == "then returned;value 3;handler returned;second;");
}

namespace {

/// Asks for `total` snapshots of `id` one after the other, each from the
/// handler of the one before; `on_answer(self, n)` runs in the n-th handler
/// after it asked for the next one (n = -1: an error).
template <class OnAnswer>
void snapshot_chain(caf::event_based_actor* self, client_ptr ac,
                    const context_id& id, int total, OnAnswer on_answer) {
  auto answered = std::make_shared<int>(0);
  auto step = std::make_shared<std::function<void()>>();
  std::weak_ptr<std::function<void()>> next = step; // the handler keeps it
  *step = [=] {
    ac->snapshot<counter>(id).then(
      [=, step = next.lock()](const counter&) {
        auto n = ++*answered;
        if (n < total)
          (*step)();
        on_answer(self, n);
      },
      [=](caf::error&) { on_answer(self, -1); });
  };
  (*step)();
}

} // namespace

// Answers that need no other actor run in batches (detail/answer_queue.hpp):
// an answer joins the batch that runs the handler which asked for it only if
// nothing else waits in the actor's mailbox.
SCENARIO("an actor's answers and messages run in the order they arrived",
         "[async][snapshot]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  GIVEN("an actor that sends itself a message in the first of a long chain "
        "of snapshot handlers, after it asked for the second") {
    const int total = 3 * static_cast<int>(detail::answer_batch);
    std::promise<std::pair<int, int>> seen; // (answers before the mail, all)
    auto fut = seen.get_future();
    f.sys.spawn([&, id](caf::event_based_actor* self) {
      auto ac = std::make_shared<async_client>(self, f.store);
      auto mail_at = std::make_shared<int>(-1);
      auto last = std::make_shared<int>(0);
      auto finish = [=, &seen] {
        if (*mail_at >= 0 && *last == total) {
          seen.set_value({*mail_at, *last});
          self->quit();
        }
      };
      snapshot_chain(self, ac, id, total,
                     [=](caf::event_based_actor* self, int n) {
                       *last = n;
                       if (n == 1)
                         self->send(self, std::string{"mail"});
                       finish();
                     });
      return caf::behavior{[=](const std::string&) {
        *mail_at = *last;
        finish();
      }};
    });
    REQUIRE(fut.wait_for(std::chrono::seconds{10})
            == std::future_status::ready);
    auto [mail_at, answered] = fut.get();
    THEN("every answer arrives, and the message runs after the second answer "
         "(asked for before it was sent) and before the third") {
      CHECK(answered == total);
      CHECK(mail_at == 2);
    }
  }
}

SCENARIO("no handler of an actor runs after it quit", "[async][snapshot]") {
  fixture f;
  auto id = new_id();
  f.client->store<counter>(id, counter{1});
  GIVEN("a chain of snapshot handlers whose third asks for the fourth, then "
        "quits") {
    std::promise<int> ran; // handlers that ran before the actor was gone
    auto fut = ran.get_future();
    f.sys.spawn([&, id](caf::event_based_actor* self) {
      auto ac = std::make_shared<async_client>(self, f.store);
      auto count = std::make_shared<int>(0);
      self->attach_functor([count, &ran] { ran.set_value(*count); });
      snapshot_chain(self, ac, id, 10,
                     [count](caf::event_based_actor* self, int n) {
                       *count = n;
                       if (n == 3)
                         self->quit();
                     });
      return caf::behavior{[](int) {}};
    });
    REQUIRE(fut.wait_for(std::chrono::seconds{10})
            == std::future_status::ready);
    THEN("the fourth never runs") {
      CHECK(fut.get() == 3);
    }
  }
}
