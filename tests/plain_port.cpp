#include "fixture.hpp"

// A plain (not TLS) published port against an unauthenticated peer
// (src/guarded_port.hpp): a node program (examples/node.cpp) in its own
// process, a legitimate client in this one, and raw sockets that speak just
// enough BASP (CAF 0.17.6's protocol: a 32-byte big-endian header, then its
// payload) to hurt. Each ends with: the intruder was dropped, the node
// allocated nothing for it, every context is intact, and a new client is
// served within a second. The same bytes against a TLS port:
// intruders.cpp ("bytes that are not TLS are dropped by a TLS port"); the
// handshake timeout, the connection cap and the descriptor flood also
// against a TLS port (tls_certs.hpp), here.

#ifdef CTXSTORE_NODE_BINARY

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <caf/binary_serializer.hpp>
#include <caf/io/middleman.hpp>
#include <caf/node_id.hpp>

#include "child_process.hpp"
#include "raw_socket.hpp"
#include "tls_certs.hpp"

using namespace ctxstore;
using namespace child_processes;
using raw_tcp::raw_socket;
using namespace std::chrono_literals;

namespace {

constexpr auto bound = 10s; // for anything that must not hang
constexpr long mib_kb = 1024;

/// A line "<key>: <value> kB" of /proc/<pid>/status, in kB.
long status_kb(const std::string& pid, const std::string& key) {
  std::ifstream in{"/proc/" + pid + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0)
      return std::stol(line.substr(key.size() + 1));
  return -1;
}

/// CPU time (user + system) of `pid` so far, in clock ticks.
long cpu_ticks(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text{std::istreambuf_iterator<char>{in}, {}};
  std::istringstream rest{text.substr(text.rfind(')') + 2)};
  std::string field;
  long utime = 0;
  long stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14)
      utime = std::stol(field);
    else if (i == 15)
      stime = std::stol(field);
  }
  return utime + stime;
}

long open_descriptors(pid_t pid) {
  long n = 0;
  for ([[maybe_unused]] auto& entry : std::filesystem::directory_iterator{
         "/proc/" + std::to_string(pid) + "/fd"})
    ++n;
  return n;
}

/// The node program, plain (or with mutual TLS: `tls`), with `options` (CAF
/// options).
struct plain_node {
  explicit plain_node(std::vector<std::string> options, bool tls = false)
      : proc(CTXSTORE_NODE_BINARY, arguments(std::move(options), tls)) {
    std::string prefix = "node: listening on 127.0.0.1:";
    auto line = proc.read_line(prefix, bound);
    INFO("node output: " << proc.output());
    REQUIRE(line);
    port = static_cast<uint16_t>(std::stoi(line->substr(prefix.size())));
  }

  static std::vector<std::string> arguments(std::vector<std::string> options,
                                            bool tls) {
    std::vector<std::string> args;
    if (tls)
      args = tls_certs::options("server");
    args.insert(args.end(), options.begin(), options.end());
    args.insert(args.end(), {"--port", "0"});
    return args;
  }

  long peak_rss_kb() {
    return status_kb(std::to_string(proc.pid()), "VmHWM");
  }

  bool running() {
    return !proc.wait_exit(0ms);
  }

  child_process proc;
  uint16_t port = 0;
};

struct client_config : test_config {
  client_config(caf::timespan handshake_timeout, bool tls) {
    load<caf::io::middleman>();
    set("ctxstore.handshake-timeout", handshake_timeout);
    if (tls)
      tls_certs::use(*this, "client", "ca");
  }
};

/// An actor system of this process as a client of a node.
struct client {
  explicit client(caf::timespan handshake_timeout = caf::timespan{bound},
                  bool tls = false)
      : cfg(handshake_timeout, tls), sys(cfg) {
    // nop
  }

  ~client() {
    blocking.reset();
    remote = storage{};
  }

  /// Connects to 127.0.0.1:`port`: none, or the error.
  caf::error connect_to(uint16_t port) {
    auto task = std::async(std::launch::async, [this, port]() -> caf::error {
      auto st = ctxstore::connect(sys, "127.0.0.1", port);
      if (!st)
        return std::move(st.error());
      remote = *st;
      blocking = std::make_unique<blocking_client>(sys, remote);
      return caf::none;
    });
    return finish(task, bound, "connecting to the node");
  }

  client_config cfg;
  caf::actor_system sys;
  storage remote;
  std::unique_ptr<blocking_client> blocking;
};


/// A BASP header (CAF 0.17.6): operation, flags, payload length, operation
/// data, source and destination actor, big-endian.
std::vector<uint8_t> basp_header(uint8_t operation, uint32_t payload,
                                 uint64_t operation_data = 0,
                                 uint64_t dest_actor = 0) {
  std::vector<uint8_t> h(32, 0);
  h[0] = operation;
  for (int i = 0; i < 4; ++i)
    h[4 + i] = static_cast<uint8_t>(payload >> (24 - 8 * i));
  for (int i = 0; i < 8; ++i) {
    h[8 + i] = static_cast<uint8_t>(operation_data >> (56 - 8 * i));
    h[24 + i] = static_cast<uint8_t>(dest_actor >> (56 - 8 * i));
  }
  return h;
}

constexpr uint8_t server_handshake = 0;
constexpr uint8_t client_handshake = 1;
constexpr uint8_t direct_message = 2;

/// A client handshake of a made-up node: header and payload (its node id).
std::vector<uint8_t> forged_client_handshake(caf::actor_system& sys) {
  caf::node_id::default_data::host_id_type host;
  for (size_t i = 0; i < host.size(); ++i)
    host[i] = static_cast<uint8_t>(i + 1);
  auto nid = caf::make_node_id(4242, host);
  std::vector<char> payload;
  caf::binary_serializer sink{sys, payload};
  REQUIRE_FALSE(sink(nid));
  auto bytes = basp_header(client_handshake,
                           static_cast<uint32_t>(payload.size()));
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  return bytes;
}

/// A plain node with a legitimate client that stored one cart.
struct attacked_node {
  explicit attacked_node(std::vector<std::string> options, bool tls = false)
      : n(options, tls), tls(tls), legit(caf::timespan{bound}, tls) {
    REQUIRE_FALSE(legit.connect_to(n.port));
    legit.blocking->store<cart>(id, cart{"ann", {{"apple", 2}}, {}, 7});
    peak_before = n.peak_rss_kb();
  }

  /// The node runs, its peak memory grew by less than `slack_kb`, nothing
  /// changed, and the connected client and a new one are served (the new
  /// one within a second).
  void check_unharmed(long slack_kb = 16 * mib_kb) {
    REQUIRE(n.running());
    auto peak = n.peak_rss_kb();
    INFO("node peak RSS: " << peak_before << " kB before, " << peak
                           << " kB after");
    CHECK(peak - peak_before < slack_kb);
    auto v = legit.blocking->snapshot_versioned<cart>(id);
    CHECK(v.version == 1);
    CHECK(v.value.total == 7);
    CHECK(legit.blocking->stats().contexts == 1);
    legit.blocking->update<cart>(id, [](cart& c) { c.total += 1; });
    client fresh{caf::timespan{bound}, tls};
    auto start = clock_type::now();
    REQUIRE_FALSE(fresh.connect_to(n.port));
    CHECK(fresh.blocking->snapshot<cart>(id).total == 8);
    CHECK(clock_type::now() - start < 1s);
  }

  plain_node n;
  bool tls;
  client legit;
  context_id id = new_id();
  long peak_before = 0;
};

} // namespace

SCENARIO("forged BASP headers make a plain port allocate nothing",
         "[multiprocess][plain_port][hardening][intruders]") {
  GIVEN("a plain node with ctxstore.max-value-bytes=4096 and a client") {
    attacked_node g{{"--ctxstore.max-value-bytes=4096"}};
    WHEN("a client handshake header announces a 4 GiB payload") {
      raw_socket s{g.n.port};
      s.send_bytes(basp_header(client_handshake, 0xFFFFFFFF));
      THEN("the node closes the connection and allocates nothing") {
        CHECK(s.closed_by_peer(2s));
        g.check_unharmed();
      }
    }
    WHEN("three connections announce 1 GiB each") {
      std::vector<std::unique_ptr<raw_socket>> sockets;
      for (int i = 0; i < 3; ++i) {
        sockets.emplace_back(std::make_unique<raw_socket>(g.n.port));
        sockets.back()->send_bytes(basp_header(client_handshake, 1u << 30));
      }
      THEN("the node closes each, and allocates nothing") {
        for (auto& s : sockets)
          CHECK(s->closed_by_peer(2s));
        g.check_unharmed();
      }
    }
    WHEN("a client handshake header announces no payload at all") {
      // CAF 0.17.6's BASP reads such a handshake's payload through a null
      // pointer: the node crashed.
      raw_socket s{g.n.port};
      s.send_bytes(basp_header(client_handshake, 0));
      THEN("the node closes the connection and keeps running") {
        CHECK(s.closed_by_peer(2s));
        g.check_unharmed();
      }
    }
    WHEN("after a forged handshake, a message announces more than "
         "max-value-bytes + 64 MiB") {
      raw_socket s{g.n.port};
      s.send_bytes(forged_client_handshake(g.legit.sys));
      s.send_bytes(basp_header(direct_message, 4096 + (64u << 20) + 1, 0, 1));
      THEN("the node closes the connection and allocates nothing") {
        CHECK(s.closed_by_peer(2s));
        g.check_unharmed();
      }
    }
  }
}

namespace {

/// A "node" of an attacker on 127.0.0.1: answers the first connection with
/// `greeting` and keeps it open until destroyed.
struct malicious_node {
  explicit malicious_node(std::vector<uint8_t> greeting) {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr))
            == 0);
    REQUIRE(::listen(listener, 4) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len)
            == 0);
    port = ntohs(addr.sin_port);
    server = std::thread{[this, greeting = std::move(greeting)] {
      pollfd pfd{listener, POLLIN, 0};
      if (::poll(&pfd, 1, 5000) <= 0)
        return;
      conn = ::accept(listener, nullptr, nullptr);
      if (conn >= 0 && !greeting.empty())
        ::send(conn, greeting.data(), greeting.size(), MSG_NOSIGNAL);
    }};
  }

  ~malicious_node() {
    server.join();
    if (conn >= 0)
      ::close(conn);
    ::close(listener);
  }

  int listener = -1;
  int conn = -1;
  uint16_t port = 0;
  std::thread server;
};

/// Resets the peak resident memory (VmHWM) of this process.
void reset_peak_rss() {
  std::ofstream{"/proc/self/clear_refs"} << "5";
}

} // namespace

SCENARIO("a client that connects to a malicious node allocates nothing",
         "[multiprocess][plain_port][hardening][intruders]") {
  client c{caf::timespan{300ms}};
  WHEN("the node's handshake header announces a 4 GiB payload") {
    malicious_node evil{basp_header(server_handshake, 0xFFFFFFFF, 1)};
    reset_peak_rss();
    auto before = status_kb("self", "VmHWM");
    auto err = c.connect_to(evil.port);
    THEN("connect fails, and this process allocated nothing for it") {
      REQUIRE(err);
      CHECK(to_errc(err) == errc::storage_down);
      INFO("peak RSS: " << before << " kB before, "
                        << status_kb("self", "VmHWM") << " kB after");
      CHECK(status_kb("self", "VmHWM") - before < 16 * mib_kb);
    }
  }
  WHEN("the node accepts and sends nothing") {
    malicious_node mute{{}};
    auto start = clock_type::now();
    auto err = c.connect_to(mute.port);
    THEN("connect fails after ctxstore.handshake-timeout") {
      REQUIRE(err);
      CHECK(to_errc(err) == errc::storage_down);
      CHECK(clock_type::now() - start < 2s);
    }
  }
}

namespace {

/// A node with a 500 ms handshake timeout, at most 8 connections and a
/// client: 7 silent connections fill the cap, an 8th comes.
void check_timeout_and_cap(bool tls) {
  attacked_node g{{"--ctxstore.handshake-timeout=500ms",
                   "--ctxstore.max-connections=8"},
                  tls};
  auto start = clock_type::now();
  std::vector<std::unique_ptr<raw_socket>> silent;
  for (int i = 0; i < 7; ++i)
    silent.emplace_back(std::make_unique<raw_socket>(g.n.port));
  raw_socket extra{g.n.port};
  // The eighth is closed at once, the others at their timeout, and clients
  // are served again.
  CHECK(extra.closed_by_peer(400ms));
  for (auto& s : silent)
    CHECK(s->closed_by_peer(2s));
  auto took = clock_type::now() - start;
  CHECK(took >= 450ms);
  CHECK(took < 1500ms);
  g.check_unharmed();
}

} // namespace

SCENARIO("a plain port closes connections that do not finish their "
         "handshake, and takes at most ctxstore.max-connections",
         "[multiprocess][plain_port][hardening][intruders]") {
  check_timeout_and_cap(false);
}

SCENARIO("a TLS port closes connections that do not finish their "
         "handshake, and takes at most ctxstore.max-connections",
         "[multiprocess][plain_port][hardening][intruders][tls]") {
  check_timeout_and_cap(true);
}

namespace {

/// A node without a connection cap, a client, and a descriptor limit a few
/// above what the node has open; 64 connections flood the port.
void check_descriptor_flood(bool tls) {
  attacked_node g{{"--ctxstore.max-connections=0",
                   "--ctxstore.handshake-timeout=20s"},
                  tls};
  auto pid = g.n.proc.pid();
  rlimit limit{};
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, nullptr, &limit) == 0);
  limit.rlim_cur = static_cast<rlim_t>(open_descriptors(pid) + 4);
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, &limit, nullptr) == 0);
  std::vector<std::unique_ptr<raw_socket>> flood;
  for (int i = 0; i < 64; ++i)
    flood.emplace_back(std::make_unique<raw_socket>(g.n.port));
  // The node takes what it can and refuses the rest: wait until it has
  // dealt with every one of them (closed or kept).
  auto deadline = clock_type::now() + 2s;
  size_t closed = 0;
  for (auto& s : flood)
    if (s->closed_by_peer(std::chrono::duration_cast<std::chrono::milliseconds>(
          std::max(deadline - clock_type::now(), clock_type::duration{50ms}))))
      ++closed;
  INFO(closed << " of 64 connections refused at the limit");
  CHECK(closed >= 56);
  // Its I/O thread idles (CPU time over a second), the client is served.
  auto before = cpu_ticks(pid);
  std::this_thread::sleep_for(1s);
  auto used = cpu_ticks(pid) - before;
  INFO("node CPU over 1 s: " << used << " ticks of " << sysconf(_SC_CLK_TCK));
  CHECK(used < sysconf(_SC_CLK_TCK) / 5);
  CHECK(g.legit.blocking->snapshot<cart>(g.id).total == 7);
  flood.clear(); // the flood stops
  auto stopped = clock_type::now();
  // A client that came before the node saw the flood's connections close
  // would still find it out of descriptors (and be refused).
  while (open_descriptors(pid) >= static_cast<long>(limit.rlim_cur)
         && clock_type::now() - stopped < 1s)
    std::this_thread::sleep_for(5ms);
  // A new client is served within a second after the flood stops.
  g.check_unharmed();
  CHECK(clock_type::now() - stopped < 1s);
}

} // namespace

SCENARIO("out of file descriptors, a plain port neither spins nor locks "
         "clients out once the flood stops",
         "[multiprocess][plain_port][hardening][intruders]") {
  check_descriptor_flood(false);
}

SCENARIO("out of file descriptors, a TLS port neither spins nor locks "
         "clients out once the flood stops",
         "[multiprocess][plain_port][hardening][intruders][tls]") {
  check_descriptor_flood(true);
}

SCENARIO("a plain publication on an address other than loopback is refused "
         "unless allowed",
         "[remote][plain_port][hardening]") {
  test_config cfg;
  cfg.load<caf::io::middleman>();
  caf::actor_system sys{cfg};
  auto st = spawn_storage(sys);
  // 192.0.2.1 (TEST-NET-1) is no address of this machine: an allowed
  // publication there fails to open the port instead of being refused.
  publish_options remote;
  remote.address = "192.0.2.1";
  THEN("every interface or another machine's address is forbidden") {
    CHECK(to_errc(publish(sys, st, 0, "0.0.0.0").error())
          == errc::forbidden);
    CHECK(to_errc(publish(sys, st, 0, "").error()) == errc::forbidden);
    CHECK(to_errc(publish(sys, st, 0, remote).error()) == errc::forbidden);
  }
  THEN("allow_plain_remote lets it through") {
    remote.allow_plain_remote = true;
    CHECK(to_errc(publish(sys, st, 0, remote).error())
          == errc::storage_down);
  }
  THEN("loopback needs nothing") {
    CHECK(publish(sys, st, 0, "127.0.0.1"));
  }
}

SCENARIO("ctxstore.allow-plain-remote allows plain publications on any "
         "address",
         "[remote][plain_port][hardening]") {
  test_config cfg;
  cfg.load<caf::io::middleman>();
  cfg.set("ctxstore.allow-plain-remote", true);
  caf::actor_system sys{cfg};
  auto st = spawn_storage(sys);
  CHECK(to_errc(publish(sys, st, 0, "192.0.2.1").error())
        == errc::storage_down);
}

#endif // CTXSTORE_NODE_BINARY
