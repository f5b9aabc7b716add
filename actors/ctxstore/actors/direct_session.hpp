#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/send.hpp>

#include "ctxstore/actors/context.hpp"
#include "ctxstore/actors/snapshot_board.hpp"
#include "ctxstore/messages/atoms.hpp"

// How a client of this process carries out the effects of the transitions it
// ran on a context directly (see context.hpp): the same effects the owner
// carries out for itself, with a message to the owner where the owner must
// act. The owner is read only under the context's lock (it may change, or be
// missing, while nobody holds the lock); messages go out after unlocking.

namespace ctxstore::detail {

/// Tells `owner` that a direct session ended while requests were parked, or
/// that the context was erased: it runs the queue (or retires). Nothing if
/// the owner is gone.
inline void send_handover(const caf::actor_addr& owner) {
  if (auto hdl = caf::actor_cast<caf::actor>(owner))
    caf::anon_send(hdl, messages::handover_atom::value);
}

/// Schedules the owner's own lease timer for the session `token`: the owner
/// revokes it like a session it granted itself.
inline void schedule_lease(const caf::actor_addr& owner,
                           std::chrono::milliseconds lease, uint64_t token) {
  auto hdl = caf::actor_cast<caf::strong_actor_ptr>(owner);
  if (!hdl)
    return;
  auto& clock = hdl->home_system->clock();
  clock.schedule_message(
    clock.now() + lease, hdl,
    caf::make_mailbox_element(hdl, caf::make_message_id(), caf::no_stages,
                              messages::lease_atom::value, token));
}

/// Carries out `fx` for a client of this process: wakes threads and actors
/// under the lock, takes an erased context without an owner off `board`, then
/// unlocks `guard` (which holds `ctx`'s lock) and tells the owner what it
/// must do. (Clients stop the queue before a parked request: `fx` holds no
/// request for the owner to answer.)
inline void finish_direct(actors::context& ctx, actors::effects& fx,
                          std::unique_lock<std::mutex>& guard,
                          snapshot_board* board = nullptr) {
  actors::context::wake(fx);
  auto owner = ctx.owner;
  if (fx.erased_idle && !owner && board != nullptr)
    board->erase(ctx); // no request can wait without an owner: gone
  guard.unlock();
  if (fx.handover || fx.erased_idle)
    send_handover(owner); // runs the parked requests, or retires
  if (fx.lease != 0)
    schedule_lease(owner, ctx.lease, fx.lease);
}

/// Ends the direct session `token` on `ctx` if it is still open, dropping
/// uncommitted changes (abort); the next waiter goes on. True if it was open.
inline bool end_direct_session(actors::context& ctx, uint64_t token) {
  actors::effects fx;
  std::unique_lock<std::mutex> guard{ctx.mtx};
  if (!ctx.direct_session_open(token))
    return false;
  ctx.end_session(fx, false);
  finish_direct(ctx, fx, guard);
  return true;
}

} // namespace ctxstore::detail
