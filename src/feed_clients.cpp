#include <atomic>
#include <memory>
#include <optional>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/attachable.hpp>
#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>

#include "caf_internals.hpp"
#include "ctxstore/actors/context_index.hpp"
#include "ctxstore/actors/feed.hpp"
#include "ctxstore/actors/feed_remote.hpp"
#include "ctxstore/actors/host_scope.hpp"
#include "ctxstore/async_client.hpp"
#include "ctxstore/blocking_client.hpp"
#include "ctxstore/messages/protocol.hpp"
#include "requester.hpp"

// The clients' side of the change feed (issue 22): a watch registers a sink
// in the storage's feed (actors/.../feed.hpp), settles where it starts
// (the feed's retained changes, or the context's current value read like a
// snapshot), and then drains the sink: a thread waits on it (`watcher`), an
// actor is woken through its own mailbox (`watch_handle`).

namespace ctxstore::detail {

using namespace ctxstore::messages;
using actors::feed_change;
using actors::feed_sink;

namespace {

/// True if `x` holds one value of `type`.
bool holds_type(const caf::message& x, const std::type_info& type) {
  return x.size() == 1 && x.type(0).second != nullptr
         && *x.type(0).second == type;
}

/// Offers `sink` its starting point: `current` (nothing: the context does
/// not exist), read like a snapshot after the sink was registered. The sink
/// counts what a resuming watcher missed (feed_sink::resume_after).
void seed(feed_sink& sink, const std::shared_ptr<actors::context_index>& board,
          const context_key& key, uint64_t after,
          const versioned_value* current) {
  if (current == nullptr) {
    if (after > 0) // it had something, now nothing: erased meanwhile
      sink.offer(feed_change{key, 0, caf::message{}, 1, 0});
    return;
  }
  // The context's life is known to its cell: read it there, under its lock,
  // which orders this offer with the commits the sink gets.
  if (auto cell = board ? board->find_cell(key) : nullptr) {
    std::lock_guard<std::mutex> guard{cell->mtx};
    if (cell->present() && !cell->loading() && !cell->stopped()) {
      sink.offer(feed_change{key, cell->version(), cell->committed().value, 0,
                             cell->incarnation()});
      return;
    }
  }
  // Left memory meanwhile: its value, of an unknown life.
  sink.offer(feed_change{key, current->version, current->value.value, 0, 0});
}

caf::error check_watch_key(const context_key& key, bool all) {
  if (all)
    return context_type_of(key.type) != nullptr
             ? caf::error{}
             : make_error(errc::unknown_type, "unknown context type");
  return validate_key(key);
}

std::shared_ptr<actors::feed> local_feed(const storage& st) {
  if (auto& board = st.board())
    return board->defaults().changes;
  return nullptr;
}

raw_change unpack_change(feed_change& x) {
  return raw_change{x.key.id, x.version, std::move(x.value), x.skipped,
                    x.incarnation};
}

} // namespace

// -- blocking
// ----------------------------------------------------------------------

watch_core::~watch_core() {
  if (end_)
    end_();
}

std::optional<raw_change> watch_core::next(std::chrono::milliseconds wait) {
  if (auto x = sink_->next(wait))
    return unpack_change(*x);
  if (auto err = sink_->failure())
    throw_error(err);
  return std::nullopt;
}

void throw_watch_type_mismatch() {
  throw error{errc::type_mismatch, "the watched context holds another type"};
}

std::unique_ptr<watch_core> blocking_core::watch(const context_key& key,
                                                 bool all, uint64_t after,
                                                 uint64_t incarnation,
                                                 const std::type_info& type) {
  if (auto err = check_watch_key(key, all))
    throw_error(err);
  auto changes = local_feed(storage_);
  std::optional<context_id> id;
  if (!all)
    id = key.id;
  if (!changes) { // on another node: its changes come to a receiver here
    auto sink = std::make_shared<feed_sink>(key.type, id,
                                            storage_options{}.watch_buffer);
    auto r = actors::spawn_feed_receiver(sys_, sink, storage_.registry());
    auto core = std::make_unique<watch_core>(sink, [r, sink] {
      caf::anon_send_exit(r, caf::exit_reason::user_shutdown);
      sink->close();
    });
    call_via_pool<caf::ok_atom>(*this, caf::actor{}, watch_atom::value, key,
                                all, after, incarnation, r);
    return core;
  }
  auto sink = std::make_shared<feed_sink>(key.type, id, changes->buffer());
  auto core = std::make_unique<watch_core>(sink, [changes, sink] {
    changes->remove(sink.get());
    sink->close();
  });
  if (changes->add(sink, after, incarnation))
    return core;
  std::optional<versioned_value> current;
  try {
    current = snapshot(key);
  } catch (const error& e) {
    if (e.code() != errc::no_such_context)
      throw; // `core` unregisters the sink
  }
  if (current && !holds_type(current->value.value, type))
    throw_watch_type_mismatch();
  seed(*sink, storage_.board(), key, after, current ? &*current : nullptr);
  return core;
}

// -- async
// --------------------------------------------------------------------------

namespace {

/// A sink that wakes its actor with a response to itself (see
/// src/answer_queue.cpp: no behavior of the actor can intercept it).
class actor_sink final : public feed_sink {
public:
  actor_sink(std::string type, std::optional<context_id> id, size_t buffer,
             caf::actor_addr actor)
      : feed_sink(std::move(type), id, buffer), actor_(std::move(actor)) {
    // nop
  }

  /// The actor waits for response `rid`: sent when a change arrives.
  void rearm(caf::message_id rid) {
    std::lock_guard<std::mutex> guard{mtx_};
    rid_ = rid;
    arm_locked();
  }

protected:
  bool ready() noexcept override {
    auto hdl = caf::actor_cast<caf::strong_actor_ptr>(actor_);
    if (!hdl)
      return false; // the actor is gone: so is its watch
    enqueue_ok(hdl, nullptr, rid_, actors::current_host);
    return true;
  }

private:
  caf::actor_addr actor_;
  caf::message_id rid_;
};

} // namespace

struct async_watch {
  caf::event_based_actor* self = nullptr;
  std::shared_ptr<actor_sink> sink;
  std::shared_ptr<actors::feed> changes;
  async_core::change_handler on_change;
  error_callback on_err;
  caf::attachable* guard = nullptr; // ends the watch when the actor ends
  caf::actor receiver; // a storage on another node: its changes come here
  // Atomic: a handle kept past its actor may be destroyed on another thread
  // after the actor's end stopped the watch.
  std::atomic<bool> stopped{false};
};

namespace {

/// Ends `w`; `detach`: called inside its running actor, which drops the
/// guard (else the actor is ending, and the guard called us).
void end_watch(async_watch& w, bool detach) noexcept {
  if (w.stopped.exchange(true))
    return;
  if (w.changes)
    w.changes->remove(w.sink.get());
  if (w.receiver)
    caf::anon_send_exit(w.receiver, caf::exit_reason::user_shutdown);
  w.sink->close(); // the response it waits for still comes: it sees `stopped`
  if (detach && w.guard != nullptr)
    w.self->detach(
      caf::attachable::token{caf::attachable::token::anonymous, w.guard});
  w.guard = nullptr;
}

/// Attached to the watching actor: its end ends the watch (the actor's
/// monitor of its own watches).
class watch_guard final : public caf::attachable {
public:
  explicit watch_guard(std::weak_ptr<async_watch> w) : w_(std::move(w)) {
    // nop
  }

  void actor_exited(const caf::error&, caf::execution_unit*) override {
    if (auto w = w_.lock())
      end_watch(*w, false);
  }

  bool matches(const token& what) override {
    return what.subtype == token::anonymous && what.ptr == this;
  }

private:
  std::weak_ptr<async_watch> w_;
};

} // namespace

void stop_async_watch(async_watch& w) noexcept {
  end_watch(w, true);
}

namespace {

void arm(const std::shared_ptr<async_watch>& w);

void drain(const std::shared_ptr<async_watch>& w) {
  if (w->stopped)
    return;
  for (auto& x : w->sink->take_all()) {
    auto raw = unpack_change(x);
    if (!w->on_change(raw)) {
      stop_async_watch(*w);
      return;
    }
    if (w->stopped) // the handler stopped it
      return;
  }
  if (auto err = w->sink->failure()) {
    stop_async_watch(*w);
    w->on_err(err);
    return;
  }
  arm(w);
}

void arm(const std::shared_ptr<async_watch>& w) {
  auto rid = new_response_id(w->self);
  on_own_response(
    w->self, rid,
    caf::behavior{[w](caf::ok_atom) { drain(w); }, [](caf::error&) {}});
  w->sink->rearm(rid);
}

} // namespace

std::shared_ptr<async_watch>
async_core::watch(const context_key& key, bool all, uint64_t after,
                  uint64_t incarnation, const std::type_info& type,
                  change_handler on_change, error_callback on_err) const {
  if (auto err = check_watch_key(key, all)) {
    answer_later([on_err, err]() mutable { on_err(err); });
    return nullptr;
  }
  auto changes = local_feed(*home_);
  std::optional<context_id> id;
  if (!all)
    id = key.id;
  auto sink = std::make_shared<actor_sink>(
    key.type, id, changes ? changes->buffer() : storage_options{}.watch_buffer,
    caf::actor_cast<caf::actor_addr>(self_));
  auto w = std::make_shared<async_watch>();
  w->self = self_;
  w->sink = sink;
  w->changes = changes;
  w->on_change = std::move(on_change);
  w->on_err = on_err;
  auto guard = std::make_unique<watch_guard>(w);
  w->guard = guard.get();
  self_->attach(std::move(guard));
  if (!changes) { // on another node: its changes come to a receiver here
    w->receiver
      = actors::spawn_feed_receiver(self_->system(), sink, home_->registry());
    arm(w);
    std::weak_ptr<actor_sink> weak = sink;
    self_
      ->request(home_->registry(), caf::infinite, watch_atom::value, key, all,
                after, incarnation, w->receiver)
      .then([](caf::ok_atom) {},
            [weak](caf::error& err) {
              if (auto s = weak.lock())
                s->fail(err);
            });
    return w;
  }
  auto settled = changes->add(sink, after, incarnation);
  arm(w);
  if (settled)
    return w;
  // The starting point: the current value, read like a snapshot (a type
  // mismatch ends the watch at once).
  std::weak_ptr<actor_sink> weak = sink;
  auto home = home_->board();
  snapshot(
    key, type,
    [weak, home, key, after](versioned_value& current) {
      if (auto s = weak.lock())
        seed(*s, home, key, after, &current);
    },
    [weak, home, key, after](caf::error& err) {
      auto s = weak.lock();
      if (!s)
        return;
      if (to_errc(err) == errc::no_such_context)
        seed(*s, home, key, after, nullptr);
      else
        s->fail(err);
    });
  return w;
}

} // namespace ctxstore::detail
