// The change feed across nodes (issue 22): a watcher on another node gets
// the same changes as a local one, also through a read-only publication,
// and a watcher that goes away leaves nothing behind on the storage's node.

#include <future>
#include <vector>
#include <thread>

#include <caf/io/middleman.hpp>

#include "eventually.hpp"
#include "fixture.hpp"
#include "tls_certs.hpp"
#include "two_nodes.hpp"

using namespace ctxstore;
using feed_nodes = remote_fixture::two_nodes;
using namespace std::chrono_literals;

namespace {

} // namespace

SCENARIO("a watcher on another node gets every change in order",
         "[feed][remote]") {
  feed_nodes n;
  auto id = new_id();
  n.local_client->store(id, counter{1});
  {
    auto w = n.remote_client->watch<counter>(id);
    auto first = w.next(10s);
    REQUIRE(first);
    CHECK(first->version == 1);
    CHECK(first->value->value == 1);
    CHECK(n.local_client->stats().watchers == 1);
    for (int i = 2; i <= 20; ++i)
      (i % 2 == 0 ? n.local_client : n.remote_client)->store(id, counter{i});
    CHECK(n.remote_client->erase<counter>(id));
    for (uint64_t v = 2; v <= 20; ++v) {
      auto x = w.next(10s);
      REQUIRE(x);
      CHECK(x->version == v);
      CHECK(x->skipped == 0);
      CHECK(x->value->value == static_cast<int64_t>(v));
    }
    auto erased = w.next(10s);
    REQUIRE(erased);
    CHECK(!erased->value);
  }
  THEN("its end leaves nothing behind on the storage's node") {
    CHECK(eventually([&] { return n.local_client->stats().watchers == 0; }));
  }
}

SCENARIO("a watcher on another node falls behind after the storage's "
         "watch_buffer",
         "[feed][remote]") {
  storage_options opts;
  opts.watch_buffer = 4;
  feed_nodes n{opts};
  auto id = new_id();
  auto w = n.remote_client->watch<counter>(id);
  constexpr uint64_t commits = 300;
  for (uint64_t i = 1; i <= commits; ++i)
    n.local_client->store(id, counter{static_cast<int64_t>(i)});
  // The watcher reads only now: far more than 4 changes came meanwhile.
  std::vector<change<counter>> xs;
  while (xs.empty() || xs.back().version < commits) {
    auto x = w.next(10s);
    REQUIRE(x);
    xs.push_back(std::move(*x));
  }
  THEN("its queue gave way (the default 1024 would have kept them all), "
       "and every change is accounted for") {
    CHECK(xs.size() < commits / 2);
    uint64_t accounted = 0;
    uint64_t prev = 0;
    for (auto& x : xs) {
      CHECK(x.version == prev + 1 + x.skipped);
      accounted += 1 + x.skipped;
      prev = x.version;
    }
    CHECK(accounted == commits);
    CHECK(xs.back().value->value == static_cast<int64_t>(commits));
  }
}

SCENARIO("a watcher on another node resumes across an erase and a new life",
         "[feed][remote]") {
  feed_nodes n;
  auto id = new_id();
  auto keeper = n.local_client->watch<counter>(id); // retains the changes
  n.local_client->store(id, counter{1});
  n.local_client->store(id, counter{2});
  uint64_t life = 0;
  {
    auto w = n.remote_client->watch<counter>(id);
    auto x = w.next(10s);
    REQUIRE(x);
    CHECK(x->version == 2);
    life = x->incarnation;
    CHECK(life != 0);
  }
  CHECK(n.local_client->erase<counter>(id));
  n.local_client->store(id, counter{10});
  n.local_client->store(id, counter{20});
  THEN("with its incarnation it gets the erase and the new life") {
    auto w = n.remote_client->watch<counter>(id, 2, life);
    std::vector<change<counter>> xs;
    while (xs.size() < 3) {
      auto x = w.next(10s);
      REQUIRE(x);
      xs.push_back(std::move(*x));
    }
    CHECK(!xs[0].value);
    CHECK(xs[0].incarnation == life);
    CHECK(xs[1].version == 1);
    CHECK(xs[2].version == 2);
    CHECK(xs[2].value->value == 20);
    CHECK(xs[2].incarnation != life);
    for (auto& x : xs)
      CHECK(x.skipped == 0);
  }
  THEN("with the version alone it gets the new value, and skipped") {
    auto w = n.remote_client->watch<counter>(id, 2);
    auto x = w.next(10s);
    REQUIRE(x);
    CHECK(x->version == 2);
    CHECK(x->value->value == 20);
    CHECK(x->skipped > 0);
  }
}

SCENARIO("watch_all works across nodes and bad watches are refused",
         "[feed][remote]") {
  feed_nodes n;
  auto w = n.remote_client->watch_all<counter>();
  REQUIRE(eventually([&] { return n.local_client->stats().watchers == 1; }));
  auto a = new_id();
  auto b = new_id();
  n.local_client->store(a, counter{1});
  n.local_client->store(b, counter{2});
  auto x = w.next(10s);
  auto y = w.next(10s);
  REQUIRE(x);
  REQUIRE(y);
  CHECK(x->id == a);
  CHECK(y->id == b);
  CHECK(error_code_of([&] { n.remote_client->watch<counter>(context_id{}); })
        == errc::bad_request);
}

SCENARIO("a read-only publication lets watches through", "[feed][remote]") {
  publish_options popts;
  popts.read_only = true;
  feed_nodes n{popts};
  auto id = new_id();
  auto w = n.remote_client->watch<counter>(id);
  REQUIRE(eventually([&] { return n.local_client->stats().watchers == 1; }));
  CHECK(error_code_of([&] { n.remote_client->store(id, counter{1}); })
        == errc::forbidden);
  n.local_client->store(id, counter{7});
  auto x = w.next(10s);
  REQUIRE(x);
  CHECK(x->version == 1);
  CHECK(x->value->value == 7);
}

SCENARIO("an actor on another node watches, and its end is noticed",
         "[feed][remote][async]") {
  feed_nodes n;
  auto id = new_id();
  std::promise<std::vector<uint64_t>> result;
  auto fut = result.get_future();
  auto st = n.remote;
  auto seen = std::make_shared<std::vector<uint64_t>>();
  auto actor = n.client_sys.spawn([&, st, seen](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, st);
    auto handle = std::make_shared<watch_handle>(ac->watch<counter>(
      id, 0,
      [seen, &result](change<counter>& c) {
        seen->push_back(c.version);
        if (c.version == 5)
          result.set_value(*seen);
      },
      [](caf::error&) {}));
    return caf::behavior{[ac, handle](int) {}};
  });
  REQUIRE(eventually([&] { return n.local_client->stats().watchers == 1; }));
  for (int i = 1; i <= 5; ++i)
    n.local_client->store(id, counter{i});
  REQUIRE(fut.wait_for(10s) == std::future_status::ready);
  CHECK(fut.get() == std::vector<uint64_t>{1, 2, 3, 4, 5});
  caf::anon_send_exit(actor, caf::exit_reason::kill);
  THEN("the storage's node drops its watch") {
    CHECK(eventually([&] { return n.local_client->stats().watchers == 0; }));
  }
}
