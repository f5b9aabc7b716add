#include "ctxstore/remote.hpp"

#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include "ctxstore/actors/gateway.hpp"
#include "ctxstore/actors/peer_limits.hpp"
#include "ctxstore/actors/registry.hpp"
#include "caf_internals.hpp"
#include "remote_guard.hpp"
#include "ctxstore/error.hpp"

namespace ctxstore {

namespace {

caf::error need_middleman() {
  return make_error(errc::storage_down,
                    "the actor system has no middleman: call "
                    "cfg.load<caf::io::middleman>() before creating it");
}

/// Sets `name` to `value` unless the config already has a value for it.
template <class T>
void set_unless_present(caf::actor_system_config& cfg, const char* name,
                        T value) {
  if (caf::get_if(&cfg.content, name) == nullptr)
    cfg.set(name, std::move(value));
}

} // namespace

void apply_remote_defaults(caf::actor_system_config& cfg) {
  set_unless_present(cfg, "middleman.workers", size_t{0});
  set_unless_present(cfg, "work-stealing.moderate-poll-attempts", size_t{0});
}

caf::expected<uint16_t> publish(caf::actor_system& sys, const storage& st,
                                uint16_t port, const std::string& address) {
  if (!sys.has_middleman())
    return need_middleman();
  if (!st)
    return make_error(errc::storage_down, "no storage behind this handle");
  // The default storage lives (hidden) until the system is destroyed, so a
  // gateway to it would outlive the system's actors: see gateway.hpp.
  if (caf::actor_cast<caf::strong_actor_ptr>(st.registry())
      == sys.registry().get(actors::default_storage_name))
    return make_error(errc::bad_request,
                      "publish a storage from spawn_storage, not the default "
                      "storage");
  auto gateway = actors::spawn_gateway(sys, st.registry(), st.board());
  auto result = sys.middleman().publish(gateway, port, address.c_str(), true);
  if (!result) {
    caf::anon_send_exit(gateway, caf::exit_reason::user_shutdown);
    return make_error(errc::storage_down, "cannot publish on " + address + ":"
                                            + std::to_string(port) + ": "
                                            + sys.render(result.error()));
  }
  // Peers that stopped reading must not keep the node's shutdown waiting.
  actors::spawn_stop_sweeper(sys, st.registry());
  return *result;
}

caf::expected<storage> connect(caf::actor_system& sys, const std::string& host,
                               uint16_t port) {
  if (!sys.has_middleman())
    return need_middleman();
  auto result = sys.middleman().remote_actor(host, port);
  if (!result)
    return make_error(errc::storage_down, "cannot connect to " + host + ":"
                                            + std::to_string(port) + ": "
                                            + sys.render(result.error()));
  return storage{std::move(*result)};
}

namespace detail {

namespace {

class request_watch : public caf::attachable {
public:
  static constexpr size_t token_type = 0x63747873; // "ctxs"

  request_watch(const caf::strong_actor_ptr& requester, caf::message_id mid)
      : requester_(caf::actor_cast<caf::weak_actor_ptr>(requester)), mid_(mid) {
    // nop
  }

  void actor_exited(const caf::error& reason,
                    caf::execution_unit* host) override {
    auto who = caf::actor_cast<caf::strong_actor_ptr>(requester_);
    if (!who)
      return;
    auto err
      = make_error(errc::storage_down, "lost the connection to the storage ("
                                         + caf::to_string(reason) + ")");
    // The handle's id is already the response id (mixin/requester.hpp).
    auto rid = mid_.is_response() ? mid_ : mid_.response_id();
    enqueue_error(who, nullptr, rid, std::move(err), host);
  }

  bool matches(const token& what) override {
    return what.subtype == token_type && what.ptr == this;
  }

private:
  caf::weak_actor_ptr requester_;
  caf::message_id mid_;
};

} // namespace

remote_guard::remote_guard(const caf::actor& dest,
                           const caf::strong_actor_ptr& requester,
                           caf::message_id mid)
    : dest_(dest) {
  auto watch = new request_watch(requester, mid);
  watch_ = watch;
  // Attaching to an actor that is already gone runs the watch at once.
  caf::actor_cast<caf::abstract_actor*>(dest_)->attach(
    caf::attachable_ptr{watch});
}

remote_guard::~remote_guard() {
  caf::actor_cast<caf::abstract_actor*>(dest_)->detach(
    caf::attachable::token{request_watch::token_type, watch_});
}

std::shared_ptr<remote_guard>
remote_guard::make(const caf::actor& dest,
                   const caf::strong_actor_ptr& requester,
                   caf::message_id mid) {
  if (!dest || !requester || dest->node() == requester->node())
    return nullptr;
  return std::make_shared<remote_guard>(dest, requester, mid);
}

} // namespace detail

} // namespace ctxstore
