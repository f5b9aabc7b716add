#include "ctxstore/detail/async_core.hpp"

#include <utility>

#include <caf/all.hpp>

#include "async_request.hpp"
#include "async_sessions.hpp"
#include "ctxstore/detail/recycled_value.hpp"
#include "ctxstore/messages/protocol.hpp"

namespace ctxstore::detail {

using namespace ctxstore::messages;

namespace {

/// True if `x` holds one value of `type`.
bool holds(const caf::message& x, const std::type_info& type) {
  if (x.size() != 1)
    return false;
  auto rtti = x.type(0).second;
  return rtti != nullptr && *rtti == type;
}

caf::error type_mismatch() {
  return make_error(errc::type_mismatch,
                    "the stored value does not have the requested type");
}

caf::error ended() {
  return make_error(errc::session_expired, "the session has ended");
}

/// Hands a failure to `on_err` as a ctxstore error.
struct error_forwarder {
  error_callback on_err;
  void operator()(caf::error& err) const {
    auto e = to_ctxstore_error(std::move(err));
    on_err(e);
  }
};

/// The answer to a counted request arrived (see inbound_ticket).
void end_count(const inbound_ticket_ptr& ticket) {
  if (ticket)
    ticket->done();
}

/// `error_forwarder` of a counted request.
struct counted_error {
  inbound_ticket_ptr ticket;
  error_forwarder forward;
  void operator()(caf::error& err) const {
    end_count(ticket);
    forward(err);
  }
};

async_level_ptr make_level(std::shared_ptr<async_held> held, bool outermost) {
  auto level = std::make_shared<async_level>();
  level->held = std::move(held);
  level->outermost = outermost;
  return level;
}

} // namespace

async_core::async_core(caf::event_based_actor* self, storage st)
    : self_(self), home_(std::make_shared<const storage>(std::move(st))) {
  // nop
}

void async_core::fail(const error_callback& on_err, errc code,
                      const char* what) {
  auto err = make_error(code, what);
  on_err(err);
}

std::optional<versioned_value>
async_core::local_snapshot(const context_key& key) const {
  if (const auto& board = home_->board())
    return read_board(*board, key);
  return std::nullopt;
}

async_level_ptr async_core::acquire_now(const context_key& key,
                                        const std::type_info& type) const {
  if (auto held = find_async_held(self_, home_->registry(), key)) {
    if (held->cell && direct_open(*held))
      return make_level(std::move(held), false);
    return nullptr; // at the owner, or revoked: `acquire` sorts it out
  }
  if (auto held = take_free(self_, home_, key, type))
    return make_level(std::move(held), true);
  return nullptr;
}

void async_core::answer_later(std::function<void()> answer) const {
  if (auto* batch = batch_to_join(self_)) {
    batch->push_back(std::move(answer));
    return;
  }
  answer_list answers;
  answers.push_back(std::move(answer));
  post_answers(self_, std::move(answers));
}

void async_core::snapshot(const context_key& key, const std::type_info& type,
                          value_handler on_value, error_callback on_err) const {
  auto self = self_;
  const auto& board = home_->board();
  // In this process the owner's last commit is on the board: the answer goes
  // straight into our own mailbox, no other actor involved. A miss (unknown
  // key, storage stopped) asks the storage, which answers with the right
  // error.
  if (board) {
    if (auto hit = read_board(*board, key)) {
      if (holds(hit->value.value, type))
        respond_later(self, std::move(on_value),
                      error_forwarder{std::move(on_err)}, std::move(*hit));
      else
        respond_later(self, std::move(on_value),
                      error_forwarder{std::move(on_err)}, type_mismatch());
      return;
    }
  }
  // Counted while out, like any request on the key: a store of this actor
  // sent after it cannot create the context first.
  inbound_ticket_ptr ticket;
  if (board)
    ticket = std::make_shared<inbound_ticket>(board, key, nullptr);
  auto checked = [type = &type, on_value = std::move(on_value), on_err,
                  ticket](versioned_value& x) {
    end_count(ticket);
    if (!holds(x.value.value, *type)) {
      auto err = type_mismatch();
      return on_err(err);
    }
    on_value(x);
  };
  request_then(self, home_->registry(), std::move(checked),
               counted_error{ticket, error_forwarder{on_err}},
               snapshot_atom::value, key);
}

void async_core::store(const context_key& key, caf::message value,
                       version_handler on_version,
                       error_callback on_err) const {
  auto self = self_;
  const storage& st = *home_;
  const caf::actor& dest = st.registry();
  auto held = find_async_held(self, dest, key);
  // From the holder, the store also replaces its working copy.
  auto replace_working = [held, value](uint64_t version) {
    if (held && held->open) {
      held->working = value;
      held->version = version;
    }
  };
  // The holder of a direct session, or a free context in this process:
  // stored under the context's lock, answered through our own mailbox.
  owner_route route;
  if (auto version = direct_store(st, key, held.get(), value, route)) {
    replace_working(*version);
    return respond_later(self, std::move(on_version),
                         error_forwarder{std::move(on_err)}, *version);
  }
  auto ticket = route.ticket;
  auto token = held && !held->cell ? held->token : uint64_t{0};
  request_routed(
    self, route.owner, dest,
    [ticket, replace_working, on_version](uint64_t version) {
      end_count(ticket);
      replace_working(version);
      on_version(version);
    },
    counted_error{ticket, error_forwarder{std::move(on_err)}},
    store_atom::value, key, payload{std::move(value)}, token);
}

void async_core::acquire(const context_key& key, const std::type_info& type,
                         int64_t wait_ms, level_handler on_level,
                         error_callback on_err) const {
  auto self = self_;
  auto home = home_;
  const caf::actor& dest = home->registry();
  // A nested acquire of the actor's direct session: that level at once. One
  // of a session the owner granted goes to the owner, which knows the holder
  // (it must not queue behind its own session).
  auto nested_at_owner = false;
  if (auto held = find_async_held(self, dest, key)) {
    nested_at_owner = !held->cell;
    if (held->cell && direct_open(*held))
      return respond_later(
        self,
        [held, on_level](caf::ok_atom) { on_level(make_level(held, false)); },
        error_forwarder{std::move(on_err)}, caf::ok_atom::value);
    if (held->cell) { // revoked by its lease: done with it
      held->open = false;
      forget_async_held(held.get());
    }
  }
  // A free context in this process is taken like a free futex; a held one is
  // waited for in its queue, like a thread waits.
  auto direct = direct_acquire(self, home, key, type,
                               wait_ms < 0 && !nested_at_owner);
  if (auto held = std::move(direct.held))
    return respond_later(
      self,
      [held, on_level](caf::ok_atom) { on_level(make_level(held, true)); },
      error_forwarder{std::move(on_err)}, caf::ok_atom::value);
  if (direct.waiter_error)
    return respond_later(self, [](caf::ok_atom) {},
                         error_forwarder{std::move(on_err)},
                         std::move(direct.waiter_error));
  if (direct.waiter)
    return await_turn(self, std::move(direct.waiter), home,
                      [on_level, on_err](std::shared_ptr<async_held> held,
                                         caf::error& err) {
                        if (!held)
                          return error_forwarder{on_err}(err);
                        on_level(make_level(std::move(held), true));
                      });
  auto ticket = direct.route.ticket;
  request_routed(
    self, direct.route.owner, dest,
    [self, home, key, type = &type, ticket, on_level, on_err](grant& g) {
      end_count(ticket);
      const caf::actor& dest = home->registry();
      auto held = find_async_held(self, dest, key);
      if (held && held->token == g.token)
        return on_level(make_level(held, false)); // nested level
      if (!holds(g.value.value, *type)) {
        self->send(g.owner, abort_atom::value, key, g.token);
        auto err = type_mismatch();
        return on_err(err);
      }
      held = std::make_shared<async_held>();
      held->self = self;
      held->holder = self->address();
      held->home = home;
      held->owner = g.owner ? std::move(g.owner) : dest;
      held->key = key;
      held->token = g.token;
      held->version = g.version;
      held->working = std::move(g.value.value);
      register_async_held(held);
      on_level(make_level(std::move(held), true));
    },
    counted_error{ticket, error_forwarder{on_err}}, acquire_atom::value, key,
    wait_ms);
}

void async_core::erase(const context_key& key,
                       std::function<void(bool)> on_erased,
                       error_callback on_err) const {
  auto self = self_;
  const storage& st = *home_;
  const caf::actor& dest = st.registry();
  auto held = find_async_held(self, dest, key);
  if (held && held->cell) {
    // The holder of a direct session erases it there; that also ends its
    // session (a revoked one is not ours any more).
    if (direct_open(*held)) {
      held->open = false;
      forget_async_held(held.get());
      return detail::answer_later(self, std::move(on_erased),
                          error_forwarder{std::move(on_err)},
                          direct_erase(*held));
    }
    held->open = false;
    forget_async_held(held.get());
    held = nullptr;
  }
  auto route = route_to_owner(st, key);
  auto ticket = route.ticket;
  auto token = held ? held->token : uint64_t{0};
  request_routed(
    self, route.owner, dest,
    [held, on_erased, ticket](bool existed) {
      end_count(ticket);
      if (held) {
        held->open = false; // the holder's erase ends its session
        forget_async_held(held.get());
      }
      on_erased(existed);
    },
    counted_error{ticket, error_forwarder{std::move(on_err)}},
    erase_atom::value, key, token);
}

void async_core::info(const context_key& key,
                      std::function<void(context_info&)> on_info,
                      error_callback on_err) const {
  const caf::actor& dest = home_->registry();
  if (!dest)
    return fail(on_err, errc::storage_down, "no storage behind this handle");
  request_then(self_, dest, std::move(on_info),
               error_forwarder{std::move(on_err)}, info_atom::value, key);
}

void async_core::metrics(std::function<void(std::string&)> on_text,
                         error_callback on_err) const {
  const caf::actor& dest = home_->registry();
  if (!dest)
    return fail(on_err, errc::storage_down, "no storage behind this handle");
  request_then(self_, dest, std::move(on_text),
               error_forwarder{std::move(on_err)}, metrics_atom::value);
}

void async_core::stats(std::function<void(storage_stats&)> on_stats,
                       error_callback on_err) const {
  const caf::actor& dest = home_->registry();
  if (!dest)
    return fail(on_err, errc::storage_down, "no storage behind this handle");
  request_then(self_, dest, std::move(on_stats),
               error_forwarder{std::move(on_err)}, stats_atom::value);
}

// -- one level of a session -----------------------------------------------------------

namespace {

/// Commits (`end` false) or releases (`end` true) the working copy of `held`:
/// on the fast path, or with a message to the owner.
void publish_working(const std::shared_ptr<async_held>& held, bool end,
                     async_core::version_handler on_ok,
                     error_callback on_err) {
  if (held->cell) {
    auto version = direct_commit(*held, end);
    if (version)
      held->version = *version;
    recycle(held->replaced);
    return answer_later(held->self, std::move(on_ok),
                        error_forwarder{std::move(on_err)}, std::move(version));
  }
  auto on_version = [held, on_ok = std::move(on_ok)](uint64_t version) {
    held->version = version;
    on_ok(version);
  };
  if (end) {
    announce_leaving(*held);
    // The session ends here: its working copy goes as it is, no copy.
    auto value = std::move(held->working);
    return request_then(held->self, held->owner, std::move(on_version),
                        error_forwarder{std::move(on_err)}, release_atom::value,
                        held->key, held->token, payload{std::move(value)});
  }
  // Shared, not copied: the holder's next change detaches its own copy.
  auto value = held->working;
  request_then(held->self, held->owner, std::move(on_version),
               error_forwarder{std::move(on_err)}, commit_atom::value,
               held->key, held->token, payload{std::move(value)});
}

} // namespace

bool level_open(const async_level& level) noexcept {
  return !level.done && level.held->open;
}

caf::message& level_working(const async_level& level) noexcept {
  return level.held->working;
}

uint64_t level_version(const async_level& level) noexcept {
  return level.held->version;
}

uint64_t level_token(const async_level& level) noexcept {
  return level.held->token;
}

void commit_level(const async_level_ptr& level,
                  async_core::version_handler on_ok, error_callback on_err) {
  auto held = level ? level->held : nullptr;
  if (!held || !held->open) {
    auto err = ended();
    return on_err(err);
  }
  publish_working(held, false, std::move(on_ok), std::move(on_err));
}

namespace {

/// Marks `level` done; false (after handing `on_err` session_expired) if it
/// or its session had ended already.
bool end_level(const async_level_ptr& level, const error_callback& on_err) {
  if (!level || level->done || !level->held->open) {
    auto err = ended();
    on_err(err);
    return false;
  }
  level->done = true;
  return true;
}

} // namespace

void release_level(const async_level_ptr& level,
                   async_core::version_handler on_ok, error_callback on_err) {
  if (!end_level(level, on_err))
    return;
  auto held = level->held;
  if (!level->outermost)
    return on_ok(held->version);
  held->open = false;
  forget_async_held(held.get());
  publish_working(held, true, std::move(on_ok), std::move(on_err));
}

void abort_level(const async_level_ptr& level,
                 async_core::version_handler on_ok, error_callback on_err) {
  if (!end_level(level, on_err))
    return;
  auto held = level->held;
  held->open = false;
  forget_async_held(held.get());
  if (held->cell)
    return answer_later(held->self, std::move(on_ok),
                        error_forwarder{std::move(on_err)},
                        direct_abort(*held));
  announce_leaving(*held);
  request_then(held->self, held->owner,
               [on_ok = std::move(on_ok)](uint64_t version) { on_ok(version); },
               error_forwarder{std::move(on_err)}, abort_atom::value,
               held->key, held->token);
}

} // namespace ctxstore::detail
