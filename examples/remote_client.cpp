// Pattern: a client in another process. It connects to a storage that a node
// (node.cpp) published on 127.0.0.1 and uses it like a local one.
//
// Usage: remote_client [CAF options] <port> [command]
//   demo               (default) store, session, snapshot while held, update,
//                      errors; last line "remote_client: ok"
//   hold <uuid>        acquire that cart, change it without committing, print
//                      "remote_client: holding <token>", then wait forever
//                      (a test kills this process to show that the node frees
//                      the session of a dead client and drops its change)
//   watch <uuid>       watch that cart, print "remote_client: watching", then
//                      "remote_client: change <version>" per change, forever
//                      (a test kills this process to show that the node keeps
//                      nothing of a watcher whose node is gone)
//   update <uuid> <n>  add 1 to the cart's total in n sessions, one by one
//   snapshot <uuid>    print "total=<n> version=<v>" of the last commit
// Mutual TLS: give the CAF options --openssl.certificate=client.pem
// --openssl.key=client.key --openssl.cafile=ca.pem (README, "Remote access").
// Exit codes: 0 ok, 1 a ctxstore error (its text on stderr), 2 bad arguments.

#include <unistd.h>

#include <chrono>
#include <future>
#include <iostream>
#include <string>

#include <boost/uuid/random_generator.hpp>
#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "context_types.hpp"
#include "ctxstore/ctxstore.hpp"

using examples::cart;
using examples::item;

namespace {

struct client_config : caf::actor_system_config {
  client_config() {
    load<caf::io::middleman>();
    // TLS when the openssl.* options are given (--openssl.certificate=...,
    // --openssl.key=..., --openssl.cafile=...); plain otherwise.
    ctxstore::load_tls(*this);
    // Lower-latency CAF settings for remote use; CAF options override them.
    ctxstore::apply_remote_defaults(*this);
    examples::add_example_types(*this);
  }
};

#define CHECK_OR_FAIL(cond)                                                    \
  if (!(cond)) {                                                               \
    std::cerr << "remote_client: check failed: " #cond << std::endl;           \
    return false;                                                              \
  }

bool demo(ctxstore::blocking_client& client) {
  auto id = boost::uuids::random_generator{}();
  client.store<cart>(id, cart{"ann", {{"apple", 2}}, {}, 2});
  auto v1 = client.snapshot_versioned<cart>(id).version;
  std::cout << "store: cart " << id << " (ann, 2 apples), version " << v1
            << std::endl;
  { // An exclusive session; a snapshot from another thread does not wait.
    auto s = client.acquire<cart>(id);
    s->items.push_back(item{"pear", 3});
    s->total += 3;
    std::cout << "session: token " << s.token() << ", added 3 pears"
              << std::endl;
    auto other = std::async(std::launch::async, [c = client, id]() mutable {
      return c.snapshot_versioned<cart>(id);
    });
    CHECK_OR_FAIL(other.wait_for(std::chrono::seconds{10})
                  == std::future_status::ready);
    auto seen = other.get();
    std::cout << "snapshot (other thread, session held): total="
              << seen.value.total << " version=" << seen.version << std::endl;
    CHECK_OR_FAIL(seen.value.total == 2 && seen.version == v1);
    auto busy = std::async(std::launch::async, [c = client, id]() mutable {
      try {
        c.acquire<cart>(id, std::chrono::milliseconds{0}); // try once
        return ctxstore::errc{};
      } catch (const ctxstore::error& e) {
        std::cout << "acquire (other thread, no wait): "
                  << ctxstore::to_string(e.code()) << std::endl;
        return e.code();
      }
    });
    CHECK_OR_FAIL(busy.get() == ctxstore::errc::timeout);
    s.commit();
    std::cout << "session: committed, snapshot: total="
              << client.snapshot<cart>(id).total << std::endl;
    s.release();
  }
  client.update<cart>(id, [](cart& c) { c.total += 10; });
  auto after = client.snapshot_versioned<cart>(id);
  std::cout << "update: total=" << after.value.total
            << " version=" << after.version << std::endl;
  CHECK_OR_FAIL(after.value.total == 15 && after.value.items.size() == 2);
  auto failed = false;
  try {
    client.snapshot<cart>(boost::uuids::random_generator{}());
  } catch (const ctxstore::error& e) {
    std::cout << "error: " << ctxstore::to_string(e.code()) << ": " << e.what()
              << std::endl;
    failed = e.code() == ctxstore::errc::no_such_context;
  }
  CHECK_OR_FAIL(failed);
  return true;
}

[[noreturn]] void hold(ctxstore::blocking_client& client,
                       const ctxstore::context_id& id) {
  auto s = client.acquire<cart>(id);
  s->total += 1000; // never committed
  s->tags["held-by"] = std::to_string(getpid());
  std::cout << "remote_client: holding " << s.token() << std::endl;
  for (;;)
    pause(); // until a signal ends the process
}

[[noreturn]] void watch(ctxstore::blocking_client& client,
                        const ctxstore::context_id& id) {
  auto w = client.watch<cart>(id);
  std::cout << "remote_client: watching" << std::endl;
  for (;;)
    if (auto c = w.next(std::chrono::hours{1}))
      std::cout << "remote_client: change " << c->version << std::endl;
}

int run(caf::actor_system& sys, uint16_t port,
        const std::vector<std::string>& args) {
  auto st = ctxstore::connect(sys, "127.0.0.1", port);
  if (!st) {
    std::cerr << "remote_client: " << ctxstore::describe(st.error())
              << std::endl;
    return 1;
  }
  ctxstore::blocking_client client{sys, *st};
  auto cmd = args.size() > 1 ? args[1] : "demo";
  auto id = args.size() > 2 ? boost::uuids::string_generator{}(args[2])
                            : ctxstore::context_id{};
  if (cmd == "demo" && args.size() <= 2) {
    std::cout << "remote_client: connected to 127.0.0.1:" << port << std::endl;
    return demo(client) ? 0 : 1;
  } else if (cmd == "hold" && args.size() == 3) {
    hold(client, id);
  } else if (cmd == "watch" && args.size() == 3) {
    watch(client, id);
  } else if (cmd == "update" && args.size() == 4) {
    auto n = std::stoi(args[3]);
    for (int i = 0; i < n; ++i)
      client.update<cart>(id, [](cart& c) { c.total += 1; });
    std::cout << "remote_client: updated " << n << " times" << std::endl;
    return 0;
  } else if (cmd == "snapshot" && args.size() == 3) {
    auto v = client.snapshot_versioned<cart>(id);
    std::cout << "total=" << v.value.total << " version=" << v.version
              << std::endl;
    return 0;
  }
  std::cerr << "usage: remote_client [CAF options] <port> "
               "[demo|hold <uuid>|watch <uuid>|update <uuid> <n>|snapshot "
               "<uuid>]\n";
  return 2;
}

} // namespace

int main(int argc, char** argv) {
  client_config cfg;
  // CAF options first; parsing stops at the port, the rest is `remainder`.
  if (auto err = cfg.parse(argc, argv)) {
    std::cerr << "remote_client: bad arguments: " << caf::to_string(err)
              << std::endl;
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  auto& args = cfg.remainder;
  int port = 0;
  try {
    port = args.empty() ? 0 : std::stoi(args[0]);
  } catch (const std::exception&) {
    port = 0;
  }
  if (port <= 0 || port > 65535) {
    std::cerr << "usage: remote_client [CAF options] <port> "
                 "[demo|hold <uuid>|watch <uuid>|update <uuid> <n>|snapshot "
                 "<uuid>]\n";
    return 2;
  }
  int rc = 1;
  {
    caf::actor_system sys{cfg};
    try {
      rc = run(sys, static_cast<uint16_t>(port), args);
    } catch (const ctxstore::error& e) {
      std::cerr << "remote_client: " << ctxstore::to_string(e.code()) << ": "
                << e.what() << std::endl;
      rc = 1;
    } catch (const std::exception& e) { // a bad uuid or count
      std::cerr << "remote_client: " << e.what() << std::endl;
      rc = 2;
    }
  } // clients are gone (run returned); the system shuts down here
  if (rc == 0 && (args.size() == 1 || args[1] == "demo"))
    std::cout << "remote_client: ok" << std::endl;
  return rc;
}
