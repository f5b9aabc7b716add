// A client that stops reading: it connects to a node (examples/node.cpp),
// reads one snapshot of a cart, then sends N async snapshots of it at once
// and, at the first reply to them, stops itself (SIGSTOP), as a hung process
// would, with the other answers still to come. Once continued (SIGCONT) it
// waits until every request is answered or failed and reports:
//   pipelining_client: first reply ok          (or: failed, if the node had
//                                               cut it off already)
//   pipelining_client: answered A failed F     (A + F = N)
// Usage: ctxstore_pipelining_client <port> <uuid> <n>
// Exit codes: 0 reported, 1 no connection or no report within 60 s after
// the SIGCONT, 2 bad arguments. Used by tests/stalled_peer.cpp.

#include <signal.h>

#include <chrono>
#include <future>
#include <iostream>
#include <memory>
#include <string>

#include <boost/uuid/string_generator.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "../../examples/context_types.hpp"
#include "ctxstore/ctxstore.hpp"

namespace {

struct client_config : caf::actor_system_config {
  client_config() {
    load<caf::io::middleman>();
    ctxstore::apply_remote_defaults(*this);
    examples::add_example_types(*this);
    set("logger.console", caf::atom("none"));
  }
};

struct tally {
  int n = 0;
  int answered = 0;
  int failed = 0;
  std::promise<void> done;

  void count(bool ok) {
    (ok ? answered : failed) += 1;
    if (answered + failed == 1) {
      std::cout << "pipelining_client: first reply " << (ok ? "ok" : "failed")
                << std::endl;
      raise(SIGSTOP); // stops every thread: nothing reads any more
    }
    if (answered + failed == n)
      done.set_value();
  }
};

} // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: ctxstore_pipelining_client <port> <uuid> <n>\n";
    return 2;
  }
  client_config cfg;
  caf::actor_system sys{cfg};
  auto port = static_cast<uint16_t>(std::stoi(argv[1]));
  auto id = boost::uuids::string_generator{}(std::string{argv[2]});
  auto st = ctxstore::connect(sys, "127.0.0.1", port);
  if (!st) {
    std::cerr << "pipelining_client: " << ctxstore::describe(st.error())
              << std::endl;
    return 1;
  }
  {
    ctxstore::blocking_client warm_up{sys, *st};
    warm_up.snapshot<examples::cart>(id);
  }
  auto t = std::make_shared<tally>();
  t->n = std::stoi(argv[3]);
  auto result = t->done.get_future();
  sys.spawn([t, id, remote = *st](caf::event_based_actor* self) {
    ctxstore::async_client ac{self, remote};
    for (int i = 0; i < t->n; ++i)
      ac.snapshot<examples::cart>(id).then(
        [t](const examples::cart&) { t->count(true); },
        [t](caf::error&) { t->count(false); });
    return caf::behavior{[](int) {}};
  });
  auto ok
    = result.wait_for(std::chrono::seconds{60}) == std::future_status::ready;
  if (ok)
    std::cout << "pipelining_client: answered " << t->answered << " failed "
              << t->failed << std::endl;
  std::cout.flush();
  std::_Exit(ok ? 0 : 1); // the spawned actor never quits
}
