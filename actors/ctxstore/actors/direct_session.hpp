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

#include "ctxstore/actors/context_cell.hpp"
#include "ctxstore/messages/atoms.hpp"

// Steps of a direct session (see context_cell) that every local client takes
// the same way. They read `cell.owner` only under `cell.mtx` (the owner may
// change, or be missing, while nobody holds the lock) and send messages only
// after unlocking.

namespace ctxstore::detail {

/// Tells `owner` (read under the cell's lock) that a direct session ended
/// while others waited, or that the context was erased: it runs the waiters
/// (or retires). Nothing if the owner is gone.
inline void send_handover(const caf::actor_addr& owner) {
  if (auto hdl = caf::actor_cast<caf::actor>(owner))
    caf::anon_send(hdl, messages::handover_atom::value);
}

/// Schedules the owner's own lease timer for the direct session `token`: the
/// owner revokes it like a session it granted itself.
inline void schedule_lease(caf::actor_system& sys, const caf::actor_addr& owner,
                           std::chrono::milliseconds lease, uint64_t token) {
  auto hdl = caf::actor_cast<caf::strong_actor_ptr>(owner);
  if (!hdl)
    return;
  auto& clock = sys.clock();
  clock.schedule_message(
    clock.now() + lease, hdl,
    caf::make_mailbox_element(hdl, caf::make_message_id(), caf::no_stages,
                              messages::lease_atom::value, token));
}

/// Ends the direct session `token` on `cell` if it is still open, dropping
/// uncommitted changes (abort); the next waiter goes on. True if it was open.
inline bool end_direct_session(context_cell& cell, uint64_t token) {
  std::unique_lock<std::mutex> guard{cell.mtx};
  if (!cell.direct_session_open(token))
    return false;
  auto next = cell.end_session_for_next();
  guard.unlock();
  send_handover(next);
  return true;
}

} // namespace ctxstore::detail
