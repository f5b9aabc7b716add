#include "ctxstore/actors/feed_remote.hpp"

#include <utility>

#include <caf/all.hpp>

#include "ctxstore/actors/host_scope.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/detail/async_core.hpp"
#include "ctxstore/error.hpp"
#include "ctxstore/messages/payload.hpp"
#include "ctxstore/messages/protocol.hpp"
#include "ctxstore/watch_handle.hpp"

namespace ctxstore::actors {

using namespace messages;

namespace {

// -- the storage's node
// -------------------------------------------------------------

struct forwarder_state {
  static inline const char* name = "ctxstore.feed_forwarder";
  watch_handle watch;
  // Nobody else holds the forwarder (the watch wakes it through responses
  // to itself): it lives until it quits, not until CAF finds it unreachable.
  caf::actor keep_alive;
};

caf::behavior forwarder(caf::stateful_actor<forwarder_state>* self, storage st,
                        context_key key, bool all, uint64_t after,
                        uint64_t incarnation, caf::actor sink,
                        caf::typed_response_promise<caf::ok_atom> started) {
  // The watcher, or its node, is gone: so is this watch.
  self->state.keep_alive = caf::actor_cast<caf::actor>(self);
  self->monitor(sink);
  self->set_down_handler([self](caf::down_msg&) { self->quit(); });
  // The watcher's queue holds as many changes as a local watcher's would;
  // sent first, it reaches the receiver before any change.
  self->send(sink, watch_atom::value,
             static_cast<uint64_t>(st.board()->defaults().changes->buffer()));
  detail::async_core core{self, std::move(st)};
  auto type = key.type;
  self->state.watch = watch_handle{core.watch(
    key, all, after, incarnation, *detail::context_type_of(key.type),
    [self, sink, type](detail::raw_change& x) {
      self->send(sink, change_atom::value, context_key{type, x.id}, x.version,
                 x.skipped, x.incarnation, payload{std::move(x.value)});
      return true;
    },
    [self, sink](caf::error& err) {
      self->send(sink, change_atom::value, err);
      self->quit();
    })};
  // Registered: the watcher's call returns, and every later commit reaches it.
  started.deliver(caf::ok_atom::value);
  return {[](caf::unit_t) {}}; // the watch wakes it through its own responses
}

// -- the watcher's node
// -------------------------------------------------------------

struct receiver_state {
  static inline const char* name = "ctxstore.feed_receiver";
};

caf::behavior receiver(caf::stateful_actor<receiver_state>* self,
                       std::shared_ptr<feed_sink> sink, caf::actor registry) {
  self->monitor(registry);
  self->set_down_handler([self, sink](caf::down_msg&) {
    sink->fail(make_error(errc::storage_down, "the storage is gone"));
    self->quit();
  });
  return {
    [sink](watch_atom, uint64_t buffer) {
      sink->set_buffer(static_cast<size_t>(buffer));
    },
    [self, sink](change_atom, context_key& key, uint64_t version,
                 uint64_t skipped, uint64_t incarnation, payload& value) {
      host_scope host{self->context()}; // the watcher runs next, here
      if (!sink->push(feed_change{std::move(key), version,
                                  std::move(value.value), skipped,
                                  incarnation}))
        self->quit(); // the watcher is done
    },
    [self, sink](change_atom, caf::error& err) {
      sink->fail(std::move(err));
      self->quit();
    },
  };
}

} // namespace

caf::result<caf::ok_atom>
start_forwarder(caf::local_actor* registry,
                const std::shared_ptr<context_index>& board,
                const context_key& key, bool all, uint64_t after,
                uint64_t incarnation, const caf::actor& sink) {
  if (!sink)
    return make_error(errc::bad_request, "watch: no sink");
  if (all) {
    if (detail::context_type_of(key.type) == nullptr)
      return make_error(errc::unknown_type,
                        "unknown context type: " + key.type);
  } else if (auto err = validate_key(key)) {
    return err;
  }
  // A handle that does not own the storage: the watch ends when it stops.
  storage st{caf::actor_cast<caf::actor>(registry), board};
  auto started = registry->make_response_promise<caf::ok_atom>();
  registry->system().spawn<caf::hidden>(forwarder, std::move(st), key, all,
                                        after, incarnation, sink, started);
  return started;
}

caf::actor spawn_feed_receiver(caf::actor_system& sys,
                               std::shared_ptr<feed_sink> sink,
                               const caf::actor& registry) {
  return sys.spawn<caf::hidden>(receiver, std::move(sink), registry);
}

} // namespace ctxstore::actors
