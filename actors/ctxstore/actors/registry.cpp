#include "ctxstore/actors/registry.hpp"

#include <chrono>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <unordered_map>
#include <utility>

#include <caf/all.hpp>

#include "ctxstore/actors/counters.hpp"
#include "ctxstore/actors/feed_remote.hpp"
#include "ctxstore/actors/metrics.hpp"
#include "ctxstore/actors/owner.hpp"
#include "ctxstore/actors/owner_state.hpp"
#include "ctxstore/backends/batching_backend.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/messages/protocol.hpp"

// The registry creates contexts and finds them on the storage's board (see
// context_index.hpp); it keeps no other map of contexts. A lookup of an
// unknown key leaves nothing behind. A context gets an owner actor only when
// it first needs one (see context.hpp): its creation, snapshots and a
// free context's erase are done here, under the context's mutex. The
// registry monitors its owners and stops them when it stops; they hold only
// a weak reference back, so the registry stops when its last handle is gone.

namespace ctxstore::actors {

namespace {

using namespace ctxstore::messages;
using cell_ptr = std::shared_ptr<context>;
using owner_detail::handoff;
using owner_detail::loaded_value;

/// How long contexts that threads store wait, at most, for the next drain
/// of the adoption queue while stores keep coming: short next to any
/// idle_timeout, long enough that a thread storing one new context after
/// the other costs the registry one wake-up per interval, not per store.
constexpr auto adoption_interval = std::chrono::milliseconds{50};

struct owned_cell {
  caf::actor owner; // keeps the owner alive until it retires
  cell_ptr cell;
};

struct registry_state {
  static inline const char* name = "ctxstore.registry";
  std::unordered_map<caf::actor_addr, owned_cell> owners;
  storage_options options;
  std::shared_ptr<actors::context_index> board;
  bool hidden = false;
  std::minstd_rand sampler; // picks owners for max_resident
  // Owners that may still be asked, since the last activation, in place of
  // one that could not let its context leave memory (make_room).
  int evict_retries = 0;
  // infos of durable contexts not in memory, waiting for the backend's read
  struct info_read {
    caf::typed_response_promise<context_info> rp;
    context_key key;
    std::shared_ptr<handoff<loaded_value>> slot;
  };
  std::unordered_map<uint64_t, info_read> info_reads;
  uint64_t info_seq = 0;

  ~registry_state() {
    // Owners stop with us (each tells its waiters that the storage stopped).
    for (auto& entry : owners)
      caf::anon_send_exit(entry.second.owner, caf::exit_reason::user_shutdown);
    // Infos still waiting for the backend are answered, not left hanging.
    for (auto& entry : info_reads)
      entry.second.rp.deliver(make_error(
        errc::storage_down, "storage stopped before the backend answered"));
    // Clients in this process read snapshots from the board: once we are
    // gone they must ask, and learn that the storage is down.
    if (board)
      board->close();
  }

  counters& stats() {
    return *board->defaults().stats;
  }
};

using registry_ptr = caf::stateful_actor<registry_state>*;

/// The owner of `cell`, spawned now if the context has none yet. Null if the
/// context is gone (erased, or its owner retired, since it was looked up).
/// `for_store`: the caller forwards a store to it (owner_config::first_store).
caf::actor owner_of(registry_ptr self, const cell_ptr& cell,
                    bool for_store = false) {
  std::lock_guard<std::mutex> guard{cell->mtx};
  if (cell->owner) {
    cell->forwards += 1; // the caller forwards a request to it
    return caf::actor_cast<caf::actor>(cell->owner);
  }
  if ((!cell->present() && !cell->loading()) || cell->stopped())
    return caf::actor{}; // erased without an owner: off the board already
  auto& st = self->state;
  owner_config cfg;
  cfg.key = cell->key;
  cfg.ctx = cell;
  cfg.first_store = for_store && cell->loading();
  cfg.options = st.options;
  cfg.stats = st.board->defaults().stats;
  cfg.registry = self->address();
  cfg.board = st.board;
  // Counted here, not by the owner: its initialization may run after we
  // answered, and stats must reflect every completed call.
  st.stats().owners += 1;
  auto owner = spawn_owner(self, std::move(cfg), st.hidden);
  cell->owner = owner.address();
  st.owners.emplace(owner.address(), owned_cell{owner, cell});
  return owner;
}

caf::actor_addr sender_addr(registry_ptr self) {
  return caf::actor_cast<caf::actor_addr>(self->current_sender());
}

bool durable(registry_ptr self) {
  return self->state.options.backend != nullptr;
}

/// The cell of `key`; with a backend also one that is only there (a new
/// cell, loading: its owner reads it).
cell_ptr find_or_load(registry_ptr self, const context_key& key) {
  auto& board = *self->state.board;
  if (!durable(self))
    return board.find_cell(key);
  return board.find_or_load(key, ctxstore::detail::context_type_of(key.type));
}

/// How many other owners one activation may ask in turn when the owner
/// asked could not let its context leave memory (busy, watched, or leaving
/// already): bounded, so that contexts all in use cost a few messages, not
/// a loop.
constexpr int max_evict_retries = 8;

/// With max_resident: if as many contexts as allowed are in memory, asks the
/// least recently used of a sample of owners to let its context leave
/// memory (it does if nothing involves it; else it says so, and another is
/// asked: see evict_atom). Sampled like Redis's LRU: no list to keep in
/// order on every access.
void make_room(registry_ptr self) {
  auto& st = self->state;
  auto bound = st.options.max_resident;
  if (bound == 0 || st.owners.empty()
      || st.stats().contexts.load() < static_cast<int64_t>(bound))
    return;
  owned_cell* oldest = nullptr;
  auto oldest_use = std::numeric_limits<int64_t>::max();
  size_t seen = 0;
  for (int tries = 0; tries < 32 && seen < 8; ++tries) {
    auto b = st.sampler() % st.owners.bucket_count();
    for (auto i = st.owners.begin(b); i != st.owners.end(b); ++i, ++seen) {
      auto used = i->second.cell->last_used.load(std::memory_order_relaxed);
      if (used < oldest_use) {
        oldest_use = used;
        oldest = &i->second;
      }
    }
  }
  if (oldest == nullptr)
    return;
  // Not picked again at once (it may be busy and stay).
  oldest->cell->last_used.store(
    std::chrono::steady_clock::now().time_since_epoch().count(),
    std::memory_order_relaxed);
  self->send(oldest->owner, evict_atom::value);
}

/// One context comes into memory: one leaves (make_room), with a fresh
/// budget of owners to ask in turn.
void make_room_for_one(registry_ptr self) {
  self->state.evict_retries = max_evict_retries;
  make_room(self);
}

/// Forwards the current request to the owner of `key`'s context (spawning it
/// if needed; with a backend, reading the context from there); false if
/// there is no such context. `for_store`: the request is a store, which a
/// new owner makes durable in one step, unread (owner_config::first_store).
template <class... Ts>
bool forward_loading_as(registry_ptr self, const context_key& key,
                        bool for_store, Ts&&... xs) {
  auto cell = find_or_load(self, key);
  if (!cell)
    return false;
  if (self->state.options.max_resident > 0) {
    bool fresh; // read in now (by its owner, or by a thread: see adopt)
    {
      std::lock_guard<std::mutex> guard{cell->mtx};
      fresh = !cell->owner;
    }
    if (fresh)
      make_room_for_one(self);
  }
  auto owner = owner_of(self, cell, for_store);
  if (!owner)
    return false;
  self->delegate(owner, std::forward<Ts>(xs)...);
  return true;
}

/// forward_loading_as a request that is not a store.
template <class... Ts>
bool forward_loading(registry_ptr self, const context_key& key, Ts&&... xs) {
  return forward_loading_as(self, key, false, std::forward<Ts>(xs)...);
}

/// Forwards the current request to the owner of `key`'s context (spawning it
/// if needed); false if there is no such context in memory.
template <class... Ts>
bool forward(registry_ptr self, const context_key& key, Ts&&... xs) {
  auto cell = self->state.board->find_cell(key);
  if (!cell)
    return false;
  auto owner = owner_of(self, cell);
  if (!owner)
    return false;
  self->delegate(owner, std::forward<Ts>(xs)...);
  return true;
}

/// A thread of this process read `key`'s durable context into memory and
/// made its store durable itself (blocking_core.cpp): the context gets its
/// owner now (which times its idleness and lets it leave memory), or reads
/// it if the thread failed. Nothing if it has an owner already.
void adopt(registry_ptr self, const context_key& key) {
  auto cell = self->state.board->find_cell(key);
  if (!cell)
    return;
  {
    std::lock_guard<std::mutex> guard{cell->mtx};
    if (cell->owner || cell->thread_loading())
      return; // (a new cell: its thread asks again when done)
  }
  if (self->state.options.max_resident > 0)
    make_room_for_one(self);
  if (auto owner = owner_of(self, cell))
    self->send(owner, handover_atom::value); // its first step arms its timer
}

/// Counts a request on `key` that failed with `code` (metrics).
void count_failure(registry_ptr self, const context_key& key, op_kind kind,
                   errc code) {
  self->state.board->defaults().metrics->of(key.type)->count_failure(kind,
                                                                     code);
}

/// The info of `key`'s context if it is in memory.
std::optional<context_info> info_in_memory(registry_ptr self,
                                           const context_key& key) {
  auto cell = self->state.board->find_cell(key);
  if (!cell)
    return std::nullopt;
  std::lock_guard<std::mutex> guard{cell->mtx};
  if (!cell->present())
    return std::nullopt; // erased, left memory, or not read in yet
  return cell->info(steady_ns());
}

/// The info of a durable context not in memory: its row, read from the
/// backend (answered by `loaded_atom`). Not an activation: an info changes
/// nothing, and an unknown id leaves nothing behind (no cell, no owner, no
/// eviction of another context to make room).
caf::typed_response_promise<context_info> read_info(registry_ptr self,
                                                    const context_key& key) {
  auto& st = self->state;
  auto seq = ++st.info_seq;
  auto slot = std::make_shared<handoff<loaded_value>>();
  auto rp = self->make_response_promise<context_info>();
  st.info_reads.emplace(seq, registry_state::info_read{rp, key, slot});
  auto me = self->address();
  st.options.backend->load(key.type, key.id, [me, seq, slot](loaded_value x) {
    slot->put(std::move(x));
    if (auto registry = caf::actor_cast<caf::actor>(me))
      caf::anon_send(registry, loaded_atom::value, seq);
  });
  return rp;
}

caf::behavior registry_behavior(registry_ptr self, storage_options options,
                                bool hidden,
                                std::shared_ptr<actors::context_index> board) {
  self->state.options = options;
  self->state.board = std::move(board);
  self->state.hidden = hidden;
  self->set_default_handler(
    [](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
      return make_error(errc::bad_request,
                        "unexpected message for a ctxstore storage");
    });
  // A stray error sent as a plain message must not stop the storage.
  self->set_error_handler([](caf::error&) {});
  // An owner that stopped without retiring (its context failed) is
  // forgotten; a retired one was already.
  self->set_down_handler([=](caf::down_msg& dm) {
    self->state.owners.erase(dm.source);
  });
  return {
    [=](snapshot_atom, const context_key& key) -> caf::result<versioned_value> {
      if (auto err = validate_key(key))
        return err;
      if (auto hit = self->state.board->find(key))
        return std::move(*hit);
      if (durable(self)
          && forward_loading(self, key, snapshot_atom::value, key))
        return caf::delegated<versioned_value>{};
      return missing_context(key);
    },
    [=](acquire_atom, const context_key& key,
        int64_t wait_ms) -> caf::result<grant> {
      if (auto err = validate_key(key))
        return err;
      if (forward_loading(self, key, acquire_atom::value, key, wait_ms))
        return caf::delegated<grant>{};
      count_failure(self, key, op_kind::acquire, errc::no_such_context);
      return missing_context(key);
    },
    [=](store_atom, const context_key& key, payload& value,
        uint64_t token) -> caf::result<uint64_t> {
      if (auto err = validate_key(key))
        return err;
      if (value.value.empty())
        return make_error(errc::bad_request, "store needs a value");
      auto type = ctxstore::detail::context_type_of(key.type);
      auto rtti = value.value.type(0);
      if (value.value.size() != 1 || rtti.second == nullptr
          || *rtti.second != *type) {
        count_failure(self, key, op_kind::write, errc::type_mismatch);
        return make_error(errc::type_mismatch,
                          "the value is not of the type registered as "
                            + key.type);
      }
      if (durable(self)) { // created by its owner, once durable
        if (forward_loading_as(self, key, true, store_atom::value, key,
                               std::move(value), token))
          return caf::delegated<uint64_t>{};
        return make_error(errc::storage_down, "storage stopped");
      }
      auto& board = *self->state.board;
      for (;;) {
        auto [cell, created] = board.find_or_create(key, type, value);
        if (created)
          return uint64_t{1}; // the first version of a new context
        if (auto owner = owner_of(self, cell)) {
          self->delegate(owner, store_atom::value, key, std::move(value),
                         token);
          return caf::delegated<uint64_t>{};
        }
        // Erased while we looked: it is off the board now; look again.
        board.erase(*cell);
      }
    },
    [=](erase_atom, const context_key& key,
        uint64_t token) -> caf::result<bool> {
      if (auto err = validate_key(key))
        return err;
      if (durable(self)) { // erased by its owner, once durable
        if (forward_loading(self, key, erase_atom::value, key, token))
          return caf::delegated<bool>{};
        return make_error(errc::storage_down, "storage stopped");
      }
      auto& board = *self->state.board;
      auto cell = board.find_cell(key);
      if (!cell)
        return false;
      {
        // Nobody involved and no owner: erased here.
        std::lock_guard<std::mutex> guard{cell->mtx};
        if (!cell->owner && cell->token() == 0) {
          effects fx; // nobody can wait without an owner or a session
          auto existed = cell->erase(fx, false);
          board.erase(*cell);
          return existed;
        }
      }
      // Held (a thread's direct session): the erase waits in the owner's
      // queue.
      if (auto owner = owner_of(self, cell)) {
        self->delegate(owner, erase_atom::value, key, token);
        return caf::delegated<bool>{};
      }
      return false;
    },
    // Session requests of holders on other nodes (their grant carries no
    // owner handle): forwarded by key; no context means no session.
    [=](commit_atom, const context_key& key, uint64_t token,
        payload& value) -> caf::result<uint64_t> {
      if (forward(self, key, commit_atom::value, key, token, std::move(value)))
        return caf::delegated<uint64_t>{};
      return make_error(errc::session_expired, "commit: no such session");
    },
    [=](release_atom, const context_key& key, uint64_t token,
        payload& value) -> caf::result<uint64_t> {
      if (forward(self, key, release_atom::value, key, token, std::move(value)))
        return caf::delegated<uint64_t>{};
      return make_error(errc::session_expired, "release: no such session");
    },
    [=](abort_atom, const context_key& key,
        uint64_t token) -> caf::result<uint64_t> {
      if (forward(self, key, abort_atom::value, key, token))
        return caf::delegated<uint64_t>{};
      return make_error(errc::session_expired, "abort: no such session");
    },
    [=](info_atom, const context_key& key) -> caf::result<context_info> {
      if (auto err = validate_key(key))
        return err;
      if (auto x = info_in_memory(self, key))
        return std::move(*x);
      if (!durable(self))
        return missing_context(key);
      return read_info(self, key);
    },
    [=](loaded_atom, uint64_t seq) {
      auto& reads = self->state.info_reads;
      auto i = reads.find(seq);
      if (i == reads.end())
        return;
      auto read = std::move(i->second);
      reads.erase(i);
      auto row = read.slot->take();
      if (auto x = info_in_memory(self, read.key)) {
        // Read in meanwhile: what memory holds now is as new or newer.
        read.rp.deliver(std::move(*x));
      } else if (!row) {
        read.rp.deliver(std::move(row.error()));
      } else if (!*row) {
        read.rp.deliver(missing_context(read.key));
      } else {
        context_info x{}; // not in memory: nobody holds or waits
        x.version = (*row)->version;
        read.rp.deliver(std::move(x));
      }
    },
    [=](handover_atom, const context_key& key) {
      if (durable(self) && !validate_key(key))
        adopt(self, key);
    },
    [=](evict_atom) {
      // The owner asked by make_room kept its context: another is asked
      // while the bound is exceeded (a refused ask would leave one context
      // too many in memory until the next activation, or for good).
      auto& st = self->state;
      auto from = caf::actor_cast<caf::actor_addr>(self->current_sender());
      if (st.evict_retries > 0 && st.owners.count(from) != 0) {
        --st.evict_retries;
        make_room(self);
      }
    },
    [=](adopt_atom) {
      if (!durable(self))
        return; // nothing is queued without a backend
      auto keys = self->state.board->adoptions().take();
      if (keys.empty())
        return; // the drain ends: the next thread's store starts another
      for (auto& key : keys)
        adopt(self, key);
      // Threads may go on storing: what they queue meanwhile is taken in
      // one go, a moment later.
      self->delayed_send(self, adoption_interval, adopt_atom::value);
    },
    [=](metrics_atom) {
      auto& defaults = self->state.board->defaults();
      return defaults.metrics->render(*defaults.stats, *defaults.changes);
    },
    [=](watch_atom, const context_key& key, bool all, uint64_t after,
        uint64_t incarnation,
        const caf::actor& sink) -> caf::result<caf::ok_atom> {
      return start_forwarder(self, self->state.board, key, all, after,
                             incarnation, sink);
    },
    [=](stats_atom) {
      auto& c = self->state.stats();
      auto get = [](const std::atomic<int64_t>& x) {
        return static_cast<uint64_t>(std::max<int64_t>(0, x.load()));
      };
      return storage_stats{get(c.contexts), get(c.sessions), get(c.waiters),
                           get(c.owners),
                           self->state.board->defaults().changes->watchers()};
    },
    // Retirement of an owner whose context was erased and that has nothing
    // left to do. Requests may still be on their way to it: forwarded by us
    // (the check below goes behind them), or sent straight to it by clients
    // of this process that found it through the cell (counted in `inbound`
    // under the cell's lock). We forget the owner only when it handled
    // nothing since it asked and none is on its way; otherwise it goes on
    // and handles them itself, so every client's requests keep their order.
    [=](retire_atom, const context_key&) {
      auto i = self->state.owners.find(sender_addr(self));
      if (i == self->state.owners.end())
        return;
      {
        std::lock_guard<std::mutex> guard{i->second.cell->mtx};
        i->second.cell->forwards = 0;
      }
      self->send(i->second.owner, retire_check_atom::value);
    },
    [=](retire_confirm_atom, const context_key&) {
      auto i = self->state.owners.find(sender_addr(self));
      if (i == self->state.owners.end())
        return;
      auto& cell = *i->second.cell;
      {
        std::lock_guard<std::mutex> guard{cell.mtx};
        auto idle = cell.idle_erased() && cell.forwards == 0;
        if (idle) {
          // Dekker with inbound_ticket::done: it decrements, then reads the
          // flag; if it counted zero after our read, it sees the flag.
          cell.retire_wanted = true;
          if (cell.inbound.load() != 0) {
            self->state.stats().owners_kept += 1;
            self->send(i->second.owner, retire_denied_atom::value, false);
            return;
          }
          cell.retire_wanted = false;
          cell.owner = caf::actor_addr{}; // clients now ask us
        } else {
          self->send(i->second.owner, retire_denied_atom::value, true);
          return;
        }
      }
      auto owner = std::move(i->second.owner);
      self->state.board->erase(cell);
      self->state.owners.erase(i);
      self->send(owner, retired_atom::value);
    },
  };
}

} // namespace

spawned_storage spawn_registry(caf::actor_system& sys, storage_options options,
                               bool hide) {
  context_defaults defaults;
  defaults.lease = options.lease;
  defaults.max_waiters = options.max_waiters;
  defaults.max_value_bytes = options.max_value_bytes;
  // With a backend, stores, erases, waits and actors go through the owner,
  // which makes each change durable in order; only a thread that finds a
  // context free takes it itself and makes its own commit durable (no
  // message, no hand-off: see blocking_core.cpp).
  defaults.fast_path = options.local_fast_path && !options.backend;
  defaults.thread_fast_path = options.local_fast_path && options.backend;
  defaults.backend = options.backend;
  defaults.changes = std::make_shared<feed>(options.watch_buffer);
  if (auto batching = dynamic_cast<backends::batching_backend*>(
        options.backend.get()))
    batching->on_batch([metrics = defaults.metrics](size_t n) {
      metrics->batch_writes.observe(n);
    });
  auto board = std::make_shared<actors::context_index>(std::move(defaults));
  if (hide)
    return {sys.spawn<caf::hidden>(registry_behavior, options, true, board),
            board};
  return {sys.spawn(registry_behavior, options, false, board), board};
}

} // namespace ctxstore::actors
