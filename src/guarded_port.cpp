#include "guarded_port.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/default_multiplexer.hpp>
#include <caf/io/network/native_socket.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/send.hpp>

#include "guarded_doorman.hpp"
#include "guarded_scribe.hpp"
#include "port_census.hpp"

namespace ctxstore::detail {

namespace {

namespace net = caf::io::network;

/// Times out handshakes and resumes a paused doorman, until `gateway`
/// stops.
caf::behavior watchdog(caf::event_based_actor* self, census_ptr peers,
                       caf::actor gateway) {
  using namespace std::chrono;
  auto period = std::clamp(duration_cast<milliseconds>(
                             peers->limits.handshake_timeout / 4),
                           milliseconds{10}, milliseconds{100});
  self->set_down_handler([self, peers](caf::down_msg&) {
    peers->forget_paused();
    self->quit();
  });
  self->monitor(gateway);
  self->delayed_send(self, period, caf::tick_atom_v);
  return {
    [self, peers, period](caf::tick_atom) {
      peers->sweep(false);
      if (auto resume = peers->due_to_resume())
        self->system().middleman().backend().dispatch(std::move(resume));
      self->delayed_send(self, period, caf::tick_atom_v);
    },
  };
}

caf::actor basp_broker_of(caf::actor_system& sys) {
  return sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
}

/// BASP's answer to a connect, handed from the middleman's thread to the
/// caller under a mutex: a CAF mailbox is no edge ThreadSanitizer sees.
struct connect_handoff {
  std::mutex mtx;
  std::condition_variable cv;
  bool done = false;
  caf::strong_actor_ptr remote;
  caf::error failure;

  void set(caf::strong_actor_ptr x, caf::error err) {
    std::lock_guard<std::mutex> guard{mtx};
    remote = std::move(x);
    failure = std::move(err);
    done = true;
    cv.notify_all();
  }
};

/// Asks BASP for the handshake over `scribe`, as CAF's middleman actor does
/// for a remote_actor; a broker, so that the answer is read on the
/// middleman's thread, where BASP made it.
caf::behavior connect_asker(caf::io::broker* self, caf::io::scribe_ptr scribe,
                            uint16_t port, caf::timespan timeout,
                            std::shared_ptr<connect_handoff> handoff) {
  self
    ->request(basp_broker_of(self->system()), timeout, caf::connect_atom_v,
              std::move(scribe), port)
    .then(
      [self, handoff, port](caf::node_id&, caf::strong_actor_ptr& ptr,
                            std::set<std::string>&) {
        caf::error err;
        if (!ptr)
          err = caf::make_error(caf::sec::no_actor_published_at_port, port);
        handoff->set(std::move(ptr), std::move(err));
        self->quit();
      },
      [self, handoff](caf::error& err) {
        handoff->set(nullptr, std::move(err));
        self->quit();
      });
  return {[](caf::unit_t) {}};
}

} // namespace

port_limits port_limits_from(const caf::actor_system& sys,
                             size_t max_value_bytes) {
  port_limits result;
  auto& cfg = sys.config();
  result.handshake_timeout = caf::get_or(cfg, "ctxstore.handshake-timeout",
                                         result.handshake_timeout);
  auto max_connections = caf::get_or(cfg, "ctxstore.max-connections",
                                     int64_t{256});
  result.max_connections
    = max_connections > 0 ? static_cast<size_t>(max_connections) : 0;
  if (max_value_bytes > 0)
    result.max_message_bytes = max_value_bytes + message_overhead_bytes;
  return result;
}

caf::expected<uint16_t> publish_guarded(caf::actor_system& sys,
                                        const caf::actor& whom, uint16_t port,
                                        const std::string& address,
                                        const port_limits& limits, bool tls) {
  auto mx = dynamic_cast<net::default_multiplexer*>(&sys.middleman().backend());
  if (mx == nullptr) // a test multiplexer: no sockets to guard
    return tls ? caf::openssl::publish(whom, port, address.c_str(), true)
               : sys.middleman().publish(whom, port, address.c_str(), true);
  auto fd = net::new_tcp_acceptor_impl(
    port, address.empty() ? nullptr : address.c_str(), true);
  if (!fd)
    return std::move(fd.error());
  auto peers = std::make_shared<census>(limits);
  peers->keep_spare();
  auto doorman = make_guarded_doorman(*mx, *fd, peers, tls);
  auto actual_port = doorman->port();
  // What CAF's middleman actor sends the broker for a publish, from the
  // middleman's thread (the hand-over through its pipe is an edge
  // ThreadSanitizer sees; a CAF mailbox is not).
  sys.middleman().backend().dispatch(
    [basp = basp_broker_of(sys), doorman = std::move(doorman), actual_port,
     who = caf::actor_cast<caf::strong_actor_ptr>(whom)]() mutable {
      caf::anon_send(basp, caf::publish_atom_v, std::move(doorman),
                     actual_port, std::move(who), std::set<std::string>{});
    });
  sys.spawn<caf::hidden>(watchdog, peers, whom);
  return actual_port;
}

caf::expected<caf::actor> connect_guarded(caf::actor_system& sys,
                                          const std::string& host,
                                          uint16_t port,
                                          const port_limits& limits, bool tls) {
  auto mx = dynamic_cast<net::default_multiplexer*>(&sys.middleman().backend());
  if (mx == nullptr)
    return tls ? caf::openssl::remote_actor(sys, host, port)
               : sys.middleman().remote_actor(host, port);
  auto fd = net::new_tcp_connection(host, port);
  if (!fd)
    return std::move(fd.error());
  auto peers = std::make_shared<census>(limits);
  auto scribe = make_guarded_scribe(sys, *mx, *fd, peers, tls, false);
  if (scribe == nullptr) {
    net::close_socket(*fd);
    return caf::make_error(caf::sec::cannot_connect_to_node);
  }
  auto handoff = std::make_shared<connect_handoff>();
  sys.middleman().spawn_broker<caf::hidden>(connect_asker, std::move(scribe),
                                            port, limits.handshake_timeout,
                                            handoff);
  caf::expected<caf::actor> result{caf::sec::request_timeout};
  {
    std::unique_lock<std::mutex> lock{handoff->mtx};
    // The broker answers within the timeout; a second more against a
    // middleman that stopped.
    if (handoff->cv.wait_for(lock,
                             limits.handshake_timeout + std::chrono::seconds{1},
                             [&] { return handoff->done; })) {
      if (handoff->remote)
        result = caf::actor_cast<caf::actor>(std::move(handoff->remote));
      else
        result = std::move(handoff->failure);
    }
  }
  if (!result)
    peers->sweep(true); // no handshake in time: give up the connection
  return result;
}

bool is_loopback(const std::string& address) {
  if (address == "localhost")
    return true;
  in_addr v4{};
  if (::inet_pton(AF_INET, address.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (::inet_pton(AF_INET6, address.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

} // namespace ctxstore::detail
