#include "ctxstore/storage.hpp"

#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <caf/all.hpp>

#include "ctxstore/actors/registry.hpp"
#include "ctxstore/storage_options.hpp"

// Storages: spawning one, the handle that stops it, and the default storage
// of an actor system.

namespace ctxstore {

// -- storages
// -------------------------------------------------------------------

storage storage::owning(caf::actor registry,
                        std::shared_ptr<actors::context_index> board) {
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

} // namespace ctxstore
