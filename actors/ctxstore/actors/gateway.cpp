#include "ctxstore/actors/gateway.hpp"

#include <caf/all.hpp>

#include "ctxstore/error.hpp"
#include "ctxstore/messages/protocol.hpp"

namespace ctxstore::actors {

namespace {

struct gateway_state {
  static inline const char* name = "ctxstore.gateway";
};

caf::behavior gateway_behavior(caf::stateful_actor<gateway_state>* self,
                               caf::actor_addr registry,
                               std::shared_ptr<actors::context_index> board) {
  self->set_default_handler(
    [registry, board](caf::scheduled_actor* ptr,
                      caf::message_view& x) -> caf::result<caf::message> {
      // A snapshot reads the last commit like a local client; a miss (unknown
      // key, bad input, storage stopped) is the registry's to answer.
      auto& msg = x.content();
      if (board
          && msg.match_elements<messages::snapshot_atom, messages::context_key>())
        if (auto hit = board->find(msg.get_as<messages::context_key>(1)))
          return caf::make_message(std::move(*hit));
      auto dest = caf::actor_cast<caf::actor>(registry);
      if (!dest)
        return make_error(errc::storage_down, "the storage has stopped");
      auto rp = static_cast<caf::local_actor*>(ptr)->make_response_promise();
      rp.delegate(dest, x.move_content_to_message());
      return rp;
    });
  // Stop with the storage: the actor system's registry of published actors
  // must not be the last to hold us (releasing us after the system is gone
  // would run our cleanup against it).
  self->set_down_handler([=](caf::down_msg&) { self->quit(); });
  // A stray error sent as a plain message must not stop the gateway.
  self->set_error_handler([](caf::error&) {});
  self->monitor(registry);
  return {[](caf::unit_t) {}}; // everything goes to the default handler
}

} // namespace

caf::actor spawn_gateway(caf::actor_system& sys, const caf::actor& registry,
                         std::shared_ptr<actors::context_index> board) {
  return sys.spawn<caf::hidden>(gateway_behavior, registry.address(),
                                std::move(board));
}

} // namespace ctxstore::actors
