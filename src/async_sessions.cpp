#include "async_sessions.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/all.hpp>

#include "caf_internals.hpp"
#include "ctxstore/actors/host_scope.hpp"
#include "ctxstore/messages/protocol.hpp"

namespace ctxstore::detail {

using namespace ctxstore::messages;
using actors::context;
using actors::effects;
using actors::waiter;

// -- sessions held by actors ----------------------------------------------------------

namespace {

/// The sessions of some actors. Sharded by actor (an actor uses one shard):
/// actors running on different workers rarely share a lock or a cache line.
struct alignas(64) async_table {
  // The sessions of one actor; weak, so a dropped session leaves nothing.
  struct entry {
    std::vector<std::weak_ptr<async_held>> sessions;
    bool watched = false; // its exit ends its direct sessions (see watch)
  };
  std::mutex mtx;
  std::unordered_map<const void*, entry> by_actor; // keyed by the holder
};

constexpr size_t async_table_shards = 32;

async_table& async_sessions(const void* actor) {
  // Used until the process ends (actors may exit during static destruction).
  static auto* shards = new std::array<async_table, async_table_shards>;
  // Fibonacci hashing: actors allocated side by side land in other shards.
  auto h = reinterpret_cast<uintptr_t>(actor) * uintptr_t{0x9E3779B97F4A7C15};
  return (*shards)[(h >> 32) % async_table_shards];
}

/// Drops the entry `i` once it is of no more use.
void tidy(async_table& tbl,
          std::unordered_map<const void*, async_table::entry>::iterator i) {
  if (i->second.sessions.empty() && !i->second.watched)
    tbl.by_actor.erase(i);
}

/// The actor `self` exited: its direct sessions end as if aborted (the owner
/// cannot monitor a thread-free holder; a session object kept elsewhere must
/// not keep the context). Runs on the thread that cleans up `self`.
void end_direct_sessions_of(const void* self) {
  std::vector<std::weak_ptr<async_held>> sessions;
  {
    auto& tbl = async_sessions(self);
    std::lock_guard<std::mutex> guard{tbl.mtx};
    auto i = tbl.by_actor.find(self);
    if (i == tbl.by_actor.end())
      return;
    sessions = std::move(i->second.sessions);
    tbl.by_actor.erase(i);
  }
  // Only the cells are touched: the session objects belong to the actor.
  for (auto& weak : sessions)
    if (auto held = weak.lock(); held && held->cell)
      end_direct_session(*held->cell, held->token);
}

} // namespace

std::shared_ptr<async_held> find_async_held(const caf::event_based_actor* self,
                                            const caf::actor& registry,
                                            const context_key& key) {
  auto& tbl = async_sessions(self);
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_actor.find(self);
  if (i == tbl.by_actor.end())
    return nullptr;
  std::shared_ptr<async_held> found;
  auto& xs = i->second.sessions;
  auto stale = [&](const std::weak_ptr<async_held>& weak) {
    auto ptr = weak.lock();
    if (!ptr || !ptr->open)
      return true;
    if (!found && ptr->key == key && ptr->home
        && same_actor(ptr->home->registry(), registry))
      found = ptr;
    return false;
  };
  xs.erase(std::remove_if(xs.begin(), xs.end(), stale), xs.end());
  tidy(tbl, i);
  return found;
}

void announce_leaving(const async_held& held) {
  if (!held.home)
    return;
  if (auto& board = held.home->board())
    if (auto cell = board->find_cell(held.key))
      cell->holder_leaving(actors::actor_party(held.holder.get()));
}

void forget_async_held(const async_held* held) {
  auto& tbl = async_sessions(held->self);
  std::lock_guard<std::mutex> guard{tbl.mtx};
  auto i = tbl.by_actor.find(held->self);
  if (i == tbl.by_actor.end())
    return;
  auto& xs = i->second.sessions;
  auto gone = [held](const std::weak_ptr<async_held>& weak) {
    auto ptr = weak.lock();
    return !ptr || ptr.get() == held;
  };
  xs.erase(std::remove_if(xs.begin(), xs.end(), gone), xs.end());
  tidy(tbl, i);
}

void register_async_held(const std::shared_ptr<async_held>& held) {
  auto& tbl = async_sessions(held->self);
  bool watch = false;
  {
    std::lock_guard<std::mutex> guard{tbl.mtx};
    auto& e = tbl.by_actor[held->self];
    e.sessions.emplace_back(held);
    if (held->cell && !e.watched)
      watch = e.watched = true;
  }
  // Once per actor, at its first direct session: its exit (however it comes,
  // even while its session objects live on elsewhere) ends its direct
  // sessions. An actor that already exited runs this at once.
  if (watch) {
    const void* key = held->self;
    held->self->attach_functor(
      [key](const caf::error&) { end_direct_sessions_of(key); });
  }
}

// -- the fast path of actors ---------------------------------------------------------

namespace {

/// While an actor commits or ends its session directly, the worker it runs
/// on hosts whom that wakes: the next actor's turn, a watcher's change
/// (see actors/host_scope.hpp).
caf::execution_unit* host_of(const async_held& held) {
  return held.self != nullptr ? held.self->context() : nullptr;
}

} // namespace

/// An actor's acquire waiting in a context's queue: its turn is a message to
/// a handler of the actor (see await_turn).
struct actor_waiter final : waiter {
  actor_waiter(std::shared_ptr<context> cell, caf::strong_actor_ptr actor,
               caf::message_id turn)
      : waiter(kind::actor, request::acquire), cell(std::move(cell)),
        actor(std::move(actor)), turn(turn) {
    // nop
  }

  actor_waiter(const actor_waiter&) = delete;
  actor_waiter& operator=(const actor_waiter&) = delete;

  /// Runs when the handler that waits for the turn is gone: it ran (`taken`),
  /// or the actor exited first (CAF drops the handlers of an exiting actor).
  /// Then the place in the queue is given up, or the session granted
  /// meanwhile ends as if aborted: nobody else could end it.
  ~actor_waiter() {
    if (taken.load(std::memory_order_acquire))
      return;
    std::unique_lock<std::mutex> guard{cell->mtx};
    if (result == outcome::waiting) {
      cell->remove(*this);
      return;
    }
    if (result != outcome::granted)
      return;
    guard.unlock();
    end_direct_session(*cell, token);
  }

  /// The turn came (under the cell's lock): a message to the actor's handler
  /// (an actor that exited meanwhile drops it, and ~actor_waiter runs).
  void wake() noexcept override {
    enqueue_ok(actor, actor, turn, actors::current_host);
  }

  const std::shared_ptr<context> cell;
  // Strong, like the sender of a request the owner would queue: CAF destroys
  // an actor nobody refers to, and a waiting actor may have no other
  // reference. Its handler owns this waiter, so the cycle ends with the
  // handler: when the turn comes, or when the actor exits.
  const caf::strong_actor_ptr actor;
  const caf::message_id turn; // the response id its handler waits for
  std::atomic<bool> taken{false};
};

namespace {

/// Opens the direct session of `self` on `cell` (free for one: the caller
/// checked under `guard`, which holds its lock and is released here).
std::shared_ptr<async_held> open_direct(caf::event_based_actor* self,
                                        const std::shared_ptr<const storage>& home,
                                        const context_key& key,
                                        std::shared_ptr<actors::context> cell,
                                        std::unique_lock<std::mutex>& guard) {
  effects fx;
  auto held = std::make_shared<async_held>();
  waiter w{waiter::kind::actor, waiter::request::acquire};
  w.requester = actors::actor_party(self->ctrl());
  w.requester_id = self->id();
  cell->acquire_direct(w, fx);
  held->token = w.token;
  held->version = w.version;
  held->working = std::move(w.value);
  finish_direct(*cell, fx, guard);
  held->self = self;
  held->home = home;
  held->key = key;
  held->cell = std::move(cell);
  register_async_held(held);
  return held;
}

/// True if `cell` (locked) is free for a direct session of `type`.
bool free_for(const actors::context& cell, const std::type_info& type,
              bool behind) {
  return !behind && cell.free_for_direct_session() && *cell.type == type;
}

} // namespace

std::shared_ptr<async_held>
take_free(caf::event_based_actor* self,
          const std::shared_ptr<const storage>& home, const context_key& key,
          const std::type_info& type) {
  auto cell = local_cell(*home, key);
  if (!cell)
    return nullptr;
  auto behind = behind_registry(*home, key);
  std::unique_lock<std::mutex> guard{cell->mtx};
  if (!free_for(*cell, type, behind))
    return nullptr;
  return open_direct(self, home, key, std::move(cell), guard);
}

acquire_route direct_acquire(caf::event_based_actor* self,
                             const std::shared_ptr<const storage>& home,
                             const context_key& key, const std::type_info& type,
                             bool may_wait) {
  const storage& st = *home;
  acquire_route result;
  auto cell = local_cell(st, key);
  if (!cell) {
    result.route = route_via(st, key, nullptr);
    return result;
  }
  auto behind = behind_registry(st, key);
  std::unique_lock<std::mutex> guard{cell->mtx};
  if (!behind && *cell->type == type && may_wait && cell->may_queue_direct()) {
    // Held by someone else: the actor waits in the queue, like a thread;
    // whoever grants it the session sends it the turn.
    auto w = std::make_shared<actor_waiter>(
      cell, caf::strong_actor_ptr{self->ctrl()}, new_response_id(self));
    w->requester = actors::actor_party(self->ctrl());
    w->requester_id = self->id();
    auto err = actors::queue_acquire(*cell, *w,
                                     actors::actor_name(self->address()));
    if (err) { // overloaded, or a deadlock
      w->taken = true; // never queued: nothing to give up
      result.waiter_error = std::move(err);
      return result;
    }
    result.waiter = std::move(w);
    return result;
  }
  if (!free_for(*cell, type, behind)) {
    guard.unlock();
    result.route = route_via(st, key, std::move(cell));
    return result;
  }
  result.held = open_direct(self, home, key, std::move(cell), guard);
  return result;
}

namespace {

/// The turn of `w` came: the session it was granted (registered like one of
/// direct_acquire), or null and the error its wait ended with.
std::shared_ptr<async_held> take_turn(caf::event_based_actor* self,
                                      actor_waiter& w,
                                      std::shared_ptr<const storage> home,
                                      caf::error& err) {
  auto& cell = *w.cell;
  std::unique_lock<std::mutex> guard{cell.mtx};
  w.taken.store(true, std::memory_order_release);
  if (w.result != waiter::outcome::granted) {
    err = w.result == waiter::outcome::failed
            ? std::move(w.error)
            : make_error(errc::storage_down, "the wait ended without a turn");
    return nullptr;
  }
  auto held = std::make_shared<async_held>();
  held->token = w.token;
  held->version = w.version;
  held->working = std::move(w.value);
  guard.unlock(); // whoever granted the session armed its lease
  held->self = self;
  held->home = std::move(home);
  held->key = cell.key;
  held->cell = w.cell;
  register_async_held(held);
  return held;
}

} // namespace

void await_turn(caf::event_based_actor* self,
                std::shared_ptr<actor_waiter> waiter,
                std::shared_ptr<const storage> home, turn_handler on_turn) {
  auto turn = waiter->turn;
  // A response to ourselves, like the answers of answer_queue.hpp: no
  // behavior of the actor can intercept it.
  on_own_response(self, turn,
                  caf::behavior{[self, waiter, home, on_turn](caf::ok_atom) {
                                  caf::error err;
                                  auto held = take_turn(self, *waiter, home,
                                                        err);
                                  on_turn(std::move(held), err);
                                },
                                [](caf::error&) {}});
}

std::optional<uint64_t> direct_store(const storage& st, const context_key& key,
                                     const async_held* held,
                                     const caf::message& value,
                                     owner_route& route) {
  auto cell = held && held->cell ? held->cell : local_cell(st, key);
  payload x{value};
  if (!cell && st.board()
      && st.board()->requests_out(key).load(std::memory_order_acquire) == 0) {
    // A new context, created here like a blocking client's. Only this
    // actor's own earlier requests could be overtaken, and none is out.
    auto [existing, created] = create_local(st, key, x);
    if (created)
      return uint64_t{1}; // the first version of a new context
    cell = std::move(existing);
  }
  if (cell) {
    auto free = !behind_registry(st, key);
    effects fx; // outlives the lock: the replaced commit goes after it
    std::lock_guard<std::mutex> guard{cell->mtx};
    auto ours = held && held->cell && cell->direct_session_open(held->token);
    if ((ours || (free && cell->free_for_direct())) && cell->fits(x))
      return cell->store(std::move(x), fx);
  }
  route = route_via(st, key, std::move(cell));
  return std::nullopt;
}

bool direct_open(const async_held& held) {
  if (!held.cell)
    return false;
  std::lock_guard<std::mutex> guard{held.cell->mtx};
  return held.cell->direct_session_open(held.token);
}

namespace {

/// What the owner answers a request on a session that is not open.
caf::error not_open(const context& cell, const char* what) {
  if (cell.stopped())
    return make_error(errc::storage_down, "storage stopped");
  cell.metrics->fencing_refusals.fetch_add(1, std::memory_order_relaxed);
  return make_error(errc::session_expired,
                    std::string{what} + ": the session is no longer open");
}

} // namespace

caf::expected<uint64_t> direct_commit(async_held& held, bool end) {
  auto& cell = *held.cell;
  // Released: the working copy goes as it is; committed: shared, and the
  // holder's next change detaches its own copy.
  payload x{end ? std::move(held.working) : held.working};
  effects fx;
  std::unique_lock<std::mutex> guard{cell.mtx};
  if (!cell.direct_session_open(held.token))
    return not_open(cell, end ? "release" : "commit");
  if (!cell.fits(x))
    return make_error(errc::type_mismatch,
                      "the value is not of the type registered as "
                        + cell.key.type);
  actors::host_scope host{host_of(held)};
  auto version = cell.commit(std::move(x), fx);
  if (end) {
    cell.end_session(fx, false);
    finish_direct(cell, fx, guard);
  } else {
    guard.unlock();
  }
  held.replaced = std::move(fx.replaced);
  return version;
}

caf::expected<uint64_t> direct_abort(async_held& held) {
  auto& cell = *held.cell;
  effects fx;
  std::unique_lock<std::mutex> guard{cell.mtx};
  if (!cell.direct_session_open(held.token))
    return not_open(cell, "abort");
  auto version = cell.version();
  actors::host_scope host{host_of(held)};
  cell.end_session(fx, false);
  finish_direct(cell, fx, guard);
  return version;
}

caf::expected<bool> direct_erase(async_held& held) {
  auto& cell = *held.cell;
  effects fx;
  std::unique_lock<std::mutex> guard{cell.mtx};
  if (!cell.direct_session_open(held.token))
    return not_open(cell, "erase");
  actors::host_scope host{host_of(held)};
  cell.erase(fx, false);
  finish_direct(cell, fx, guard, held.home->board().get());
  return true;
}

async_level::~async_level() {
  if (done || !outermost || !held || !held->open)
    return;
  held->open = false;
  forget_async_held(held.get());
  if (held->cell) {
    drop_direct(*held);
    return;
  }
  // The last copy may be dropped after the actor died (kept elsewhere): then
  // the owner, which monitors it, has ended the session already.
  if (auto holder = caf::actor_cast<caf::actor>(held->holder)) {
    announce_leaving(*held);
    caf::send_as(holder, held->owner, abort_atom::value, held->key,
                 held->token);
  }
}

async_held::~async_held() {
  if (cell && open)
    drop_direct(*this);
}

void drop_direct(const async_held& held) noexcept {
  try {
    end_direct_session(*held.cell, held.token);
  } catch (...) {
    // Nothing to end.
  }
}

caf::error to_ctxstore_error(caf::error err) {
  if (!err || err.category() == messages::error_category)
    return err;
  return make_error(errc::storage_down, describe(err));
}

} // namespace ctxstore::detail
