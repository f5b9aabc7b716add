#include "ctxstore/actors/gateway.hpp"

#include <caf/all.hpp>

#include "ctxstore/error.hpp"
#include "ctxstore/messages/protocol.hpp"

namespace ctxstore::actors {

namespace {

struct gateway_state {
  static inline const char* name = "ctxstore.gateway";
};

using namespace messages;

/// The value a store, commit or release carries; null for other requests.
const payload* value_of(const caf::type_erased_tuple& msg) {
  if (msg.match_elements<store_atom, context_key, payload, uint64_t>())
    return &msg.get_as<payload>(2);
  if (msg.match_elements<commit_atom, context_key, uint64_t, payload>()
      || msg.match_elements<release_atom, context_key, uint64_t, payload>())
    return &msg.get_as<payload>(3);
  return nullptr;
}

/// Why the gateway turns `msg` away; none if it may pass.
caf::error refusal(const caf::type_erased_tuple& msg,
                   const gateway_options& opts) {
  if (msg.empty() || !msg.match_element<caf::atom_value>(0))
    return make_error(errc::bad_request, "not a ctxstore request");
  switch (static_cast<uint64_t>(msg.get_as<caf::atom_value>(0))) {
  case snapshot_atom::uint_value():
  case stats_atom::uint_value():
  case info_atom::uint_value():
  case metrics_atom::uint_value():
  case watch_atom::uint_value(): // reads, like a snapshot
    return caf::none;
  case acquire_atom::uint_value():
  case store_atom::uint_value():
  case erase_atom::uint_value():
  case commit_atom::uint_value():
  case release_atom::uint_value():
  case abort_atom::uint_value():
    if (opts.read_only)
      return make_error(errc::forbidden,
                        "this publication is read-only: "
                          + caf::to_string(msg.get_as<caf::atom_value>(0))
                          + " is not allowed");
    if (opts.max_value_bytes > 0)
      if (auto value = value_of(msg);
          value != nullptr && value->wire_bytes > opts.max_value_bytes)
        return make_error(errc::bad_request,
                          "the value takes " + std::to_string(value->wire_bytes)
                            + " bytes, more than ctxstore.max-value-bytes ("
                            + std::to_string(opts.max_value_bytes) + ")");
    return caf::none;
  default:
    return make_error(errc::bad_request, "not a ctxstore request");
  }
}

caf::behavior gateway_behavior(caf::stateful_actor<gateway_state>* self,
                               caf::actor_addr registry,
                               std::shared_ptr<actors::context_index> board,
                               gateway_options opts) {
  self->set_default_handler(
    [registry, board, opts](caf::scheduled_actor* ptr,
                            caf::message_view& x) -> caf::result<caf::message> {
      auto& msg = x.content();
      if (board)
        board->defaults().metrics->remote_requests.fetch_add(
          1, std::memory_order_relaxed);
      if (auto err = refusal(msg, opts)) {
        // A client ends its session when its release fails: so does the
        // storage (a plain abort from the holder, answered with nothing), or
        // the context would stay held by a session nobody uses.
        if (msg.match_elements<release_atom, context_key, uint64_t, payload>())
          if (auto dest = caf::actor_cast<caf::actor>(registry)) {
            auto self = static_cast<caf::local_actor*>(ptr);
            dest->enqueue(caf::make_mailbox_element(
                            self->current_sender(), caf::make_message_id(), {},
                            abort_atom::value, msg.get_as<context_key>(1),
                            msg.get_as<uint64_t>(2)),
                          self->context());
          }
        return err;
      }
      // A snapshot reads the last commit like a local client; a miss (unknown
      // key, bad input, storage stopped) is the registry's to answer.
      if (board && msg.match_elements<snapshot_atom, context_key>())
        if (auto hit = board->find(msg.get_as<context_key>(1)))
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
  // CAF's monitor(actor_addr) uses the object without checking that it still
  // lives (a registry already gone: "pure virtual method called").
  if (auto alive = caf::actor_cast<caf::strong_actor_ptr>(registry))
    self->monitor(alive);
  else
    self->quit();
  return {[](caf::unit_t) {}}; // everything goes to the default handler
}

} // namespace

caf::actor spawn_gateway(caf::actor_system& sys, const caf::actor& registry,
                         std::shared_ptr<actors::context_index> board,
                         gateway_options opts) {
  return sys.spawn<caf::hidden>(gateway_behavior, registry.address(),
                                std::move(board), opts);
}

} // namespace ctxstore::actors
