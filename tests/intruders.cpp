#include "fixture.hpp"

// The intruder matrix of a published storage (README, "Remote access"): a
// node program (examples/node.cpp) in its own process publishes a storage on
// 127.0.0.1 over mutual TLS (a server certificate of a CA made at test time,
// tls_certs.hpp), read-write on one port and read-only on another, with
// ctxstore.max-value-bytes=4096. A legitimate client (a certificate of the
// same CA) stores a cart first. Then each intruder tries its way in; each
// specification ends the same way: the intruder was refused with a clear
// error, the storage keeps serving its legitimate clients (the connected one
// and a new one), and nothing changed.

#ifdef CTXSTORE_NODE_BINARY

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <fstream>
#include <future>
#include <random>

#include <caf/io/middleman.hpp>
#include <caf/openssl/remote_actor.hpp>

#include "child_process.hpp"
#include "raw_socket.hpp"
#include "tls_certs.hpp"

using namespace ctxstore;
using namespace child_processes;
using raw_tcp::raw_socket;
using namespace std::chrono_literals;

namespace {

constexpr auto bound = 10s; // for every connection attempt

/// A line "<key>:<value>" of /proc/<pid>/status, in kB for the memory ones.
long proc_status(pid_t pid, const std::string& key) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, key.size() + 1, key + ":") == 0)
      return std::stol(line.substr(key.size() + 1));
  return -1;
}

/// The node program: mutual TLS (or plain: `tls` false), a read-write and a
/// read-only publication, values of at most 4096 bytes from other nodes.
struct node {
  explicit node(bool tls = true) : proc(CTXSTORE_NODE_BINARY, args(tls)) {
    std::string rw = "node: listening on 127.0.0.1:";
    std::string ro = "node: read-only on 127.0.0.1:";
    auto line = proc.read_line(rw, bound);
    INFO("node output: " << proc.output());
    REQUIRE(line);
    port = static_cast<uint16_t>(std::stoi(line->substr(rw.size())));
    line = proc.read_line(ro, bound);
    REQUIRE(line);
    read_only_port = static_cast<uint16_t>(std::stoi(line->substr(ro.size())));
  }

  static std::vector<std::string> args(bool tls) {
    std::vector<std::string> result;
    if (tls)
      result = tls_certs::options("server");
    for (auto x : {"--ctxstore.max-value-bytes=4096", "--port", "0",
                   "--read-only-port", "0"})
      result.emplace_back(x);
    return result;
  }

  /// Peak resident memory of the node so far (kB).
  long peak_rss_kb() {
    return proc_status(proc.pid(), "VmHWM");
  }

  long threads() {
    return proc_status(proc.pid(), "Threads");
  }

  child_process proc;
  uint16_t port = 0;
  uint16_t read_only_port = 0;
};

/// How a peer presents itself: a certificate (`who`, empty: none) trusting
/// `ca`; `tls` false: plain TCP.
struct identity {
  std::string who;
  std::string ca = "ca";
  bool tls = true;
};

struct peer_config : test_config {
  explicit peer_config(const identity& id) {
    load<caf::io::middleman>();
    if (id.tls && !id.who.empty())
      tls_certs::use(*this, id.who, id.ca);
    else if (id.tls)
      ctxstore::load_tls(*this); // TLS without a certificate (see below)
  }
};

/// An actor system of this process that connects to a node as `id`.
struct peer {
  explicit peer(identity id) : id(std::move(id)), cfg(this->id), sys(cfg) {
    // nop
  }

  ~peer() {
    client.reset();
    remote = storage{};
  }

  /// Connects to `port` (within `bound`, else the test process ends): the
  /// error, or none and `client` is ready.
  caf::error connect_to(uint16_t port) {
    auto task = std::async(std::launch::async, [this, port]() -> caf::error {
      if (id.tls && id.who.empty()) {
        // ctxstore::connect refuses to try TLS without a certificate (it
        // would be plain): CAF's own TLS connect, as an intruder would.
        auto h = caf::openssl::remote_actor(sys, "127.0.0.1", port);
        if (!h)
          return make_error(errc::storage_down, sys.render(h.error()));
        remote = storage{*h};
      } else {
        auto st = ctxstore::connect(sys, "127.0.0.1", port);
        if (!st)
          return std::move(st.error());
        remote = *st;
      }
      client = std::make_unique<blocking_client>(sys, remote);
      return caf::none;
    });
    return finish(task, bound, "connecting to the node");
  }

  identity id;
  peer_config cfg;
  caf::actor_system sys;
  storage remote;
  std::unique_ptr<blocking_client> client;
};


/// The 32 bytes of a BASP client handshake header (CAF 0.17.6) announcing a
/// payload of 0xFFFFFFFF bytes: on a plain port CAF allocates and zero-fills
/// all of it at once (about 4 GiB) before reading a byte of it.
std::vector<uint8_t> forged_basp_header() {
  std::vector<uint8_t> h(32, 0);
  h[0] = 0x01; // client_handshake; source and destination actor 0
  h[4] = h[5] = h[6] = h[7] = 0xFF;
  return h;
}

/// A TLS record header announcing a 16 KiB handshake record, and only the
/// first 64 bytes of it: a ClientHello cut short.
std::vector<uint8_t> truncated_client_hello() {
  std::vector<uint8_t> bytes{0x16, 0x03, 0x01, 0x40, 0x00, // record
                             0x01, 0x00, 0x3F, 0xFC,       // ClientHello
                             0x03, 0x03};                  // TLS 1.2
  bytes.resize(64, 0x5A);
  return bytes;
}

std::vector<uint8_t> garbage(size_t n) {
  std::minstd_rand gen{42};
  std::vector<uint8_t> bytes(n);
  for (auto& b : bytes)
    b = static_cast<uint8_t>(gen());
  return bytes;
}

/// A node with a legitimate client that stored one cart (version 1).
struct guarded_node {
  guarded_node() {
    REQUIRE_FALSE(legit.connect_to(n.port));
    legit.client->store<cart>(id, cart{"ann", {{"apple", 2}}, {}, 7});
    peak_before = n.peak_rss_kb();
    threads_before = n.threads();
  }

  /// Nothing changed, the connected client and a new one are served, and
  /// the node's peak memory grew by less than `slack_kb`.
  void check_unharmed(long slack_kb = 32 * 1024) {
    auto ended = n.proc.wait_exit(0ms);
    INFO("node wait status: " << (ended ? std::to_string(*ended) : "running"));
    REQUIRE_FALSE(ended); // the node still runs
    auto v = legit.client->snapshot_versioned<cart>(id);
    CHECK(v.version == 1);
    CHECK(v.value.owner == "ann");
    CHECK(v.value.total == 7);
    auto stats = legit.client->stats();
    CHECK(stats.contexts == 1);
    CHECK(stats.sessions == 0);
    CHECK(stats.waiters == 0);
    // Still serving: a write of the connected client, a read of a new one.
    legit.client->update<cart>(id, [](cart& c) { c.total += 1; });
    peer fresh{identity{"client"}};
    REQUIRE_FALSE(fresh.connect_to(n.port));
    auto after = fresh.client->snapshot_versioned<cart>(id);
    CHECK(after.version == 2);
    CHECK(after.value.total == 8);
    auto peak = n.peak_rss_kb();
    INFO("node peak RSS: " << peak_before << " kB before, " << peak
                           << " kB after");
    CHECK(peak - peak_before < slack_kb);
  }

  node n;
  peer legit{identity{"client"}};
  context_id id = new_id();
  long peak_before = 0;
  long threads_before = 0;
};

void check_refused_connect(guarded_node& g, identity who, uint16_t port) {
  peer intruder{std::move(who)};
  auto err = intruder.connect_to(port);
  INFO("intruder's error: " << (err ? describe(err) : std::string{"none"}));
  REQUIRE(err);
  CHECK(to_errc(err) == errc::storage_down);
  CHECK(describe(err).find("disconnect_during_handshake") != std::string::npos);
  g.check_unharmed();
}

} // namespace

SCENARIO("peers without a valid certificate of the deployment's CA are "
         "refused",
         "[multiprocess][intruders][tls]") {
  GIVEN("a node with mutual TLS and a legitimate client") {
    guarded_node g;
    WHEN("a TLS client without a certificate connects") {
      THEN("the handshake fails, and nothing changed") {
        check_refused_connect(g, identity{""}, g.n.port);
      }
    }
    WHEN("a client with a certificate of another CA connects") {
      THEN("the node refuses it, and nothing changed") {
        check_refused_connect(g, identity{"stranger", "ca"}, g.n.port);
      }
    }
    WHEN("a client with an expired certificate of the CA connects") {
      THEN("the node refuses it, and nothing changed") {
        check_refused_connect(g, identity{"expired", "ca"}, g.n.port);
      }
    }
    WHEN("a plain client connects to the TLS port") {
      THEN("it is refused, and nothing changed") {
        check_refused_connect(g, identity{"", "ca", false}, g.n.port);
      }
    }
    WHEN("a plain client connects to the read-only TLS port") {
      THEN("it is refused, and nothing changed") {
        check_refused_connect(g, identity{"", "ca", false}, g.n.read_only_port);
      }
    }
  }
}

SCENARIO("a TLS client gets a clear error from a plain port",
         "[multiprocess][intruders][tls]") {
  node plain{false};
  peer legit{identity{"", "ca", false}};
  REQUIRE_FALSE(legit.connect_to(plain.port));
  auto id = new_id();
  legit.client->store<cart>(id, cart{"ann", {}, {}, 1});
  peer tls{identity{"client"}};
  auto err = tls.connect_to(plain.port);
  REQUIRE(err);
  CHECK(to_errc(err) == errc::storage_down);
  CHECK(describe(err).find("(TLS)") != std::string::npos);
  auto v = legit.client->snapshot_versioned<cart>(id);
  CHECK(v.version == 1);
  CHECK(v.value.total == 1);
  legit.client->update<cart>(id, [](cart& c) { c.total += 1; });
  CHECK(legit.client->snapshot<cart>(id).total == 2);
}

SCENARIO("bytes that are not TLS are dropped by a TLS port",
         "[multiprocess][intruders][tls]") {
  GIVEN("a node with mutual TLS and a legitimate client") {
    guarded_node g;
    WHEN("a raw socket sends 4 KiB of garbage") {
      raw_socket s{g.n.port};
      s.send_bytes(garbage(4096));
      THEN("the node closes that connection, and nothing changed") {
        CHECK(s.closed_by_peer(bound));
        g.check_unharmed();
      }
    }
    WHEN("a raw socket sends a BASP header announcing a 4 GiB payload") {
      raw_socket s{g.n.port};
      s.send_bytes(forged_basp_header());
      THEN("the node allocates nothing for it and closes the connection") {
        CHECK(s.closed_by_peer(bound));
        g.check_unharmed(16 * 1024);
      }
    }
    WHEN("a raw socket sends a ClientHello cut short and stays") {
      raw_socket s{g.n.port};
      s.send_bytes(truncated_client_hello());
      THEN("the storage keeps serving, and nothing changed") {
        g.check_unharmed();
      }
    }
  }
}

SCENARIO("peers that connect and send nothing tie up no worker and little "
         "memory",
         "[multiprocess][intruders][tls]") {
  GIVEN("a node with mutual TLS and a legitimate client") {
    guarded_node g;
    WHEN("64 connections to each port stay silent") {
      std::vector<std::unique_ptr<raw_socket>> silent;
      for (int i = 0; i < 64; ++i) {
        silent.emplace_back(std::make_unique<raw_socket>(g.n.port));
        silent.emplace_back(std::make_unique<raw_socket>(g.n.read_only_port));
      }
      THEN("the node starts no thread for them, and keeps serving") {
        g.check_unharmed(16 * 1024);
        CHECK(g.n.threads() == g.threads_before);
      }
    }
  }
}

SCENARIO("a client of the deployment cannot change anything through a "
         "read-only publication",
         "[multiprocess][intruders][read_only]") {
  GIVEN("a node with mutual TLS, a legitimate client, and a client of the "
        "same CA on the read-only port") {
    guarded_node g;
    peer reader{identity{"client"}};
    REQUIRE_FALSE(reader.connect_to(g.n.read_only_port));
    auto& rc = *reader.client;
    THEN("it reads, and every change is forbidden") {
      CHECK(rc.snapshot<cart>(g.id).total == 7);
      CHECK(rc.view<cart>(g.id)->owner == "ann");
      CHECK(rc.stats().contexts == 1);
      CHECK(error_code_of([&] { rc.store<cart>(g.id, cart{}); })
            == errc::forbidden);
      CHECK(error_code_of([&] { rc.store<cart>(new_id(), cart{}); })
            == errc::forbidden);
      CHECK(error_code_of([&] { rc.acquire<cart>(g.id); }) == errc::forbidden);
      CHECK(error_code_of(
              [&] { rc.update<cart>(g.id, [](cart& c) { c.total = 0; }); })
            == errc::forbidden);
      CHECK(error_code_of([&] { rc.erase<cart>(g.id); }) == errc::forbidden);
      g.check_unharmed();
    }
  }
}

SCENARIO("a value larger than ctxstore.max-value-bytes is refused",
         "[multiprocess][intruders][limits]") {
  GIVEN("a node with ctxstore.max-value-bytes=4096 and a legitimate client") {
    guarded_node g;
    auto& c = *g.legit.client;
    cart huge{std::string(64 * 1024, 'x'), {}, {}, 0};
    THEN("a store, a commit and a release of a huge value are bad_request") {
      CHECK(error_code_of([&] { c.store<cart>(g.id, huge); })
            == errc::bad_request);
      CHECK(error_code_of([&] { c.store<cart>(new_id(), huge); })
            == errc::bad_request);
      {
        auto s = c.acquire<cart>(g.id);
        *s = huge;
        CHECK(error_code_of([&] { s.commit(); }) == errc::bad_request);
        // A failed release ends the session, here and at the storage.
        CHECK(error_code_of([&] { s.release(); }) == errc::bad_request);
      }
      g.check_unharmed();
    }
  }
}

#endif // CTXSTORE_NODE_BINARY
