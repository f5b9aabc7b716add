// Pattern: a storage node. It hosts one storage and publishes it on
// 127.0.0.1 for clients in other processes (see remote_client.cpp), until
// SIGINT or SIGTERM. Output, one short line per step:
//   node: storage spawned (lease: none)
//   node: listening on 127.0.0.1:<port>      <- parents read the port here
//   node: SIGTERM, stopping
//   node: stopped                            <- after the actor system is gone
//
// Usage: node [CAF options] [--port N] [--lease-ms N] [--read-only-port N]
//   --port N      TCP port on 127.0.0.1; 0 (default) picks a free one
//   --lease-ms N  revoke sessions held longer than N ms; 0 (default): never
//   --read-only-port N  also publish the storage read-only (snapshots only:
//                 every change is refused with `forbidden`) on port N (0:
//                 a free one), printed as "node: read-only on
//                 127.0.0.1:<port>"; -1 (default): no such publication
// Mutual TLS: give the CAF options --openssl.certificate=server.pem
// --openssl.key=server.key --openssl.cafile=ca.pem (every publication of the
// node then speaks TLS only; README, "Remote access"). ctxstore.* options
// (e.g. --ctxstore.max-value-bytes=65536) configure the storage.
// Both also work as `--port=N`, and in CAF's own spelling `--node.port=N`
// (CAF 0.17.6 wants `--long=value`; the short `-p N` works too). Any CAF
// option may be given as well, e.g. hang detection for clients:
//   node --middleman.heartbeat-interval=200ms
//        --middleman.connection-timeout=1s --port 4242
// (clients then need heartbeats too, or an idle client is dropped).
// The node applies ctxstore::apply_remote_defaults (lower-latency scheduler
// and middleman settings); CAF options override them, e.g.
// `--middleman.workers=1 --work-stealing.moderate-poll-attempts=500` are
// CAF's own defaults.
// Exit codes: 0 after a clean stop, 1 if the storage cannot be published,
// 2 for bad arguments.

#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "context_types.hpp"
#include "ctxstore/ctxstore.hpp"

namespace {

struct node_config : caf::actor_system_config {
  uint16_t port = 0;
  int64_t lease_ms = 0;
  int64_t read_only_port = -1;

  node_config() {
    opt_group{custom_options_, "node"}
      .add(port, "port,p", "TCP port on 127.0.0.1 (0: any free port)")
      .add(lease_ms, "lease-ms", "session lease in ms (0: no lease)")
      .add(read_only_port, "read-only-port",
           "also publish read-only on this port (0: any; -1: no)");
    load<caf::io::middleman>();
    // TLS when the openssl.* options are given; plain otherwise.
    ctxstore::load_tls(*this);
    // Lower-latency CAF settings for remote use (see ctxstore/remote.hpp);
    // CAF options on the command line or in a config file override them.
    ctxstore::apply_remote_defaults(*this);
    examples::add_example_types(*this);
  }
};

// "--port 5" / "--port=5" -> "--node.port=5" (CAF wants the long form).
std::vector<std::string> normalize(int argc, char** argv) {
  std::vector<std::string> args{argv + 1, argv + argc};
  std::vector<std::string> result;
  for (size_t i = 0; i < args.size(); ++i) {
    auto& arg = args[i];
    bool rewritten = false;
    for (std::string name : {"port", "lease-ms", "read-only-port"}) {
      auto flag = "--" + name;
      if (arg == flag && i + 1 < args.size()) {
        result.push_back("--node." + name + "=" + args[++i]);
        rewritten = true;
      } else if (arg.rfind(flag + "=", 0) == 0) {
        result.push_back("--node." + arg.substr(2));
        rewritten = true;
      }
      if (rewritten)
        break;
    }
    if (!rewritten)
      result.push_back(arg);
  }
  return result;
}

} // namespace

int main(int argc, char** argv) {
  // Large values (and a peer cut off with many of them waiting) pass through
  // buffers of many MiB. glibc raises its mmap threshold each time such a
  // buffer is freed, so that the next ones come from the heap and stay
  // resident after they are freed; a fixed threshold of 1 MiB gives every
  // larger buffer back to the system when it is freed.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  // Block the stop signals before CAF starts its threads (they inherit the
  // mask), so that only sigwait() below receives them: no handler, no loop.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  node_config cfg;
  if (auto err = cfg.parse(normalize(argc, argv))) {
    std::cerr << "node: bad arguments: " << caf::to_string(err) << "\n"
              << "usage: node [CAF options] [--port N] [--lease-ms N]\n";
    return 2;
  }
  if (cfg.cli_helptext_printed)
    return 0;
  if (!cfg.remainder.empty() || cfg.lease_ms < 0 || cfg.read_only_port < -1
      || cfg.read_only_port > 65535) {
    std::cerr << "usage: node [CAF options] [--port N] [--lease-ms N] "
                 "[--read-only-port N]\n";
    return 2;
  }
  int sig = 0;
  {
    caf::actor_system sys{cfg};
    ctxstore::storage_options opts;
    try {
      opts = ctxstore::storage_options_from(cfg); // ctxstore.* options
    } catch (const std::exception& e) {
      std::cerr << "node: bad ctxstore options: " << e.what() << std::endl;
      return 2;
    }
    if (cfg.lease_ms > 0)
      opts.lease = std::chrono::milliseconds{cfg.lease_ms};
    auto store = ctxstore::spawn_storage(sys, opts);
    std::cout << "node: storage spawned (lease: "
              << (cfg.lease_ms > 0 ? std::to_string(cfg.lease_ms) + " ms"
                                   : std::string{"none"})
              << ")" << std::endl;
    auto port = ctxstore::publish(sys, store, cfg.port, "127.0.0.1");
    if (!port) {
      std::cerr << "node: " << ctxstore::describe(port.error()) << std::endl;
      return 1; // `store` goes before `sys`
    }
    std::cout << "node: listening on 127.0.0.1:" << *port << std::endl;
    if (cfg.read_only_port >= 0) {
      ctxstore::publish_options read_only;
      read_only.read_only = true;
      auto ro = ctxstore::publish(
        sys, store, static_cast<uint16_t>(cfg.read_only_port), read_only);
      if (!ro) {
        std::cerr << "node: " << ctxstore::describe(ro.error()) << std::endl;
        return 1;
      }
      std::cout << "node: read-only on 127.0.0.1:" << *ro << std::endl;
    }
    sigwait(&stop_signals, &sig);
    std::cout << "node: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
              << ", stopping" << std::endl;
    // Dropping the last handle stops the storage (and its published
    // gateway); clients still connected get `storage_down` from then on.
    store = ctxstore::storage{};
  } // the actor system shuts down here; the next line proves it did
  std::cout << "node: stopped" << std::endl;
  return 0;
}
