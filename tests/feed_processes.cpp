#include "eventually.hpp"
#include "fixture.hpp"

// The change feed across processes (issue 22): a watcher in another process
// (examples/remote_client.cpp, `watch`) whose node dies leaves nothing behind
// on the storage's node (examples/node.cpp). Needs the paths of both programs
// from the build; without them this file has no scenarios.

#ifdef CTXSTORE_NODE_BINARY

#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <memory>
#include <thread>

#include <boost/uuid/uuid_io.hpp>
#include <caf/io/middleman.hpp>

#include "../examples/context_types.hpp"
#include "processes.hpp"
#include "tls_certs.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;

namespace {

struct client_config : test_config {
  client_config() {
    load<caf::io::middleman>();
    if (tls_certs::remote_over_tls())
      tls_certs::use(*this, "client");
  }
};

/// A remote_client program talking to the node on `port`.
std::unique_ptr<child_process> start_client(uint16_t port,
                                            std::vector<std::string> args) {
  args.insert(args.begin(), std::to_string(port));
  if (tls_certs::remote_over_tls()) {
    auto tls = tls_certs::options("client");
    args.insert(args.begin(), tls.begin(), tls.end());
  }
  return std::make_unique<child_process>(CTXSTORE_REMOTE_CLIENT_BINARY,
                                         std::move(args));
}

} // namespace

SCENARIO("a watcher whose node is killed leaves nothing behind on the "
         "storage's node",
         "[feed][multiprocess][failure]") {
  node_process node;
  client_config cfg;
  caf::actor_system sys{cfg};
  auto st = connect(sys, "127.0.0.1", node.port);
  REQUIRE(st);
  {
    blocking_client here{sys, *st};
    auto id = new_id();
    here.store<cart>(id, cart{"ann", {}, {}, 1});
    auto baseline = here.stats().watchers;
    auto watcher
      = start_client(node.port, {"watch", boost::uuids::to_string(id)});
    REQUIRE(watcher->read_line("remote_client: watching", 10s));
    CHECK(here.stats().watchers == baseline + 1);
    here.store<cart>(id, cart{"ann", {}, {}, 2});
    REQUIRE(watcher->read_line("remote_client: change 2", 10s));
    WHEN("the watcher's process gets SIGKILL") {
      watcher->signal(SIGKILL);
      auto status = watcher->wait_exit(5s);
      REQUIRE(status);
      CHECK(WIFSIGNALED(*status));
      THEN("the storage's node drops its watch") {
        CHECK(eventually([&] { return here.stats().watchers == baseline; }));
        here.store<cart>(id, cart{"ann", {}, {}, 3}); // nobody to tell
        CHECK(here.stats().watchers == baseline);
      }
    }
  }
  *st = storage{};
}

#endif // CTXSTORE_NODE_BINARY
