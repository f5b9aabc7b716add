#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "ctxstore/actors/context.hpp"
#include "ctxstore/actors/direct_session.hpp"
#include "ctxstore/actors/registry.hpp"
#include "ctxstore/async_session.hpp"
#include "ctxstore/blocking_client.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/detail/remote_guard.hpp"
#include "ctxstore/messages/protocol.hpp"
#include "ctxstore/storage.hpp"

namespace ctxstore {

using namespace ctxstore::messages;
using actors::context;
using actors::effects;
using actors::waiter;

// -- storages
// -------------------------------------------------------------------

storage storage::owning(caf::actor registry,
                        std::shared_ptr<detail::snapshot_board> board) {
  storage result{registry, std::move(board)};
  result.lifetime_ = std::shared_ptr<const void>{
    nullptr, [registry](const void*) mutable {
      caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    }};
  return result;
}

storage spawn_storage(caf::actor_system& sys, storage_options options) {
  auto spawned = actors::spawn_registry(sys, options, false);
  return storage::owning(std::move(spawned.registry), std::move(spawned.board));
}

storage spawn_storage(caf::actor_system& sys) {
  return spawn_storage(sys, storage_options_from(sys.config()));
}

const storage& default_storage(caf::actor_system& sys) {
  // The default storage is hidden (the system does not wait for it at
  // shutdown) and is kept in the system's registry of named actors. Its
  // handle here must never be released after `sys` is gone (releasing the
  // last reference runs actor cleanup against the dead system), so the table
  // is deliberately leaked, and an entry of a destroyed system whose address
  // was reused is leaked too.
  constexpr auto name = actors::default_storage_name;
  static auto* mtx = new std::mutex;
  static auto* entries
    = new std::unordered_map<caf::actor_system*, std::unique_ptr<storage>>;
  std::lock_guard<std::mutex> guard{*mtx};
  auto& slot = (*entries)[&sys];
  auto named = sys.registry().get(name);
  if (slot && named
      && named == caf::actor_cast<caf::strong_actor_ptr>(slot->registry()))
    return *slot;
  if (slot) {
    // Belongs to a destroyed system: keep it (reachable, so that leak checkers
    // know it is deliberate), never release it.
    static auto* graveyard = new std::vector<std::unique_ptr<storage>>;
    graveyard->push_back(std::move(slot));
  }
  auto spawned
    = actors::spawn_registry(sys, storage_options_from(sys.config()), true);
  slot = std::make_unique<storage>(std::move(spawned.registry),
                                   std::move(spawned.board));
  sys.registry().put(name,
                     caf::actor_cast<caf::strong_actor_ptr>(slot->registry()));
  return *slot;
}

namespace detail {

// -- requesting actors
// -------------------------------------------------------------

class requester {
public:
  explicit requester(caf::actor_system& sys) : self_(sys) {
    // nop
  }

  /// Sends a request and blocks for its answer; throws ctxstore::error.
  template <class R, class... Ts>
  R call(const caf::actor& dest, Ts&&... xs) {
    R result{};
    if (auto err = try_call(dest, result, std::forward<Ts>(xs)...))
      throw_error(err);
    return result;
  }

  /// Like `call`, to `owner` (may be null) or else `registry`; an owner that
  /// stopped before it read the request (see request_routed) passes it on to
  /// the registry.
  template <class R, class... Ts>
  R call_routed(const caf::actor& owner, const caf::actor& registry,
                const Ts&... xs) {
    R result{};
    if (owner) {
      auto err = try_call(owner, result, xs...);
      if (!err)
        return result;
      if (!bounced(err))
        throw_error(err);
    }
    return call<R>(registry, xs...);
  }

private:
  template <class R, class... Ts>
  caf::error try_call(const caf::actor& dest, R& result, Ts&&... xs) {
    if (!dest)
      throw error{errc::storage_down, "no storage behind this handle"};
    caf::error err;
    auto handle = self_->request(dest, caf::infinite, std::forward<Ts>(xs)...);
    auto guard = remote_guard::make(dest, caf::strong_actor_ptr{self_->ctrl()},
                                    handle.id());
    handle.receive([&](R& x) { result = std::move(x); },
                   [&](caf::error& x) { err = std::move(x); });
    return err;
  }

public:
private:
  caf::scoped_actor self_;
};

void requester_deleter::operator()(requester* ptr) const noexcept {
  delete ptr;
}

// CAF compares handles by (actor id, node); two actor systems in one process
// without a middleman can hand out equal ids. Sessions compare identities.
bool same_actor(const caf::actor& x, const caf::actor& y) {
  return caf::actor_cast<caf::abstract_actor*>(x)
         == caf::actor_cast<caf::abstract_actor*>(y);
}

// -- sessions held by this thread
// ------------------------------------------------

namespace {

// Weak, so that a session destroyed on another thread leaves no dangling entry.
thread_local std::vector<std::weak_ptr<held_session>> held_here;

} // namespace

held_session* find_held(const blocking_core& core, const context_key& key) {
  held_session* found = nullptr;
  auto stale = [&](const std::weak_ptr<held_session>& weak) {
    auto ptr = weak.lock();
    if (!ptr || !ptr->open)
      return true;
    if (found == nullptr && ptr->key == key
        && same_actor(ptr->core->target().registry(), core.target().registry()))
      found = ptr.get();
    return false;
  };
  held_here.erase(std::remove_if(held_here.begin(), held_here.end(), stale),
                  held_here.end());
  return found;
}

held_session::~held_session() {
  if (core && via)
    core->give_back(via.release());
  if (cell && open) {
    try {
      core->abort(*this); // nobody can end it any more
    } catch (...) {
      // Revoked or stopped already: nothing to end.
    }
  }
}

// -- blocking_core
// ----------------------------------------------------------------

blocking_core::blocking_core(caf::actor_system& sys, storage st)
    : sys_(sys), storage_(std::move(st)) {
  // nop
}

blocking_core::~blocking_core() {
  for (auto ptr : pool_)
    delete ptr;
}

requester_ptr blocking_core::take_requester() {
  {
    std::lock_guard<std::mutex> guard{pool_mtx_};
    if (!pool_.empty()) {
      auto ptr = pool_.back();
      pool_.pop_back();
      return requester_ptr{ptr};
    }
  }
  return requester_ptr{new requester(sys_)};
}

void blocking_core::give_back(requester* ptr) noexcept {
  static constexpr size_t max_pooled = 64;
  {
    std::lock_guard<std::mutex> guard{pool_mtx_};
    if (pool_.size() < max_pooled) {
      pool_.push_back(ptr);
      return;
    }
  }
  delete ptr;
}

namespace {

/// Borrows a requester from the pool for one call.
template <class R, class... Ts>
R call_via_pool(blocking_core& core, const caf::actor& owner, Ts&&... xs) {
  auto req = core.take_requester();
  try {
    auto result = req->call_routed<R>(owner, core.target().registry(), xs...);
    core.give_back(req.release());
    return result;
  } catch (...) {
    core.give_back(req.release());
    throw;
  }
}

} // namespace

// -- direct sessions (see context)
// ---------------------------------------------------------

namespace {

/// Locks the cell of a direct session that must still be open; throws what the
/// owner would answer otherwise.
std::unique_lock<std::mutex> lock_open(const held_session& held,
                                       const char* what) {
  auto& cell = *held.cell;
  std::unique_lock<std::mutex> guard{cell.mtx};
  if (cell.direct_session_open(held.token))
    return guard;
  auto stopped = cell.stopped();
  guard.unlock();
  if (stopped)
    throw error{errc::storage_down, "storage stopped"};
  throw error{errc::session_expired,
              std::string{what} + ": the session is no longer open"};
}

/// The owner of `cell` (weak; none if it has no owner).
caf::actor_addr owner_addr(const context& cell) {
  std::lock_guard<std::mutex> guard{cell.mtx};
  return cell.owner;
}

/// The owner of `cell`, or null (no cell, or no owner yet: ask the registry,
/// which spawns one if needed).
caf::actor owner_of(const context* cell) {
  if (!cell)
    return caf::actor{};
  std::lock_guard<std::mutex> guard{cell->mtx};
  return caf::actor_cast<caf::actor>(cell->owner);
}

/// True while a request of this process on a key of `key`'s board shard is
/// at the registry (it had no context or owner to go to). An actor's own such
/// request may meet a context that appeared meanwhile: its later requests
/// must not take the context directly before the registry hands it over.
bool behind_registry(const storage& st, const context_key& key) {
  auto& board = st.board();
  return board && board->via_registry(key).load() > 0;
}

/// The route to the owner named by `cell` (read under its lock; the caller
/// holds none; null: to the registry), counting the request.
owner_route route_via(const storage& st, const context_key& key,
                      std::shared_ptr<context> cell) {
  owner_route result;
  auto& board = st.board();
  if (!board)
    return result;
  // Behind our requests still at the registry: through it (see via_registry).
  auto behind = behind_registry(st, key);
  if (!cell) {
    result.ticket = std::make_shared<inbound_ticket>(board, key, nullptr, true);
    return result;
  }
  // Counted where the owner is read: the registry retires no owner with a
  // request on its way (registry.cpp, retire_confirm_atom).
  std::lock_guard<std::mutex> guard{cell->mtx};
  if (!behind)
    result.owner = caf::actor_cast<caf::actor>(cell->owner);
  auto to_registry = !result.owner;
  result.ticket = std::make_shared<inbound_ticket>(board, key, std::move(cell),
                                                   to_registry);
  return result;
}

/// The cell of `key` if its storage runs in this process.
std::shared_ptr<context> local_cell(const storage& st,
                                         const context_key& key) {
  if (auto& board = st.board())
    return board->find_cell(key);
  return nullptr;
}

/// Creates `key`'s context with `value` on the board of a storage in this
/// process, unless it exists (then: its cell) or the request needs the
/// registry's answer (fast path off, bad key or value: then null).
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

/// Waits in `cell`'s queue (the caller checked may_queue_direct and
/// holds `guard`) until the session is granted to `held`; throws the error
/// the wait ended with (timeout after `wait_ms` if positive, context erased,
/// storage stopped).
void wait_in_cell(context& cell, std::unique_lock<std::mutex>& guard,
                  held_session& held, int64_t wait_ms) {
  actors::thread_waiter w;
  if (!cell.enqueue(w))
    throw error{errc::overloaded, "too many requests queued on this context"};
  auto done = [&w] { return w.result != waiter::outcome::waiting; };
  if (wait_ms < 0) {
    w.cv.wait(guard, done);
  } else if (!w.cv.wait_for(guard, std::chrono::milliseconds{wait_ms}, done)) {
    cell.remove(w); // never granted later
    throw error{errc::timeout, "gave up waiting for the context"};
  }
  if (w.result == waiter::outcome::failed)
    throw_error(w.error);
  held.token = w.token;
  held.version = w.version;
  held.working = std::move(w.value);
}

} // namespace

// -- blocking_core: requests
// -------------------------------------------------------

versioned_value blocking_core::snapshot(const context_key& key) {
  // In this process, the owner's last commit is in the cell: no message.
  if (auto& board = storage_.board())
    if (auto hit = board->find(key))
      return std::move(*hit);
  return call_via_pool<versioned_value>(*this, caf::actor{},
                                        snapshot_atom::value, key);
}

uint64_t blocking_core::store(const context_key& key, caf::message value) {
  payload x{std::move(value)};
  auto cell = local_cell(storage_, key);
  if (!cell) {
    auto [existing, created] = create_local(storage_, key, x);
    if (created)
      return 1; // the first version of a new context
    cell = std::move(existing);
  }
  if (cell) {
    effects fx; // outlives the lock: the replaced commit goes after it
    std::lock_guard<std::mutex> guard{cell->mtx};
    if (cell->free_for_direct() && cell->fits(x))
      return cell->store(std::move(x), fx);
  }
  auto route = route_via(storage_, key, std::move(cell)); // counted while out
  return call_via_pool<uint64_t>(*this, route.owner, store_atom::value, key,
                                 std::move(x), uint64_t{0});
}

bool blocking_core::erase(const context_key& key) {
  auto cell = local_cell(storage_, key);
  if (cell) {
    // Nobody involved and no owner to retire: erased here.
    effects fx;
    std::lock_guard<std::mutex> guard{cell->mtx};
    if (cell->free_for_direct_erase()) {
      cell->erase(fx, false); // nobody waits: no effect but the value's end
      storage_.board()->erase(*cell);
      return true;
    }
  }
  auto route = route_via(storage_, key, std::move(cell)); // counted while out
  return call_via_pool<bool>(*this, route.owner, erase_atom::value, key,
                             uint64_t{0});
}

storage_stats blocking_core::stats() {
  return call_via_pool<storage_stats>(*this, caf::actor{}, stats_atom::value);
}

std::shared_ptr<held_session> blocking_core::acquire(const context_key& key,
                                                     int64_t wait_ms) {
  auto held = std::make_shared<held_session>();
  held->key = key;
  // A free context in this process is taken like a free futex.
  auto cell = local_cell(storage_, key);
  if (cell) {
    effects fx;
    std::unique_lock<std::mutex> guard{cell->mtx};
    auto direct = cell->free_for_direct_session();
    if (!direct && cell->may_queue_direct()) {
      // Held by someone else: wait in the queue, like a futex waiter (whoever
      // grants it the session arms its lease).
      if (wait_ms == 0)
        throw error{errc::timeout, "the context is held"};
      wait_in_cell(*cell, guard, *held, wait_ms);
      guard.unlock();
      direct = true;
    } else if (direct) {
      waiter w{waiter::kind::thread, waiter::request::acquire};
      cell->acquire_direct(w, fx);
      held->token = w.token;
      held->version = w.version;
      held->working = std::move(w.value);
      finish_direct(*cell, fx, guard);
    }
    if (direct) {
      held->cell = std::move(cell);
      held->core = shared_from_this();
      held_here.emplace_back(held);
      return held;
    }
  }
  // Otherwise the owner queues us. The requester that acquires becomes the
  // holder: the owner monitors it, so it stays with the session until the
  // session is gone.
  auto route = route_via(storage_, key, std::move(cell)); // counted while out
  auto req = take_requester();
  grant g;
  try {
    g = req->call_routed<grant>(route.owner, storage_.registry(),
                                acquire_atom::value, key, wait_ms);
  } catch (...) {
    give_back(req.release());
    throw;
  }
  held->core = shared_from_this();
  held->token = g.token;
  held->version = g.version;
  // Remote holders get no owner handle: their session requests go to the
  // storage, which forwards them.
  held->owner = g.owner ? std::move(g.owner) : storage_.registry();
  held->via = std::move(req);
  held->working = std::move(g.value.value);
  held_here.emplace_back(held);
  return held;
}

uint64_t blocking_core::commit(held_session& held, caf::message value) {
  payload x{std::move(value)};
  if (held.cell) {
    effects fx;
    auto guard = lock_open(held, "commit");
    auto version = held.cell->commit(std::move(x), fx);
    guard.unlock();
    held.replaced = std::move(fx.replaced);
    return version;
  }
  return held.via->call<uint64_t>(held.owner, commit_atom::value, held.key,
                                  held.token, std::move(x));
}

uint64_t blocking_core::release(held_session& held, caf::message value) {
  held.open = false;
  payload x{std::move(value)};
  if (held.cell) {
    auto& cell = *held.cell;
    effects fx;
    auto guard = lock_open(held, "release");
    auto version = cell.commit(std::move(x), fx);
    cell.end_session(fx, false);
    finish_direct(cell, fx, guard);
    held.replaced = std::move(fx.replaced);
    return version;
  }
  return held.via->call<uint64_t>(held.owner, release_atom::value, held.key,
                                  held.token, std::move(x));
}

void blocking_core::abort(held_session& held) {
  held.open = false;
  if (held.cell) {
    auto& cell = *held.cell;
    effects fx;
    auto guard = lock_open(held, "abort");
    cell.end_session(fx, false);
    finish_direct(cell, fx, guard);
    return;
  }
  held.via->call<uint64_t>(held.owner, abort_atom::value, held.key, held.token);
}

bool blocking_core::erase_held(held_session& held) {
  held.open = false;
  if (held.cell) {
    auto& cell = *held.cell;
    effects fx;
    auto guard = lock_open(held, "erase");
    cell.erase(fx, false);
    finish_direct(cell, fx, guard, storage_.board().get());
    return true;
  }
  return held.via->call<bool>(held.owner, erase_atom::value, held.key,
                              held.token);
}

} // namespace detail

} // namespace ctxstore

// -- sessions held by actors
// -------------------------------------------------------

namespace ctxstore::detail {

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

// -- the direct path of actors
// ---------------------------------------------------------

inbound_ticket::inbound_ticket(const std::shared_ptr<snapshot_board>& board,
                               const context_key& key,
                               std::shared_ptr<context> cell,
                               bool to_registry)
    : cell_(std::move(cell)) {
  if (cell_)
    cell_->inbound += 1;
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
  if (cell_) {
    // The last request on its way to an owner the registry kept because of
    // it (see retire_wanted): the owner may retire now.
    if (cell_->inbound.fetch_sub(1) == 1 && cell_->retire_wanted.load()
        && cell_->retire_wanted.exchange(false))
      send_handover(owner_addr(*cell_));
    cell_.reset();
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

owner_route route_to_owner(const storage& st, const context_key& key) {
  return route_via(st, key, local_cell(st, key));
}

namespace {

/// While an actor ends its session: the worker it runs on. The next actor's
/// turn then goes to that worker's own queue, as a message the actor sent
/// would (CAF's `send` passes `context()`): no other worker is woken for it.
/// Null on any other thread: the scheduler picks a worker.
thread_local caf::execution_unit* turn_host = nullptr;

class turn_host_scope {
public:
  explicit turn_host_scope(const async_held& held) : prev_(turn_host) {
    turn_host = held.self != nullptr ? held.self->context() : nullptr;
  }

  turn_host_scope(const turn_host_scope&) = delete;
  turn_host_scope& operator=(const turn_host_scope&) = delete;

  ~turn_host_scope() {
    turn_host = prev_;
  }

private:
  caf::execution_unit* prev_;
};

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
    actor->enqueue(caf::make_mailbox_element(actor, turn, caf::no_stages,
                                             caf::ok_atom::value),
                   turn_host);
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
  effects fx;
  std::unique_lock<std::mutex> guard{cell->mtx};
  if (!behind && *cell->type == type && may_wait && cell->may_queue_direct()) {
    // Held by someone else: the actor waits in the queue, like a thread;
    // whoever grants it the session sends it the turn.
    auto turn = self->new_request_id(caf::message_priority::normal);
    auto w = std::make_shared<actor_waiter>(
      cell, caf::strong_actor_ptr{self->ctrl()}, turn.response_id());
    if (!cell->enqueue(*w)) {
      w->taken = true; // never queued: nothing to give up
      result.waiter_error = make_error(
        errc::overloaded, "too many requests queued on this context");
      return result;
    }
    result.waiter = std::move(w);
    return result;
  }
  if (behind || !cell->free_for_direct_session() || *cell->type != type) {
    guard.unlock();
    result.route = route_via(st, key, std::move(cell));
    return result;
  }
  auto held = std::make_shared<async_held>();
  waiter w{waiter::kind::actor, waiter::request::acquire};
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
  result.held = std::move(held);
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
  self->add_multiplexed_response_handler(
    turn, caf::behavior{[self, waiter, home, on_turn](caf::ok_atom) {
                          caf::error err;
                          auto held = take_turn(self, *waiter, home, err);
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
  auto version = cell.commit(std::move(x), fx);
  if (end) {
    turn_host_scope host{held};
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
  turn_host_scope host{held};
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
  turn_host_scope host{held};
  cell.erase(fx, false);
  finish_direct(cell, fx, guard, held.home->board().get());
  return true;
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

std::optional<versioned_value> read_board(const snapshot_board& board,
                                          const context_key& key) {
  return board.find(key);
}

caf::actor local_owner(const storage& st, const context_key& key) {
  return owner_of(local_cell(st, key).get());
}

uint64_t owners_kept(const storage& st) {
  auto& board = st.board();
  return board ? board->defaults().stats->owners_kept.load() : 0;
}

caf::error to_ctxstore_error(caf::error err) {
  if (!err || err.category() == messages::error_category)
    return err;
  return make_error(errc::storage_down, describe(err));
}

} // namespace ctxstore::detail
