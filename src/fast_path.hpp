#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>

#include "ctxstore/actors/context.hpp"
#include "ctxstore/actors/context_index.hpp"
#include "ctxstore/context_info.hpp"
#include "ctxstore/messages/context_key.hpp"
#include "ctxstore/messages/payload.hpp"
#include "ctxstore/messages/versioned_value.hpp"
#include "ctxstore/storage.hpp"

// The local fast path (design §2), shared by the blocking and the async
// client: a client of a storage in this process runs the transitions of a
// context's state machine itself (actors/.../context.hpp) while nobody else
// is involved, and carries out their effects here, with a message to the
// owner where the owner must act. Everything else goes to the owner (or the
// registry), counted on the context while it is on its way (inbound_ticket)
// so that nobody barges past it. The owner is read only under the context's
// lock (it may change, or be missing, while nobody holds the lock); messages
// go out after unlocking.

namespace ctxstore::detail {

/// True if both handles name the same actor object. (CAF compares handles
/// by (actor id, node); two actor systems in one process without a middleman
/// can hand out equal ids.)
bool same_actor(const caf::actor& x, const caf::actor& y);

// -- finding contexts -----------------------------------------------------------

/// The context of `key` if its storage runs in this process, else null.
std::shared_ptr<actors::context> local_cell(const storage& st,
                                            const messages::context_key& key);

/// Creates `key`'s context with `value` on the board of a storage in this
/// process, unless it exists (then: it, and false) or the request needs the
/// registry's answer (fast path off, bad key or value: null). True if
/// created (`value` was moved from only then).
std::pair<std::shared_ptr<actors::context>, bool>
create_local(const storage& st, const messages::context_key& key,
             messages::payload& value);

/// Who holds `key` and who waits, read on the board of a storage in this
/// process without a message; nothing if the storage is elsewhere or the
/// context is not on its board (the registry answers then).
std::optional<context_info> local_info(const storage& st,
                                       const messages::context_key& key);

/// The metrics of a storage in this process, rendered here; nothing if the
/// storage is elsewhere.
std::optional<std::string> local_metrics(const storage& st);

/// The owner of `ctx` (weak; none if it has no owner yet).
caf::actor_addr owner_addr(const actors::context& ctx);

// -- requests on their way ---------------------------------------------------------

/// Counts one request of this process on its way to a context's owner (or
/// parked there) on the context while it is out: meanwhile nobody takes the
/// context directly. It also counts on the storage's board by key
/// (context_index::requests_out), also without a context (a request to the
/// registry): meanwhile nobody creates the context directly. `done()` (or
/// the destructor: the actor died before the answer) ends the count once.
class inbound_ticket {
public:
  /// `to_registry`: the request goes to the registry (also counted as such).
  inbound_ticket(const std::shared_ptr<actors::context_index>& board,
                 const messages::context_key& key,
                 std::shared_ptr<actors::context> ctx,
                 bool to_registry = false);
  ~inbound_ticket();
  inbound_ticket(const inbound_ticket&) = delete;
  inbound_ticket& operator=(const inbound_ticket&) = delete;

  /// The answer arrived.
  void done() noexcept;

private:
  std::shared_ptr<actors::context> ctx_;
  std::shared_ptr<std::atomic<int>> out_; // the board's count of the key
  std::shared_ptr<std::atomic<int>> via_registry_; // the same, to_registry
};

using inbound_ticket_ptr = std::shared_ptr<inbound_ticket>;

/// How a request on a context travels when it does not take the fast path.
struct owner_route {
  caf::actor owner;          // null: ask the registry
  inbound_ticket_ptr ticket; // null: the storage is in another process
};

/// The route to the owner of `ctx` (read under its lock; null ctx or no
/// owner: to the registry), counting the request.
owner_route route_via(const storage& st, const messages::context_key& key,
                      std::shared_ptr<actors::context> ctx);

/// The route of a request on `key` that does not take the fast path.
owner_route route_to_owner(const storage& st, const messages::context_key& key);

/// True while a request of this process on a key of `key`'s board shard is
/// at the registry (it had no context or owner to go to): later requests on
/// the key go there too, so that none overtakes it.
bool behind_registry(const storage& st, const messages::context_key& key);

// -- carrying out effects ------------------------------------------------------------

/// Tells `owner` that a session ended on the fast path while a request was
/// parked, or that the context was erased: it runs its queue (or retires).
/// Nothing if the owner is gone.
void send_handover(const caf::actor_addr& owner);

/// Carries out `fx` for a client of this process: wakes threads and actors
/// under the lock, takes an erased context without an owner off `board`, then
/// unlocks `guard` (which holds `ctx`'s lock), tells the owner what it must
/// do and arms the lease of a session granted here. (Clients stop the queue
/// before a parked request: `fx` holds no request for the owner to answer.)
void finish_direct(actors::context& ctx, actors::effects& fx,
                   std::unique_lock<std::mutex>& guard,
                   actors::context_index* board = nullptr);

/// Ends the direct session `token` on `ctx` if it is still open, dropping
/// uncommitted changes (abort); the next waiter goes on. True if it was open.
bool end_direct_session(actors::context& ctx, uint64_t token);

// -- for the specifications (test_hooks.hpp) --------------------------------------

/// The last commit of `key` on `board`, or nothing.
std::optional<messages::versioned_value>
read_board(const actors::context_index& board, const messages::context_key& key);

/// The owner of `key` when the storage runs in this process and the context
/// exists and has one; else null.
caf::actor local_owner(const storage& st, const messages::context_key& key);

/// How often the registry of a storage in this process kept a retiring owner
/// because a request of this process was still on its way to it.
uint64_t owners_kept(const storage& st);

} // namespace ctxstore::detail
