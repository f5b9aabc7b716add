#include "caf_internals.hpp"

#include <utility>

#include <caf/actor_clock.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/behavior.hpp>
#include <caf/config_option_set.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/execution_unit.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>

namespace ctxstore::detail {

namespace {

/// The config's option set is protected; a pointer to the member, formed in
/// a derived class, reaches it without a cast of the object.
struct option_access : caf::actor_system_config {
  static caf::config_option_set& of(caf::actor_system_config& cfg) {
    caf::config_option_set caf::actor_system_config::*member
      = &option_access::custom_options_;
    return cfg.*member;
  }
};

} // namespace

caf::config_option_set& custom_options(caf::actor_system_config& cfg) {
  return option_access::of(cfg);
}

caf::message_id new_response_id(caf::event_based_actor* self) {
  return self->new_request_id(caf::message_priority::normal).response_id();
}

void on_own_response(caf::event_based_actor* self, caf::message_id rid,
                     caf::behavior handler) {
  self->add_multiplexed_response_handler(rid, std::move(handler));
}

void respond_ok_to_self(caf::event_based_actor* self, caf::message_id rid) {
  self->enqueue(caf::make_mailbox_element(self->ctrl(), rid, caf::no_stages,
                                          caf::ok_atom::value),
                self->context());
}

namespace {

/// `host` if it is a worker of `to`'s actor system (another system's worker
/// must not run it), else null: its scheduler picks one.
caf::execution_unit* host_for(const caf::strong_actor_ptr& to,
                              caf::execution_unit* host) noexcept {
  return host != nullptr && &host->system() == to->home_system ? host
                                                                : nullptr;
}

} // namespace

void enqueue_ok(const caf::strong_actor_ptr& to,
                const caf::strong_actor_ptr& from, caf::message_id rid,
                caf::execution_unit* host) {
  host = host_for(to, host);
  to->enqueue(caf::make_mailbox_element(from, rid, caf::no_stages,
                                        caf::ok_atom::value),
              host);
}

void enqueue_error(const caf::strong_actor_ptr& to,
                   const caf::strong_actor_ptr& from, caf::message_id rid,
                   caf::error err, caf::execution_unit* host) {
  host = host_for(to, host);
  to->enqueue(caf::make_mailbox_element(from, rid, caf::no_stages,
                                        std::move(err)),
              host);
}

void schedule_to_self(const caf::strong_actor_ptr& to, caf::timespan delay,
                      caf::message content) {
  auto& clock = to->home_system->clock();
  clock.schedule_message(clock.now() + delay, to,
                         caf::make_mailbox_element(to, caf::make_message_id(),
                                                   caf::no_stages,
                                                   std::move(content)));
}

} // namespace ctxstore::detail
