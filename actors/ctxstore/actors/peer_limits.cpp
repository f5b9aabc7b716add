#include "ctxstore/actors/peer_limits.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <future>
#include <memory>
#include <typeinfo>

#include <caf/all.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/io/abstract_broker.hpp>
#include <caf/io/basp_broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/network/multiplexer.hpp>

#include "ctxstore/detail/memory_limits.hpp"

namespace ctxstore::actors {

namespace {

/// The BASP broker of `sys`'s middleman. Only on the middleman's thread.
caf::io::abstract_broker* basp_broker_of(caf::actor_system& sys) {
  auto hdl
    = sys.middleman().named_broker<caf::io::basp_broker>(caf::atom("BASP"));
  auto ptr = caf::actor_cast<caf::abstract_actor*>(hdl);
  return static_cast<caf::io::abstract_broker*>(ptr);
}

/// Shuts the connection's socket down in both directions: the multiplexer
/// then sees it fail, and CAF closes it (it reports the peer's node as
/// unreachable) and frees its buffers, whatever is still unsent. The handle
/// of a TCP connection is its socket (CAF 0.17's default multiplexer).
void cut_off(caf::io::connection_handle hdl) {
  ::shutdown(static_cast<int>(hdl.id()), SHUT_RDWR);
}

/// True if the socket cannot take more data now: the peer does not read
/// (CAF writes until the socket is full). Data that still fits is written
/// by the middleman's graceful shutdown without waiting for the peer.
bool send_buffer_full(caf::io::connection_handle hdl) {
  pollfd p{static_cast<int>(hdl.id()), POLLOUT, 0};
  return ::poll(&p, 1, 0) >= 0 && (p.revents & POLLOUT) == 0;
}

struct sweeper_state {
  // Nobody else holds the sweeper: CAF 0.17 stops an actor that nothing
  // references (exit_reason::unreachable), before the registry stops.
  caf::actor keep_alive;
  static inline const char* name = "ctxstore.stop_sweeper";
};

caf::behavior sweeper(caf::stateful_actor<sweeper_state>* self,
                      caf::actor_addr registry) {
  auto sweep = [self] {
    auto done = std::make_shared<std::promise<void>>();
    auto result = done->get_future();
    auto& sys = self->system();
    sys.middleman().backend().dispatch([&sys, done] {
      auto broker = basp_broker_of(sys);
      for (auto hdl : broker->connections())
        if (send_buffer_full(hdl))
          cut_off(hdl);
      done->set_value();
    });
    // Bounded: the middleman's thread runs only short steps.
    result.wait_for(std::chrono::seconds{1});
    self->state.keep_alive = nullptr;
    self->quit();
  };
  self->set_down_handler([sweep](caf::down_msg&) { sweep(); });
  self->state.keep_alive = caf::actor_cast<caf::actor>(self);
  // CAF's monitor(actor_addr) uses the address's object without checking
  // that it still lives: a registry that stopped before this actor started
  // was an abstract_actor in destruction ("pure virtual method called").
  if (auto alive = caf::actor_cast<caf::strong_actor_ptr>(registry))
    self->monitor(alive);
  else
    sweep();
  return {[](caf::unit_t) {}};
}

} // namespace

bool peer_over_limit(caf::serializer& sink) {
  // Values are written for other nodes by the BASP broker into the
  // connection's write buffer; anything else is left alone.
  if (typeid(sink) != typeid(caf::binary_serializer))
    return false;
  auto& buf = static_cast<caf::binary_serializer&>(sink).buf();
  if (buf.size() <= detail::kept_buffer_bytes || sink.context() == nullptr)
    return false;
  auto& sys = sink.context()->system();
  // Only the middleman's own thread may look at its connections.
  if (!sys.has_middleman() || sink.context() != &sys.middleman().backend())
    return false;
  auto limit = caf::get_or(sys.config(), "ctxstore.max-pending-bytes",
                           default_max_pending_bytes);
  if (limit <= 0 || buf.size() <= static_cast<size_t>(limit))
    return false;
  auto broker = basp_broker_of(sys);
  for (auto hdl : broker->connections())
    if (&broker->wr_buf(hdl) == &buf) {
      cut_off(hdl);
      return true;
    }
  return false;
}

caf::actor spawn_stop_sweeper(caf::actor_system& sys,
                              const caf::actor& registry) {
  return sys.spawn(sweeper, registry.address());
}

} // namespace ctxstore::actors
