#include "eventually.hpp"
#include "fixture.hpp"
#include "tls_certs.hpp"
#include "two_nodes.hpp"
#include "waiting.hpp"

#include <future>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/io/middleman.hpp>

// Two actor systems in one process, connected over 127.0.0.1 by CAF's
// middleman: the storage lives on the first, clients run on the second.
// Plain TCP, or mutual TLS when CTXSTORE_TEST_TLS_DIR is set (ctest
// remote_over_tls; see tls_certs.hpp).

using namespace ctxstore;
using remote_fixture::node_config;
using remote_fixture::two_nodes;

namespace {

cart sample_cart() {
  cart c;
  c.owner = "ann";
  c.items = {{"apple", 2}, {"pear", 5}};
  c.tags = {{"channel", "web"}};
  c.total = 7;
  return c;
}

} // namespace

SCENARIO("a storage is used from another node like a local one", "[remote]") {
  two_nodes n;
  auto& rc = *n.remote_client;
  auto id = new_id();
  WHEN("the remote node stores a context") {
    rc.store<cart>(id, sample_cart());
    THEN("both nodes read it intact") {
      auto local = n.local_client->snapshot<cart>(id);
      auto remote = rc.snapshot_versioned<cart>(id);
      CHECK(remote.version == 1);
      for (auto* c : {&local, &remote.value}) {
        CHECK(c->owner == "ann");
        REQUIRE(c->items.size() == 2);
        CHECK(c->items[1].sku == "pear");
        CHECK(c->tags.at("channel") == "web");
      }
    }
    AND_THEN("a remote session commits, re-enters and releases") {
      {
        auto s = rc.acquire<cart>(id);
        s->total = 8;
        s.commit();
        CHECK(n.local_client->snapshot<cart>(id).total == 8);
        auto inner = rc.acquire<cart>(id);
        inner->total = 9;
        inner.release();
        rc.store<cart>(id, cart{"bob", {}, {}, 100}); // holder's store
        s->total += 1;
      }
      auto v = n.local_client->snapshot_versioned<cart>(id);
      CHECK(v.value.owner == "bob");
      CHECK(v.value.total == 101);
      CHECK(rc.stats().sessions == 0);
    }
  }
  THEN("errors arrive as codes") {
    CHECK(error_code_of([&] { rc.snapshot<cart>(id); })
          == errc::no_such_context);
    CHECK(error_code_of([&] { rc.store<cart>(boost::uuids::uuid{}, {}); })
          == errc::bad_request);
  }
}

SCENARIO("a remote snapshot is answered while sessions are held",
         "[remote][snapshot]") {
  two_nodes n;
  auto id = new_id();
  n.local_client->store<counter>(id, counter{1});
  GIVEN("a local holder with an uncommitted change and a remote waiter") {
    auto s = n.local_client->acquire<counter>(id);
    s->value = 50;
    auto waiter = std::async(std::launch::async, [&] {
      blocking_client c{n.client_sys, n.remote};
      auto w = c.acquire<counter>(id);
      return w->value;
    });
    REQUIRE(eventually([&] { return n.local_client->stats().waiters == 1; }));
    THEN("a remote snapshot returns the last commit at once") {
      CHECK(n.remote_client->snapshot<counter>(id).value == 1);
      s.release();
      REQUIRE(waiter.wait_for(std::chrono::seconds{10})
              == std::future_status::ready);
      CHECK(waiter.get() == 50);
    }
  }
  GIVEN("a remote holder") {
    auto s = n.remote_client->acquire<counter>(id);
    s->value = 60;
    THEN("local and remote snapshots show the last commit") {
      CHECK(n.local_client->snapshot<counter>(id).value == 1);
      blocking_client other{n.client_sys, n.remote};
      auto other_thread = std::async(
        std::launch::async, [&] { return other.snapshot<counter>(id).value; });
      REQUIRE(other_thread.wait_for(std::chrono::seconds{10})
              == std::future_status::ready);
      CHECK(other_thread.get() == 1);
    }
  }
}

SCENARIO("remote waiters are granted in arrival order", "[remote][queue]") {
  two_nodes n;
  auto id = new_id();
  n.local_client->store<cart>(id, cart{});
  auto holder = n.local_client->acquire<cart>(id);
  constexpr int waiters = 4;
  std::vector<std::future<void>> done;
  for (int i = 0; i < waiters; ++i) {
    done.emplace_back(std::async(std::launch::async, [&, i] {
      blocking_client c{n.client_sys, n.remote};
      c.update<cart>(id, [i](cart& x) {
        x.items.push_back(item{std::to_string(i), i});
      });
    }));
    REQUIRE(eventually([&] {
      return n.local_client->stats().waiters == static_cast<uint64_t>(i + 1);
    }));
  }
  holder.release();
  for (auto& d : done) {
    REQUIRE(d.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
    d.get();
  }
  auto c = n.local_client->snapshot<cart>(id);
  REQUIRE(c.items.size() == waiters);
  for (int i = 0; i < waiters; ++i)
    CHECK(c.items[i].qty == i);
}

SCENARIO("a remote holder actor that dies loses its session",
         "[remote][failure]") {
  two_nodes n;
  auto id = new_id();
  n.local_client->store<counter>(id, counter{1});
  std::promise<void> holding;
  auto held = holding.get_future();
  auto remote = n.remote;
  auto holder = n.client_sys.spawn([&, remote](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, remote);
    ac->acquire<counter>(id).then(
      [self, &holding](async_session<counter> s) {
        s->value = 999; // never committed
        // Keep the session open for as long as this actor lives.
        self->become([s](int) {});
        holding.set_value();
      },
      [&holding](caf::error&) { holding.set_value(); });
    return caf::behavior{[ac](int) {}};
  });
  REQUIRE(held.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  REQUIRE(n.local_client->stats().sessions == 1);
  auto waiter = std::async(std::launch::async, [&] {
    blocking_client c{n.server_sys, n.local};
    return c.acquire<counter>(id)->value;
  });
  REQUIRE(eventually([&] { return n.local_client->stats().waiters == 1; }));
  caf::anon_send_exit(holder, caf::exit_reason::kill);
  REQUIRE(waiter.wait_for(std::chrono::seconds{10})
          == std::future_status::ready);
  CHECK(waiter.get() == 1);
  CHECK(n.local_client->snapshot<counter>(id).value == 1);
}

SCENARIO("leases and fencing hold for remote holders", "[remote][lease]") {
  storage_options leased;
  leased.lease = std::chrono::milliseconds{100};
  two_nodes n{leased};
  auto id = new_id();
  n.local_client->store<counter>(id, counter{1});
  auto late = n.remote_client->acquire<counter>(id);
  late->value = 77;
  // A local waiter gets the context once the remote lease runs out.
  auto next = n.local_client->acquire<counter>(id, std::chrono::seconds{10});
  CHECK(next->value == 1);
  CHECK(next.token() > late.token());
  // Released at once: `next` has a 100 ms lease too, and the remote round
  // trip below can take longer than that under a sanitizer.
  next.release();
  CHECK(error_code_of([&] { late.commit(); }) == errc::session_expired);
  CHECK(n.local_client->snapshot<counter>(id).value == 1);
}

SCENARIO("an actor on another node uses the async client", "[remote][async]") {
  two_nodes n;
  auto id = new_id();
  std::promise<uint64_t> result;
  auto fut = result.get_future();
  auto remote = n.remote;
  n.client_sys.spawn([&, remote](caf::event_based_actor* self) {
    auto ac = std::make_shared<async_client>(self, remote);
    auto fail = [self, &result](caf::error& err) {
      result.set_exception(
        std::make_exception_ptr(ctxstore::error{to_errc(err), describe(err)}));
      self->quit();
    };
    ac->store<counter>(id, counter{1})
      .then(
        [=, &result](uint64_t) {
          ac->update<counter>(id, [](counter& c) { c.value += 1; })
            .then(
              [=, &result](uint64_t version) {
                result.set_value(version);
                self->quit();
              },
              fail);
        },
        fail);
    return caf::behavior{[ac](int) {}};
  });
  REQUIRE(fut.wait_for(std::chrono::seconds{10}) == std::future_status::ready);
  CHECK(fut.get() == 2);
  CHECK(n.local_client->snapshot<counter>(id).value == 2);
}

SCENARIO("the remote defaults never override CAF options a user chose",
         "[remote][config]") {
  GIVEN("a config without those options") {
    node_config cfg;
    apply_remote_defaults(cfg);
    THEN("it gets the lower-latency settings, and the system starts") {
      CHECK(caf::get_or(cfg, "middleman.workers", size_t{99}) == 0);
      CHECK(caf::get_or(cfg, "work-stealing.moderate-poll-attempts",
                        size_t{99})
            == 0);
      caf::actor_system sys{cfg};
      CHECK(sys.has_middleman());
    }
  }
  GIVEN("options set in code before, or on the command line after") {
    node_config cfg;
    cfg.set("middleman.workers", size_t{3});
    apply_remote_defaults(cfg);
    REQUIRE_FALSE(cfg.parse(
      std::vector<std::string>{"--work-stealing.moderate-poll-attempts=7"}));
    THEN("the user's values win") {
      CHECK(caf::get_or(cfg, "middleman.workers", size_t{99}) == 3);
      CHECK(caf::get_or(cfg, "work-stealing.moderate-poll-attempts",
                        size_t{99})
            == 7);
    }
  }
}

SCENARIO("connecting to nothing is storage_down, never a hang", "[remote]") {
  node_config cfg;
  caf::actor_system sys{cfg};
  // A port that nobody listens on: bound by a plain socket, never listened
  // on, and closed again. (Publishing and unpublishing an actor with CAF
  // instead leaves CAF's acceptor to be freed asynchronously; when the
  // system shuts down first, LeakSanitizer reports it.)
  uint16_t port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    auto bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    auto named
      = ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    REQUIRE(bound == 0);
    REQUIRE(named == 0);
    port = ntohs(addr.sin_port);
  }
  auto handle = connect(sys, "127.0.0.1", port);
  REQUIRE_FALSE(handle);
  CHECK(to_errc(handle.error()) == errc::storage_down);
  test_config plain; // no middleman
  caf::actor_system no_mm{plain};
  auto refused = connect(no_mm, "127.0.0.1", port);
  REQUIRE_FALSE(refused);
  CHECK(to_errc(refused.error()) == errc::storage_down);
}

SCENARIO("bad input from another node gets an error and changes nothing",
         "[remote][bad_input]") {
  using namespace ctxstore::messages;
  two_nodes n;
  auto id = new_id();
  n.local_client->store<counter>(id, counter{1});
  caf::scoped_actor self{n.client_sys};
  auto code_of = [&](auto... xs) {
    caf::optional<errc> result;
    self->request(n.remote.registry(), std::chrono::seconds{10}, xs...)
      .receive([&](caf::message&) {},
               [&](caf::error& err) { result = to_errc(err); });
    return result;
  };
  CHECK(code_of(snapshot_atom::value, context_key{"no-such-type", id})
        == errc::unknown_type);
  CHECK(code_of(snapshot_atom::value, context_key{"counter", {}})
        == errc::bad_request);
  CHECK(code_of(store_atom::value, context_key{"counter", id},
                payload{caf::make_message(cart{})}, uint64_t{0})
        == errc::type_mismatch);
  CHECK(code_of(42) == errc::bad_request);
  GIVEN("a session held on the storage node") {
    auto s = n.local_client->acquire<counter>(id);
    THEN("forged tokens and releases from non-holders are refused") {
      CHECK(code_of(release_atom::value, context_key{"counter", id},
                    s.token() + 1000, payload{caf::make_message(counter{9})})
            == errc::not_holder);
      CHECK(code_of(release_atom::value, context_key{"counter", id},
                    s.token(), payload{caf::make_message(counter{9})})
            == errc::not_holder);
      CHECK(code_of(abort_atom::value, context_key{"counter", id}, s.token())
            == errc::not_holder);
      auto token = s.token();
      s.release();
      CHECK(code_of(commit_atom::value, context_key{"counter", id}, token,
                    payload{caf::make_message(counter{9})})
            == errc::session_expired);
    }
  }
  THEN("the node keeps serving and nothing changed") {
    auto v = n.remote_client->snapshot_versioned<counter>(id);
    CHECK(v.value.value == 1);
    CHECK(n.remote_client->stats().contexts == 1);
  }
}

SCENARIO("an actor on another node keeps its order while the context's owner "
         "retires",
         "[remote][async][retire]") {
  // The remote session gives the context an owner; the erase makes it
  // retire while the store and acquire sent right behind it are forwarded to
  // it: the acquire sees the store, and no owner stays behind.
  two_nodes n;
  auto remote = n.remote;
  for (int round = 0; round < 10; ++round) {
    auto id = new_id();
    n.local_client->store<counter>(id, counter{7});
    auto fut = waiting::erase_then_store_and_acquire(n.client_sys, remote, id);
    REQUIRE(fut.wait_for(std::chrono::seconds{10})
            == std::future_status::ready);
    CHECK(fut.get() == "released;erased;stored;acquired 9;");
    CHECK(n.local_client->snapshot<counter>(id).value == 9);
    CHECK(n.local_client->erase<counter>(id));
  }
  CHECK(eventually([&n] { return n.local_client->stats().owners == 0; }));
}

SCENARIO("a read-only publication serves reads and refuses every change",
         "[remote][read_only]") {
  using namespace ctxstore::messages;
  publish_options read_only;
  read_only.read_only = true;
  two_nodes n{{}, read_only};
  auto id = new_id();
  n.local_client->store<cart>(id, sample_cart());
  auto& rc = *n.remote_client;
  THEN("snapshots, views and stats work") {
    CHECK(rc.snapshot<cart>(id).owner == "ann");
    CHECK(rc.view<cart>(id)->total == 7);
    CHECK(rc.snapshot_versioned<cart>(id).version == 1);
    CHECK(rc.stats().contexts == 1);
    CHECK(error_code_of([&] { rc.snapshot<cart>(new_id()); })
          == errc::no_such_context);
  }
  THEN("every acquire, store, update and erase is forbidden") {
    CHECK(error_code_of([&] { rc.store<cart>(id, cart{}); })
          == errc::forbidden);
    CHECK(error_code_of([&] { rc.store<cart>(new_id(), cart{}); })
          == errc::forbidden);
    CHECK(error_code_of([&] { rc.acquire<cart>(id); }) == errc::forbidden);
    CHECK(
      error_code_of([&] { rc.acquire<cart>(id, std::chrono::milliseconds{0}); })
      == errc::forbidden);
    CHECK(error_code_of([&] { rc.update<cart>(id, [](cart& c) { c = {}; }); })
          == errc::forbidden);
    CHECK(error_code_of([&] { rc.erase<cart>(id); }) == errc::forbidden);
  }
  GIVEN("a session held on the storage node") {
    auto s = n.local_client->acquire<cart>(id);
    THEN("commit, release and abort with its token are forbidden too") {
      caf::scoped_actor self{n.client_sys};
      auto code_of = [&](auto... xs) {
        caf::optional<errc> result;
        self->request(n.remote.registry(), std::chrono::seconds{10}, xs...)
          .receive([&](caf::message&) {},
                   [&](caf::error& err) { result = to_errc(err); });
        return result;
      };
      auto key = context_key{"cart", id};
      auto value = payload{caf::make_message(cart{})};
      CHECK(code_of(commit_atom::value, key, s.token(), value)
            == errc::forbidden);
      CHECK(code_of(release_atom::value, key, s.token(), value)
            == errc::forbidden);
      CHECK(code_of(abort_atom::value, key, s.token()) == errc::forbidden);
      CHECK(code_of(retire_atom::value, key) == errc::bad_request);
      CHECK(n.local_client->stats().sessions == 1);
      s.abort(); // the version stays
    }
  }
  auto v = n.local_client->snapshot_versioned<cart>(id);
  CHECK(v.version == 1);
  CHECK(v.value.owner == "ann");
  CHECK(v.value.total == 7);
  auto stats = n.local_client->stats();
  CHECK(stats.contexts == 1);
  CHECK(stats.waiters == 0);
  CHECK(n.local_client->stats().sessions <= 1);
}

SCENARIO("a value from another node larger than max_value_bytes is refused",
         "[remote][limits]") {
  storage_options limited;
  limited.max_value_bytes = 1024;
  two_nodes n{limited};
  auto& rc = *n.remote_client;
  auto id = new_id();
  cart small = sample_cart();
  cart big = sample_cart();
  big.owner = std::string(2048, 'b');
  rc.store<cart>(id, small);
  CHECK(error_code_of([&] { rc.store<cart>(id, big); }) == errc::bad_request);
  CHECK(error_code_of([&] { rc.store<cart>(new_id(), big); })
        == errc::bad_request);
  {
    auto s = rc.acquire<cart>(id);
    *s = big;
    CHECK(error_code_of([&] { s.commit(); }) == errc::bad_request);
    s.abort();
  }
  auto v = n.local_client->snapshot_versioned<cart>(id);
  CHECK(v.version == 1);
  CHECK(v.value.owner == "ann");
  CHECK(n.local_client->stats().contexts == 1);
  CHECK(n.local_client->stats().sessions == 0);
  THEN("values stored in the storage's own process are not measured") {
    n.local_client->store<cart>(id, big);
    CHECK(rc.snapshot<cart>(id).owner.size() == 2048);
  }
  THEN("the limit comes from ctxstore.max-value-bytes") {
    test_config cfg;
    REQUIRE_FALSE(
      cfg.parse(std::vector<std::string>{"--ctxstore.max-value-bytes=1024"}));
    CHECK(storage_options_from(cfg).max_value_bytes == 1024);
  }
}

SCENARIO("ctxstore.require-tls refuses plain publications and connections",
         "[remote][config][tls]") {
  node_config cfg;
  cfg.set("ctxstore.require-tls", true);
  caf::actor_system sys{cfg};
  auto st = spawn_storage(sys);
  auto port = publish(sys, st, 0);
  if (tls_certs::remote_over_tls()) {
    THEN("with openssl.* options set, TLS satisfies it") {
      REQUIRE(port);
      auto c = connect(sys, "127.0.0.1", *port);
      CHECK(c);
    }
  } else {
    THEN("both are forbidden, with the reason") {
      REQUIRE_FALSE(port);
      CHECK(to_errc(port.error()) == errc::forbidden);
      CHECK(describe(port.error()).find("ctxstore.require-tls")
            != std::string::npos);
      auto c = connect(sys, "127.0.0.1", 1);
      REQUIRE_FALSE(c);
      CHECK(to_errc(c.error()) == errc::forbidden);
    }
  }
}

SCENARIO("incomplete or unusable TLS options are a clear error",
         "[remote][config][tls]") {
  struct bare_config : test_config { // never TLS unless told
    bare_config() {
      load<caf::io::middleman>();
    }
  };
  auto try_publish = [](auto configure) {
    bare_config cfg;
    configure(cfg);
    caf::actor_system sys{cfg};
    auto st = spawn_storage(sys);
    auto port = publish(sys, st, 0);
    REQUIRE_FALSE(port);
    return port.error();
  };
  auto& d = tls_certs::dir();
  GIVEN("openssl.* options without load_tls") {
    auto err = try_publish(
      [&](bare_config& cfg) { cfg.set("openssl.cafile", d + "/ca.pem"); });
    CHECK(to_errc(err) == errc::bad_request);
    CHECK(describe(err).find("load_tls") != std::string::npos);
  }
  GIVEN("a key that does not belong to the certificate") {
    auto err = try_publish([&](bare_config& cfg) {
      tls_certs::use(cfg, "server");
      cfg.set("openssl.key", d + "/client.key");
    });
    CHECK(to_errc(err) == errc::bad_request);
    CHECK(describe(err).find("openssl.key") != std::string::npos);
  }
  GIVEN("a missing CA file") {
    auto err = try_publish([&](bare_config& cfg) {
      tls_certs::use(cfg, "server");
      cfg.set("openssl.cafile", d + "/no-such-ca.pem");
    });
    CHECK(to_errc(err) == errc::bad_request);
  }
}

SCENARIO("a peer reaches no storage by name, only the publication",
         "[remote][surface]") {
  // CAF 0.17 delivers a connected peer's messages to any actor named in the
  // node's registry: the default storage must not be one of them.
  two_nodes n;
  auto& dflt = default_storage(n.server_sys);
  blocking_client{n.server_sys, dflt}.store<counter>(new_id(), counter{1});
  auto named = n.client_sys.middleman().remote_lookup(
    caf::atom("ctxstore"), n.remote.registry().node());
  if (named) {
    caf::scoped_actor self{n.client_sys};
    bool answered = false;
    self
      ->request(caf::actor_cast<caf::actor>(named), std::chrono::seconds{2},
                messages::stats_atom::value)
      .receive([&](const storage_stats&) { answered = true; },
               [&](caf::error&) {});
    CHECK_FALSE(answered);
  }
  CHECK(blocking_client{n.server_sys, dflt}.stats().contexts == 1);
}
