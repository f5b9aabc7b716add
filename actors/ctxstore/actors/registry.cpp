#include "ctxstore/actors/registry.hpp"

#include <memory>
#include <unordered_map>
#include <utility>

#include <caf/all.hpp>

#include "ctxstore/actors/counters.hpp"
#include "ctxstore/actors/owner.hpp"
#include "ctxstore/context_types.hpp"
#include "ctxstore/messages/protocol.hpp"

// The registry knows which owner serves which key. It holds no context state
// itself: a lookup of an unknown key is answered from the map and leaves
// nothing behind. Owners are linked to it, so they stop when it stops; they
// hold only a weak reference back, so the registry stops when its last handle
// is gone.

namespace ctxstore::actors {

namespace {

using namespace ctxstore::messages;

struct registry_state {
  static inline const char* name = "ctxstore.registry";
  std::unordered_map<context_key, caf::actor, context_key_hash> owners;
  storage_options options;
  std::shared_ptr<counters> stats = std::make_shared<counters>();
  std::shared_ptr<detail::snapshot_board> board;
  bool hidden = false;

  ~registry_state() {
    // Clients in this process read snapshots from the board: once we are
    // gone they must ask, and learn that the storage is down.
    if (board)
      board->close();
  }
};

using registry_ptr = caf::stateful_actor<registry_state>*;

/// Forwards the current request to the owner of `key`, if there is one.
template <class... Ts>
bool forward(registry_ptr self, const context_key& key, Ts&&... xs) {
  auto i = self->state.owners.find(key);
  if (i == self->state.owners.end())
    return false;
  self->delegate(i->second, std::forward<Ts>(xs)...);
  return true;
}

caf::behavior registry_behavior(registry_ptr self, storage_options options,
                                bool hidden,
                                std::shared_ptr<detail::snapshot_board> board) {
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
  // Owners exit normally when retired; anything else is a failure.
  self->set_exit_handler([=](caf::exit_msg& em) {
    auto& owners = self->state.owners;
    for (auto i = owners.begin(); i != owners.end(); ++i) {
      if (i->second.address() == em.source) {
        owners.erase(i);
        return;
      }
    }
    if (em.reason && em.reason != caf::exit_reason::normal)
      self->quit(em.reason);
  });
  return {
    [=](snapshot_atom, const context_key& key) -> caf::result<versioned_value> {
      if (auto err = validate_key(key))
        return err;
      if (forward(self, key, snapshot_atom::value, key))
        return caf::delegated<versioned_value>{};
      return missing_context(key);
    },
    [=](acquire_atom, const context_key& key,
        int64_t wait_ms) -> caf::result<grant> {
      if (auto err = validate_key(key))
        return err;
      if (forward(self, key, acquire_atom::value, key, wait_ms))
        return caf::delegated<grant>{};
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
          || *rtti.second != *type)
        return make_error(errc::type_mismatch,
                          "the value is not of the type registered as "
                            + key.type);
      if (forward(self, key, store_atom::value, key, std::move(value), token))
        return caf::delegated<uint64_t>{};
      auto& st = self->state;
      auto cell = std::make_shared<detail::context_cell>(
        key, type, std::move(value), st.options.lease,
        st.options.local_fast_path, st.stats);
      owner_config cfg;
      cfg.key = key;
      cfg.cell = cell;
      cfg.options = st.options;
      cfg.stats = st.stats;
      cfg.registry = self->address();
      cfg.board = st.board;
      // Counted here, not by the owner: its initialization may run after we
      // answered, and stats must reflect every completed call.
      st.stats->owners += 1;
      st.stats->contexts += 1;
      auto owner = spawn_owner(self, std::move(cfg), st.hidden);
      cell->owner = owner.address();
      if (st.board) // readable before the owner runs, like the count
        st.board->put(std::move(cell));
      st.owners.emplace(key, std::move(owner));
      return uint64_t{1}; // the first version of a new context
    },
    [=](erase_atom, const context_key& key,
        uint64_t token) -> caf::result<bool> {
      if (auto err = validate_key(key))
        return err;
      if (forward(self, key, erase_atom::value, key, token))
        return caf::delegated<bool>{};
      return false;
    },
    // Session requests of holders on other nodes (their grant carries no
    // owner handle): forwarded by key; no owner means no session.
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
    [=](stats_atom) {
      auto& c = *self->state.stats;
      auto get = [](const std::atomic<int64_t>& x) {
        return static_cast<uint64_t>(std::max<int64_t>(0, x.load()));
      };
      return storage_stats{get(c.contexts), get(c.sessions), get(c.waiters),
                           get(c.owners)};
    },
    [=](retire_atom, const context_key& key) {
      auto sender = caf::actor_cast<caf::actor>(self->current_sender());
      if (!sender)
        return;
      auto i = self->state.owners.find(key);
      if (i != self->state.owners.end() && i->second == sender)
        self->state.owners.erase(i);
      // Whatever we forwarded to it before this point is already in its
      // mailbox; it bounces stores back to us and then stops.
      self->send(sender, retired_atom::value);
    },
  };
}

} // namespace

caf::actor spawn_registry(caf::actor_system& sys, storage_options options,
                          bool hide,
                          std::shared_ptr<detail::snapshot_board> board) {
  if (hide)
    return sys.spawn<caf::hidden>(registry_behavior, options, true,
                                  std::move(board));
  return sys.spawn(registry_behavior, options, false, std::move(board));
}

} // namespace ctxstore::actors
