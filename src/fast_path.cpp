#include "fast_path.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "caf_internals.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/messages/protocol.hpp"

namespace ctxstore::detail {

using namespace ctxstore::messages;
using actors::context;

bool same_actor(const caf::actor& x, const caf::actor& y) {
  return caf::actor_cast<caf::abstract_actor*>(x)
         == caf::actor_cast<caf::abstract_actor*>(y);
}

// -- finding contexts -----------------------------------------------------------

std::shared_ptr<context> local_cell(const storage& st, const context_key& key) {
  if (auto& board = st.board())
    return board->find_cell(key);
  return nullptr;
}

std::pair<std::shared_ptr<context>, bool>
create_local(const storage& st, const context_key& key, payload& value) {
  auto& board = st.board();
  if (!board || !board->defaults().fast_path || validate_key(key))
    return {nullptr, false};
  auto type = context_type_of(key.type);
  if (value.value.size() != 1 || value.value.type(0).second == nullptr
      || *value.value.type(0).second != *type)
    return {nullptr, false};
  return board->find_or_create(key, type, value);
}

std::optional<context_info> local_info(const storage& st,
                                       const context_key& key) {
  auto cell = local_cell(st, key);
  if (!cell)
    return std::nullopt;
  std::lock_guard<std::mutex> guard{cell->mtx};
  if (!cell->present())
    return std::nullopt; // erased, or not read from the backend yet
  return cell->info(actors::steady_ns());
}

std::optional<std::string> local_metrics(const storage& st) {
  auto& board = st.board();
  if (!board || board->closed())
    return std::nullopt; // stopped: the storage answers storage_down
  auto& defaults = board->defaults();
  return defaults.metrics->render(*defaults.stats, *defaults.changes);
}

caf::actor_addr owner_addr(const context& ctx) {
  std::lock_guard<std::mutex> guard{ctx.mtx};
  return ctx.owner;
}

// -- requests on their way ---------------------------------------------------------

inbound_ticket::inbound_ticket(const std::shared_ptr<actors::context_index>& board,
                               const context_key& key,
                               std::shared_ptr<context> ctx, bool to_registry)
    : ctx_(std::move(ctx)) {
  if (ctx_)
    ctx_->inbound += 1;
  if (board) {
    out_ = std::shared_ptr<std::atomic<int>>{board, &board->requests_out(key)};
    *out_ += 1;
    if (to_registry) {
      via_registry_ = std::shared_ptr<std::atomic<int>>{
        board, &board->via_registry(key)};
      *via_registry_ += 1;
    }
  }
}

inbound_ticket::~inbound_ticket() {
  done();
}

void inbound_ticket::done() noexcept {
  if (ctx_) {
    // The last request on its way to an owner the registry kept because of
    // it (see context::retire_wanted): the owner may retire now.
    if (ctx_->inbound.fetch_sub(1) == 1 && ctx_->retire_wanted.load()
        && ctx_->retire_wanted.exchange(false))
      send_handover(owner_addr(*ctx_));
    ctx_.reset();
  }
  if (out_) {
    *out_ -= 1;
    out_.reset();
  }
  if (via_registry_) {
    *via_registry_ -= 1;
    via_registry_.reset();
  }
}

bool behind_registry(const storage& st, const context_key& key) {
  auto& board = st.board();
  return board && board->via_registry(key).load() > 0;
}

owner_route route_via(const storage& st, const context_key& key,
                      std::shared_ptr<context> ctx) {
  owner_route result;
  auto& board = st.board();
  if (!board)
    return result;
  // Behind our requests still at the registry: through it (see via_registry).
  auto behind = behind_registry(st, key);
  if (!ctx) {
    result.ticket = std::make_shared<inbound_ticket>(board, key, nullptr, true);
    return result;
  }
  // Counted where the owner is read: the registry retires no owner with a
  // request on its way (registry.cpp, retire_confirm_atom).
  std::lock_guard<std::mutex> guard{ctx->mtx};
  if (!behind)
    result.owner = caf::actor_cast<caf::actor>(ctx->owner);
  auto to_registry = !result.owner;
  result.ticket = std::make_shared<inbound_ticket>(board, key, std::move(ctx),
                                                   to_registry);
  return result;
}

owner_route route_to_owner(const storage& st, const context_key& key) {
  return route_via(st, key, local_cell(st, key));
}

// -- carrying out effects ------------------------------------------------------------

void send_handover(const caf::actor_addr& owner) {
  if (auto hdl = caf::actor_cast<caf::actor>(owner))
    caf::anon_send(hdl, handover_atom::value);
}

namespace {

/// Schedules the owner's own lease timer for the session `token`: the owner
/// revokes it like a session it granted itself.
void schedule_lease(const caf::actor_addr& owner,
                    std::chrono::milliseconds lease, uint64_t token) {
  if (auto hdl = caf::actor_cast<caf::strong_actor_ptr>(owner))
    schedule_to_self(hdl, lease, caf::make_message(lease_atom::value, token));
}

} // namespace

void finish_direct(context& ctx, actors::effects& fx,
                   std::unique_lock<std::mutex>& guard, actors::context_index* board) {
  context::wake(fx);
  if (!fx.handover && !fx.erased_idle && fx.lease == 0) {
    guard.unlock(); // the common case: nothing for the owner
    return;
  }
  // Copied only when needed: a weak reference count shared by every client
  // of the context.
  auto owner = ctx.owner;
  if (fx.erased_idle && !owner && board != nullptr)
    board->erase(ctx); // no request can wait without an owner: gone
  guard.unlock();
  if (fx.handover || fx.erased_idle)
    send_handover(owner); // runs the parked requests, or retires
  if (fx.lease != 0)
    schedule_lease(owner, ctx.lease, fx.lease);
}

bool end_direct_session(context& ctx, uint64_t token) {
  actors::effects fx; // outlives the lock: the replaced commit goes after it
  std::unique_lock<std::mutex> guard{ctx.mtx};
  if (!ctx.direct_session_open(token))
    return false;
  ctx.end_session(fx, false);
  finish_direct(ctx, fx, guard);
  return true;
}

// -- for the specifications ---------------------------------------------------------

std::optional<versioned_value> read_board(const actors::context_index& board,
                                          const context_key& key) {
  return board.find(key);
}

caf::actor local_owner(const storage& st, const context_key& key) {
  auto ctx = local_cell(st, key);
  if (!ctx)
    return caf::actor{};
  std::lock_guard<std::mutex> guard{ctx->mtx};
  return caf::actor_cast<caf::actor>(ctx->owner);
}

uint64_t owners_kept(const storage& st) {
  auto& board = st.board();
  return board ? board->defaults().stats->owners_kept.load() : 0;
}

} // namespace ctxstore::detail
