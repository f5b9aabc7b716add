#include "fixture.hpp"

// A peer that stops reading its answers (a hung process: SIGSTOP), against
// a node in another process (examples/node.cpp). A client process
// (tests/peers/pipelining_client.cpp) asks for N snapshots of a large cart at
// once and stops itself at the first reply. CAF 0.17 queues every answer
// for it in the connection's write buffer, without a bound, and the
// middleman's shutdown waits for that buffer to be sent; ctxstore cuts such
// a peer off (actors/ctxstore/actors/peer_limits.hpp): once more than
// `ctxstore.max-pending-bytes` wait for it, and when the published storage
// stops. Resident memory of the node is checked outside sanitizer builds
// only; the counts (answers, failures) and the stop time everywhere.

#if defined(CTXSTORE_NODE_BINARY) && defined(CTXSTORE_PIPELINING_CLIENT_BINARY)

#include <fstream>
#include <iostream>
#include <thread>

#include <caf/io/middleman.hpp>

#include "processes.hpp"

using namespace ctxstore;
using namespace std::chrono_literals;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool check_rss = false;
#else
constexpr bool check_rss = true;
#endif

constexpr int64_t mib = int64_t{1} << 20;

/// A value in /proc/<pid>/status ("VmRSS", "VmHWM": the peak), in bytes.
int64_t status_bytes(pid_t pid, const std::string& field) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, field.size() + 1, field + ":") == 0)
      return std::stoll(line.substr(field.size() + 1)) * 1024; // kB
  return -1;
}

/// Polls (there is nothing to await in another process) until `pred` holds
/// for the node's resident memory, at most `bound`; returns the last value.
template <class Pred>
int64_t poll_rss(pid_t pid, Pred pred, std::chrono::milliseconds bound) {
  auto deadline = clock_type::now() + bound;
  auto rss = status_bytes(pid, "VmRSS");
  while (!pred(rss) && clock_type::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    rss = status_bytes(pid, "VmRSS");
  }
  return rss;
}

struct client_config : test_config {
  client_config() {
    load<caf::io::middleman>();
  }
};

/// This process as a client of the node: stores the large cart.
struct client_here {
  explicit client_here(uint16_t port) : sys(cfg) {
    auto st = connect(sys, "127.0.0.1", port);
    REQUIRE(st);
    remote = *st;
    client = std::make_unique<blocking_client>(sys, remote);
  }

  ~client_here() {
    client.reset();
    remote = storage{};
  }

  client_config cfg;
  caf::actor_system sys;
  storage remote;
  std::unique_ptr<blocking_client> client;
};

/// The pipelining client, started on the node's `port` for cart `id`.
child_process start_pipelining(uint16_t port, const context_id& id, int n) {
  return child_process{
    CTXSTORE_PIPELINING_CLIENT_BINARY,
    {std::to_string(port), boost::uuids::to_string(id), std::to_string(n)}};
}

/// Stops the node with SIGTERM; the time until it said "node: stopped" (its
/// actor system is gone), or nothing if that took longer than `bound`.
std::optional<double> stop_time(node_process& node,
                                std::chrono::milliseconds bound) {
  auto t0 = clock_type::now();
  node.proc.signal(SIGTERM);
  if (!node.proc.read_line("node: stopped", bound))
    return std::nullopt;
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0)
    .count();
}

} // namespace

SCENARIO("a peer that stops reading is cut off and its memory returns",
         "[multiprocess][stalled]") {
  GIVEN("a node that holds at most 32 MiB for a peer, and an 8 MiB cart") {
    constexpr int64_t value_bytes = 8 * mib;
    constexpr int n = 48; // 384 MiB of answers
    node_process node{{"--ctxstore.max-pending-bytes=33554432"}};
    auto id = new_id();
    client_here here{node.port};
    cart big;
    big.owner.assign(value_bytes, 'x');
    here.client->store<cart>(id, big);
    REQUIRE(here.client->snapshot<cart>(id).owner.size() == value_bytes);
    auto baseline = status_bytes(node.proc.pid(), "VmRSS");
    WHEN("a client asks for 48 snapshots at once and stops reading") {
      auto peer = start_pipelining(node.port, id, n);
      REQUIRE(peer.read_line("pipelining_client: first reply", 10s));
      THEN("the node cuts it off, its memory returns, and it still serves") {
        auto margin = 3 * value_bytes;
        auto rss = poll_rss(
          node.proc.pid(), [&](int64_t x) { return x <= baseline + margin; },
          5s);
        auto peak = status_bytes(node.proc.pid(), "VmHWM");
        std::cout << "stalled_peer: node resident " << baseline / mib
                  << " MiB before, peak " << peak / mib << " MiB, " << rss / mib
                  << " MiB after the peer stalled" << std::endl;
        if (check_rss) {
          CHECK(rss <= baseline + margin);
          CHECK(peak <= baseline + 5 * 32 * mib); // a 32 MiB buffer, the one
          // being written, and a copy while the buffer grows
        }
        auto v = here.client->snapshot_versioned<cart>(id);
        CHECK(v.version == 1);
        AND_THEN("the continued peer finds its other requests failed") {
          peer.signal(SIGCONT);
          auto line = peer.read_line("pipelining_client: answered", 20s);
          REQUIRE(line);
          std::cout << "stalled_peer: " << *line << std::endl;
          int answered = -1;
          int failed = -1;
          REQUIRE(std::sscanf(line->c_str(),
                              "pipelining_client: answered %d failed %d",
                              &answered, &failed)
                  == 2);
          CHECK(answered + failed == n);
          CHECK(failed > 0);
          auto took = stop_time(node, 2000ms);
          REQUIRE(took);
          CHECK(*took <= 2000);
        }
      }
    }
  }
}

SCENARIO("a node stops within 2 s with a stalled peer connected",
         "[multiprocess][stalled]") {
  GIVEN("a node with an 8 MiB cart") {
    constexpr int64_t value_bytes = 8 * mib;
    constexpr int n = 6; // 48 MiB of answers: below the default bound
    node_process node;
    auto id = new_id();
    client_here here{node.port};
    cart big;
    big.owner.assign(value_bytes, 'x');
    here.client->store<cart>(id, big);
    auto baseline = status_bytes(node.proc.pid(), "VmRSS");
    WHEN("a client asks for 6 snapshots at once and stops reading") {
      auto peer = start_pipelining(node.port, id, n);
      REQUIRE(peer.read_line("pipelining_client: first reply", 10s));
      // The node has written the answers it cannot send (its memory grew by
      // most of them): polled, nothing to await.
      auto rss = poll_rss(
        node.proc.pid(),
        [&](int64_t x) { return x >= baseline + (n - 3) * value_bytes; }, 5s);
      std::cout << "stalled_peer: node resident " << baseline / mib
                << " MiB before, " << rss / mib
                << " MiB with the answers waiting" << std::endl;
      THEN("SIGTERM stops it within 2 s") {
        here.client.reset();
        here.remote = storage{};
        auto took = stop_time(node, 2000ms);
        if (took)
          std::cout << "stalled_peer: node stopped " << *took
                    << " ms after SIGTERM" << std::endl;
        REQUIRE(took);
        CHECK(*took <= 2000);
        auto status = node.proc.wait_exit(2s);
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 0);
      }
    }
  }
}

#endif
