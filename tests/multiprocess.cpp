#include "eventually.hpp"
#include "fixture.hpp"

// Nodes and clients in separate processes on 127.0.0.1: the node program
// (examples/node.cpp) hosts the storage; this test process and the
// remote_client program (examples/remote_client.cpp) use it. The paths of
// both programs come from the build (CTXSTORE_NODE_BINARY,
// CTXSTORE_REMOTE_CLIENT_BINARY); without them this file has no scenarios.

#ifdef CTXSTORE_NODE_BINARY

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <iostream>
#include <optional>
#include <thread>

#include <caf/binary_serializer.hpp>
#include <caf/io/middleman.hpp>

#include "../examples/context_types.hpp"
#include "processes.hpp"
#include "tls_certs.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;
using namespace child_processes;

namespace {

double ms_since(clock_type::time_point t0, clock_type::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}

/// `args` after the CAF options of mutual TLS for `who` when this run
/// repeats the remote specifications over TLS (tls_certs.hpp).
std::vector<std::string> maybe_tls(const char* who,
                                   std::vector<std::string> args) {
  if (!tls_certs::remote_over_tls())
    return args;
  auto result = tls_certs::options(who);
  result.insert(result.end(), args.begin(), args.end());
  return result;
}

/// A remote_client program talking to the node on `port`.
std::unique_ptr<child_process> start_client(uint16_t port,
                                            std::vector<std::string> args) {
  args.insert(args.begin(), std::to_string(port));
  return std::make_unique<child_process>(CTXSTORE_REMOTE_CLIENT_BINARY,
                                         maybe_tls("client", std::move(args)));
}

/// Frees a thread that may still wait in a queue before its future goes,
/// also when a failed REQUIRE unwinds the scope: `unblock()` (kill the holder
/// or the node), then the thread must end within a bound (else: `hang`).
template <class T>
struct release_on_exit {
  std::future<T>& task;
  std::function<void()> unblock;
  const char* what;

  ~release_on_exit() {
    unblock();
    if (task.valid() && task.wait_for(5000ms) != std::future_status::ready)
      hang(what, 5000ms);
  }
};

/// The code of the ctxstore::error that `fn` throws, errc{} if it returns.
template <class F>
errc code_of(F&& fn) {
  try {
    fn();
  } catch (const ctxstore::error& e) {
    return e.code();
  }
  return errc{};
}

// -- this process as a client node -------------------------------------------

// This process registers the tests' `cart` as "cart": context type names
// are process-wide, and the other specifications in this binary bind "cart"
// to that type. The node binds "cart" to examples::cart; the two have the
// same fields in the same order, which is all the wire needs (checked below).
struct client_config : test_config {
  client_config() {
    load<caf::io::middleman>();
    if (tls_certs::remote_over_tls())
      tls_certs::use(*this, "client");
  }
};

/// An actor system connected to a node; destroys its clients and handles
/// before the system.
struct client_node {
  explicit client_node(uint16_t port) : sys(cfg) {
    auto st = connect(sys, "127.0.0.1", port);
    INFO((st ? std::string{} : describe(st.error())));
    REQUIRE(st);
    remote = *st;
    client = std::make_unique<blocking_client>(sys, remote);
  }

  ~client_node() {
    client.reset();
    remote = storage{};
  }

  client_config cfg;
  caf::actor_system sys;
  storage remote;
  std::unique_ptr<blocking_client> client;
};

} // namespace

SCENARIO("the tests' cart is the example cart on the wire", "[multiprocess]") {
  client_config cfg;
  caf::actor_system sys{cfg};
  auto bytes = [&](auto x) {
    std::vector<char> buf;
    caf::binary_serializer sink{sys, buf};
    REQUIRE_FALSE(sink(x));
    return buf;
  };
  auto ours = bytes(cart{"ann", {{"apple", 2}}, {{"k", "v"}}, 42});
  auto theirs = bytes(examples::cart{"ann", {{"apple", 2}}, {{"k", "v"}}, 42});
  CHECK(ours == theirs);
}

SCENARIO("a client process killed while holding a session loses it",
         "[multiprocess][failure]") {
  GIVEN("a node, a cart with total 1, and a process holding it with an "
        "uncommitted change") {
    node_process node;
    client_node here{node.port};
    auto id = new_id();
    here.client->store<cart>(id, cart{"ann", {}, {}, 1});
    auto holder
      = start_client(node.port, {"hold", boost::uuids::to_string(id)});
    REQUIRE(holder->read_line("remote_client: holding ", 10s));
    REQUIRE(here.client->stats().sessions == 1);
    WHEN("a client here queues for the cart and the holder gets SIGKILL") {
      auto waiter = std::async(std::launch::async, [&] {
        blocking_client c{here.sys, here.remote};
        auto s = c.acquire<cart>(id);
        auto granted = clock_type::now();
        return std::make_pair(granted, s->total);
      });
      release_on_exit<std::pair<clock_type::time_point, int64_t>> guard{
        waiter, [&] { holder->stop(); }, "the waiter"};
      REQUIRE(eventually([&] { return here.client->stats().waiters == 1; }));
      auto killed = clock_type::now();
      holder->signal(SIGKILL);
      THEN("the waiter is granted at once and sees the last committed cart") {
        auto [granted, total] = finish(waiter, 5000ms, "the waiter");
        std::cout << "multiprocess: holder killed (SIGKILL) -> waiter granted "
                     "after "
                  << ms_since(killed, granted) << " ms" << std::endl;
        CHECK(total == 1);
        CHECK(ms_since(killed, granted) < 5000);
        auto v = here.client->snapshot_versioned<cart>(id);
        CHECK(v.value.total == 1);
        CHECK(v.version == 2); // the store, then the waiter's release
        auto status = holder->wait_exit(5000ms);
        REQUIRE(status);
        CHECK(WIFSIGNALED(*status));
      }
    }
  }
}

SCENARIO("a killed node fails its clients with storage_down and never hangs",
         "[multiprocess][failure]") {
  GIVEN("a node, a session held here, and a client here queued behind it") {
    node_process node;
    client_node here{node.port};
    auto id = new_id();
    here.client->store<cart>(id, cart{"ann", {}, {}, 1});
    auto s = here.client->acquire<cart>(id);
    s->total = 2;
    auto waiter = std::async(std::launch::async, [&] {
      blocking_client c{here.sys, here.remote};
      auto code = code_of([&] { c.acquire<cart>(id); });
      return std::make_pair(clock_type::now(), code);
    });
    release_on_exit<std::pair<clock_type::time_point, errc>> guard{
      waiter, [&] { node.proc.stop(); }, "the queued acquire"};
    REQUIRE(eventually([&] { return here.client->stats().waiters == 1; }));
    WHEN("the node gets SIGKILL") {
      auto killed = clock_type::now();
      node.proc.signal(SIGKILL);
      THEN("the waiter and the holder get storage_down") {
        auto [failed, code] = finish(waiter, 5000ms, "the queued acquire");
        std::cout << "multiprocess: node killed (SIGKILL) -> queued acquire "
                     "failed after "
                  << ms_since(killed, failed) << " ms" << std::endl;
        CHECK(code == errc::storage_down);
        auto commit = std::async(std::launch::async,
                                 [&] { return code_of([&] { s.commit(); }); });
        CHECK(finish(commit, 5000ms, "the holder's commit")
              == errc::storage_down);
        auto abort = std::async(std::launch::async,
                                [&] { return code_of([&] { s.abort(); }); });
        CHECK(finish(abort, 5000ms, "the holder's abort")
              == errc::storage_down);
        CHECK_FALSE(s);
      }
      AND_THEN("requests sent after the node died get storage_down too") {
        // Wait until the connection loss is known here (the queued acquire
        // fails), so that the requests below start after it.
        finish(waiter, 5000ms, "the queued acquire");
        auto t0 = clock_type::now();
        auto old_client = std::async(std::launch::async, [&] {
          return code_of([&] { here.client->snapshot<cart>(id); });
        });
        CHECK(finish(old_client, 5000ms, "a snapshot by an old client")
              == errc::storage_down);
        auto new_client = std::async(std::launch::async, [&] {
          blocking_client c{here.sys, here.remote};
          return code_of([&] { c.store<cart>(id, cart{}); });
        });
        CHECK(finish(new_client, 5000ms, "a store by a new client")
              == errc::storage_down);
        std::promise<errc> async_result;
        auto async_code = async_result.get_future();
        auto remote = here.remote;
        here.sys.spawn([&async_result, remote](caf::event_based_actor* self) {
          async_client ac{self, remote};
          ac.stats().then(
            [&async_result, self](storage_stats) {
              async_result.set_value(errc{});
              self->quit();
            },
            [&async_result, self](caf::error& err) {
              async_result.set_value(to_errc(err));
              self->quit();
            });
          return caf::behavior{[](int) {}}; // alive until answered
        });
        CHECK(finish(async_code, 5000ms, "an async client's request")
              == errc::storage_down);
        std::cout << "multiprocess: node dead -> three new requests failed "
                     "within "
                  << ms_since(t0, clock_type::now()) << " ms" << std::endl;
        auto again = std::async(std::launch::async, [&] {
          return connect(here.sys, "127.0.0.1", node.port);
        });
        auto handle = finish(again, 5000ms, "connect to the dead port");
        REQUIRE_FALSE(handle);
        CHECK(to_errc(handle.error()) == errc::storage_down);
        auto abort = std::async(std::launch::async,
                                [&] { return code_of([&] { s.abort(); }); });
        CHECK(finish(abort, 5000ms, "the holder's abort")
              == errc::storage_down);
      }
    }
  }
}

SCENARIO("a node stopped with SIGTERM says so and its clients get storage_down",
         "[multiprocess][failure]") {
  node_process node;
  client_node here{node.port};
  auto id = new_id();
  here.client->store<cart>(id, cart{"ann", {}, {}, 1});
  auto s = here.client->acquire<cart>(id);
  auto waiter = std::async(std::launch::async, [&] {
    blocking_client c{here.sys, here.remote};
    return code_of([&] { c.acquire<cart>(id); });
  });
  release_on_exit<errc> guard{waiter, [&] { node.proc.stop(); },
                              "the queued acquire"};
  REQUIRE(eventually([&] { return here.client->stats().waiters == 1; }));
  node.proc.signal(SIGTERM);
  REQUIRE(node.proc.read_line("node: stopped", 10s));
  auto status = node.proc.wait_exit(10s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
  CHECK(finish(waiter, 5000ms, "the queued acquire") == errc::storage_down);
  auto commit = std::async(std::launch::async,
                           [&] { return code_of([&] { s.commit(); }); });
  CHECK(finish(commit, 5000ms, "the holder's commit") == errc::storage_down);
  auto abort = std::async(std::launch::async,
                          [&] { return code_of([&] { s.abort(); }); });
  CHECK(finish(abort, 5000ms, "the holder's abort") == errc::storage_down);
  auto later = std::async(std::launch::async, [&] {
    return code_of([&] { here.client->snapshot<cart>(id); });
  });
  CHECK(finish(later, 5000ms, "a later snapshot") == errc::storage_down);
}

SCENARIO(
  "processes share a context with snapshots while held and queued updates",
  "[multiprocess][snapshot][queue]") {
  GIVEN("a node, a cart with total 1, and a process holding it with an "
        "uncommitted change") {
    node_process node;
    client_node here{node.port};
    auto id = new_id();
    auto uuid = boost::uuids::to_string(id);
    here.client->store<cart>(id, cart{"ann", {}, {}, 1});
    auto holder = start_client(node.port, {"hold", uuid});
    REQUIRE(holder->read_line("remote_client: holding ", 10s));
    THEN("snapshots from this and a third process show the last commit") {
      auto v = here.client->snapshot_versioned<cart>(id);
      CHECK(v.value.total == 1);
      CHECK(v.version == 1);
      auto reader = start_client(node.port, {"snapshot", uuid});
      auto line = reader->read_line("total=", 10s);
      REQUIRE(line);
      CHECK(*line == "total=1 version=1");
      auto status = reader->wait_exit(10s);
      REQUIRE(status);
      CHECK(WIFEXITED(*status));
      CHECK(WEXITSTATUS(*status) == 0);
    }
    AND_THEN("another process's updates wait for the holder, then all apply") {
      auto updater = start_client(node.port, {"update", uuid, "3"});
      REQUIRE(eventually([&] { return here.client->stats().waiters == 1; }));
      holder->signal(SIGKILL);
      REQUIRE(updater->read_line("remote_client: updated 3 times", 10s));
      auto status = updater->wait_exit(10s);
      REQUIRE(status);
      CHECK(WIFEXITED(*status));
      CHECK(WEXITSTATUS(*status) == 0);
      auto v = here.client->snapshot_versioned<cart>(id);
      CHECK(v.value.total == 4); // the holder's +1000 is gone
      CHECK(v.version == 4);
    }
  }
}

#endif // CTXSTORE_NODE_BINARY
