#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "ctxstore/actors/context.hpp"
#include "ctxstore/actors/durable.hpp"
#include "ctxstore/blocking_client.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/messages/protocol.hpp"
#include "fast_path.hpp"
#include "requester.hpp"

// The blocking client's type-erased half (blocking_core): its requests, its
// sessions on the fast path (a free context taken like a free futex, waits in
// the context's queue like a futex waiter) and through the owner, and the
// sessions each thread holds (reentrancy).

namespace ctxstore::detail {

using namespace ctxstore::messages;
using actors::context;
using actors::effects;
using actors::waiter;

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

// -- sessions on the fast path --------------------------------------------------------

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
  if (!stopped)
    cell.metrics->fencing_refusals.fetch_add(1, std::memory_order_relaxed);
  guard.unlock();
  if (stopped)
    throw error{errc::storage_down, "storage stopped"};
  throw error{errc::session_expired,
              std::string{what} + ": the session is no longer open"};
}

/// Waits in `cell`'s queue (the caller checked may_queue_direct and
/// holds `guard`) until the session is granted to `held`; throws the error
/// the wait ended with (timeout after `wait_ms` if positive, context erased,
/// storage stopped).
void wait_in_cell(context& cell, std::unique_lock<std::mutex>& guard,
                  held_session& held, int64_t wait_ms) {
  actors::thread_waiter w;
  w.requester = actors::this_thread_party();
  if (auto err = actors::queue_acquire(cell, w, actors::this_thread_name()))
    throw_error(err); // overloaded, or a deadlock
  auto done = [&w] { return w.result != waiter::outcome::waiting; };
  if (wait_ms < 0) {
    w.cv.wait(guard, done);
  } else if (!w.cv.wait_for(guard, std::chrono::milliseconds{wait_ms}, done)) {
    cell.remove(w); // never granted later
    cell.metrics->acquire_timeout.fetch_add(1, std::memory_order_relaxed);
    throw error{errc::timeout, "gave up waiting for the context"};
  }
  if (w.result == waiter::outcome::failed)
    throw_error(w.error);
  held.token = w.token;
  held.version = w.version;
  held.working = std::move(w.value);
}

/// Marks when a thread last used a durable context without its owner (the
/// owner's idle timer and the registry's least-recently-used choice read it).
void touch(context& cell) {
  if (cell.durable)
    cell.last_used.store(
      std::chrono::steady_clock::now().time_since_epoch().count(),
      std::memory_order_relaxed);
}

/// The commit (`end`: release) of a direct session on a durable context:
/// made durable by this thread (backend::write_and_wait), then applied, so
/// that no snapshot sees it before it is durable. Meanwhile the context
/// waits like for the owner's own writes (context::begin_direct_persist).
/// A failed write leaves the value as it was (a release still ends the
/// session) and, unless the value did not encode, makes the owner read the
/// context again: the write may have landed all the same.
uint64_t commit_durable(const storage& st, held_session& held, payload x,
                        bool end) {
  auto& cell = *held.cell;
  auto backend = st.board()->defaults().backend;
  uint64_t version = 0;
  uint64_t replaces = 0;
  {
    auto guard = lock_open(held, end ? "release" : "commit");
    version = cell.next_version();
    replaces = cell.present() ? cell.version() : 0;
    cell.begin_direct_persist();
  }
  auto started = actors::steady_ns();
  auto w = actors::write_of(cell.key, version, replaces, x);
  auto err = w ? backend->write_and_wait(std::move(*w)) : w.error();
  effects fx; // outlives the lock: the replaced commit goes after it
  std::unique_lock<std::mutex> guard{cell.mtx};
  auto revoked = cell.end_direct_persist();
  if (cell.stopped()) // it may have landed: the client cannot know
    throw error{errc::storage_down,
                "storage stopped before the backend answered"};
  if (err) {
    if (w) // (a value that does not encode is not the backend's failure)
      cell.metrics->count_failure(actors::op_kind::write,
                                  actors::backend_error(err));
    if (end)
      cell.end_session(fx, false);
    if (to_errc(err) != errc::bad_request) {
      cell.begin_reload();
      fx.handover = true; // the owner reads it (owner.cpp, handover_atom)
    }
    finish_direct(cell, fx, guard);
    throw_error(actors::backend_error(err));
  }
  cell.metrics->durable_commit.observe(actors::steady_ns() - started);
  auto committed = cell.commit(std::move(x), fx);
  if (end || revoked)
    cell.end_session(fx, false);
  touch(cell);
  finish_direct(cell, fx, guard);
  held.replaced = std::move(fx.replaced);
  return committed;
}

/// The erase by the holder of a direct session on a durable context, made
/// durable first like commit_durable. Its session ends either way.
bool erase_durable(const storage& st, held_session& held) {
  auto& cell = *held.cell;
  auto backend = st.board()->defaults().backend;
  std::optional<backend_write> w;
  {
    auto guard = lock_open(held, "erase");
    if (cell.present())
      w = actors::erase_of(cell.key, cell.version());
    cell.begin_direct_persist();
  }
  auto err = w ? backend->write_and_wait(std::move(*w)) : caf::error{};
  effects fx;
  std::unique_lock<std::mutex> guard{cell.mtx};
  cell.end_direct_persist();
  if (cell.stopped())
    throw error{errc::storage_down,
                "storage stopped before the backend answered"};
  if (err) {
    cell.metrics->count_failure(actors::op_kind::erase,
                                actors::backend_error(err));
    cell.end_session(fx, false);
    cell.begin_reload();
    fx.handover = true;
    finish_direct(cell, fx, guard);
    throw_error(actors::backend_error(err));
  }
  auto existed = cell.erase(fx, false);
  finish_direct(cell, fx, guard, st.board().get());
  return existed;
}

/// Hands a context that this thread read in (store_new_durable) to its
/// owner: the one spawned meanwhile (it waits for us), else a new one from
/// the registry: at once if `now` (the thread failed: the owner reads the
/// context, and requests may wait for that), else with the other contexts
/// that threads stored meanwhile (adoption_queue). The caller holds `guard`
/// and ended the thread's load.
void hand_over(const storage& st, context& cell,
               std::unique_lock<std::mutex>& guard, bool now) {
  auto owner = cell.owner;
  guard.unlock();
  if (owner)
    send_handover(owner);
  else if (now)
    caf::anon_send(st.registry(), handover_atom::value, cell.key);
  else if (st.board()->adoptions().push(cell.key))
    caf::anon_send(st.registry(), adopt_atom::value);
}

/// A store of a durable context that is not in memory, by this thread
/// alone (the thread's fast path): the context is put on the board
/// `loading`, the store made durable on this thread as the version after
/// the backend's (backend::store_and_wait: one step, no message and no
/// hand-off while the backend is idle; the value it replaces is not read),
/// applied, and then handed to an owner. Meanwhile everything else on it
/// waits for its owner, which waits for this thread
/// (context::begin_thread_load). Nothing (not taken) if the
/// context is on the board, a request of this process on its key is on its
/// way, or the fast path is off. A read or write that fails leaves the
/// context `loading`: its owner reads it again (the write may have landed).
std::optional<uint64_t> store_new_durable(const storage& st,
                                          const context_key& key, payload& x) {
  auto& board = st.board();
  if (!board || !board->defaults().thread_fast_path || validate_key(key))
    return std::nullopt;
  auto type = context_type_of(key.type);
  if (x.value.size() != 1 || x.value.type(0).second == nullptr
      || *x.value.type(0).second != *type)
    return std::nullopt; // the registry answers with the error
  // Behind a request of this process still on its way: through the
  // registry, in order.
  if (board->requests_out(key).load() != 0)
    return std::nullopt;
  auto cell = board->create_for_thread(key, type);
  if (!cell)
    return std::nullopt;
  auto& backend = board->defaults().backend;
  uint64_t version = 0; // that the write left
  caf::error err;
  bool written = false; // the write reached the backend
  auto started = actors::steady_ns();
  try {
    // One step: the backend continues the context's versions itself, and
    // the value it replaces is not read (a store replaces it unseen).
    auto w = actors::write_of(key, 0, 0, x);
    written = static_cast<bool>(w);
    if (!w) {
      err = w.error();
    } else if (auto left = backend->store_and_wait(std::move(*w)); !left) {
      err = actors::backend_error(left.error());
    } else {
      version = *left;
    }
  } catch (const std::exception& ex) {
    // A backend that throws must not leave the context waiting for us.
    err = make_error(errc::backend_failure, ex.what());
  }
  effects fx; // outlives the lock: the replaced value goes after it
  std::unique_lock<std::mutex> guard{cell->mtx};
  cell->end_thread_load();
  if (cell->stopped()) { // it may have landed: the client cannot know
    guard.unlock();
    throw error{errc::storage_down,
                "storage stopped before the backend answered"};
  }
  if (err) {
    if (written)
      cell->metrics->count_failure(actors::op_kind::write,
                                   actors::backend_error(err));
    hand_over(st, *cell, guard, true); // still loading: the owner reads it
    throw_error(actors::backend_error(err));
  }
  cell->metrics->durable_commit.observe(actors::steady_ns() - started);
  actors::apply_unread_store(*cell, version, std::move(x), fx);
  touch(*cell);
  context::wake(fx);
  hand_over(st, *cell, guard, false);
  return version;
}

/// A store of a resident durable context that nobody holds or waits for,
/// by this thread alone: made durable by this thread like a direct
/// session's commit (commit_durable), then applied. Meanwhile the context
/// waits (context::begin_direct_persist: whatever reaches its owner is
/// queued there). Nothing (not taken) if the context is not free for it or
/// the value does not encode (its owner answers).
std::optional<uint64_t> store_free_durable(const storage& st, context& cell,
                                           payload& x) {
  auto w = actors::write_of(cell.key, 0, 0, x); // versions: below
  if (!w)
    return std::nullopt;
  {
    std::lock_guard<std::mutex> guard{cell.mtx};
    if (!cell.free_for_thread_session() || !cell.fits(x))
      return std::nullopt;
    w->version = cell.next_version();
    w->replaces = cell.version();
    cell.begin_direct_persist();
  }
  auto started = actors::steady_ns();
  caf::error err;
  try {
    err = st.board()->defaults().backend->write_and_wait(std::move(*w));
  } catch (const std::exception& ex) {
    // A backend that throws must not leave the context waiting for us.
    err = make_error(errc::backend_failure, ex.what());
  }
  effects fx; // outlives the lock: the replaced commit goes after it
  std::unique_lock<std::mutex> guard{cell.mtx};
  cell.end_direct_persist();
  if (cell.stopped()) // it may have landed: the client cannot know
    throw error{errc::storage_down,
                "storage stopped before the backend answered"};
  uint64_t version = 0;
  if (err) {
    cell.metrics->count_failure(actors::op_kind::write,
                                actors::backend_error(err));
    cell.begin_reload(); // it may have landed all the same
    fx.handover = true;  // the owner reads it (owner.cpp, handover_atom)
  } else {
    cell.metrics->durable_commit.observe(actors::steady_ns() - started);
    version = cell.store(std::move(x), fx);
    touch(cell);
  }
  cell.run_queue(fx, false); // what reached the owner meanwhile
  finish_direct(cell, fx, guard);
  if (err)
    throw_error(actors::backend_error(err));
  return version;
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
    if (!cell) // a durable storage's fast path, if it may take it
      if (auto version = store_new_durable(storage_, key, x))
        return *version;
  }
  if (cell) {
    effects fx; // outlives the lock: the replaced commit goes after it
    std::lock_guard<std::mutex> guard{cell->mtx};
    if (cell->free_for_direct() && cell->fits(x))
      return cell->store(std::move(x), fx);
  }
  if (cell && cell->durable) // a durable storage's fast path, if free
    if (auto version = store_free_durable(storage_, *cell, x))
      return *version;
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

namespace {

/// A text decoded by CAF's middleman thread (an answer of another node),
/// copied on the thread that asked: the copy is this thread's own. The
/// middleman hands the answer on through an actor's mailbox, which
/// ThreadSanitizer cannot see; tests/tsan.supp names this function (and
/// only it) for the one read of the decoded bytes.
[[gnu::noinline]] std::string received_text(const std::string& x) {
  return std::string{x.data(), x.size()};
}

} // namespace

context_info blocking_core::info(const context_key& key) {
  // In this process: read under the context's lock, like a snapshot.
  if (auto x = local_info(storage_, key))
    return std::move(*x);
  auto x = call_via_pool<context_info>(*this, caf::actor{}, info_atom::value,
                                       key);
  x.holder = received_text(x.holder);
  return x;
}

std::string blocking_core::metrics() {
  if (auto text = local_metrics(storage_))
    return std::move(*text);
  return received_text(
    call_via_pool<std::string>(*this, caf::actor{}, metrics_atom::value));
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
    auto direct = cell->free_for_thread_session();
    if (!direct && cell->may_queue_direct()) {
      // Held by someone else: wait in the queue, like a futex waiter (whoever
      // grants it the session arms its lease).
      if (wait_ms == 0) {
        cell->metrics->acquire_timeout.fetch_add(1, std::memory_order_relaxed);
        throw error{errc::timeout, "the context is held"};
      }
      wait_in_cell(*cell, guard, *held, wait_ms);
      guard.unlock();
      direct = true;
    } else if (direct) {
      waiter w{waiter::kind::thread, waiter::request::acquire};
      w.requester = actors::this_thread_party();
      cell->acquire_direct(w, fx);
      held->token = w.token;
      held->version = w.version;
      held->working = std::move(w.value);
      touch(*cell);
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
  req->act_for_this_thread(storage_.board()); // for deadlock detection
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
  if (held.cell && held.cell->durable)
    return commit_durable(storage_, held, std::move(x), false);
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
  if (held.cell && held.cell->durable)
    return commit_durable(storage_, held, std::move(x), true);
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
  if (held.cell && held.cell->durable)
    return erase_durable(storage_, held);
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

} // namespace ctxstore::detail
