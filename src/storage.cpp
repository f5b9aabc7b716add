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

namespace {

struct default_entry {
  std::unique_ptr<storage> st;
  caf::actor marker; // named default_storage_name in the system's registry
};

std::mutex& default_mutex() {
  static auto* mtx = new std::mutex;
  return *mtx;
}

std::unordered_map<caf::actor_system*, default_entry>& default_entries() {
  static auto* entries
    = new std::unordered_map<caf::actor_system*, default_entry>;
  return *entries;
}

/// The entry of `sys` if it belongs to `sys` (not to a destroyed system at
/// the same address); call with the mutex held.
default_entry* live_entry(caf::actor_system& sys) {
  auto& entries = default_entries();
  auto i = entries.find(&sys);
  if (i == entries.end() || !i->second.st)
    return nullptr;
  auto named = sys.registry().get(actors::default_storage_name);
  if (named
      && named == caf::actor_cast<caf::strong_actor_ptr>(i->second.marker))
    return &i->second;
  return nullptr;
}

} // namespace

bool actors::is_default_storage(caf::actor_system& sys,
                                const caf::actor& registry) {
  std::lock_guard<std::mutex> guard{default_mutex()};
  auto entry = live_entry(sys);
  return entry != nullptr && entry->st->registry() == registry;
}

const storage& default_storage(caf::actor_system& sys) {
  // The default storage is hidden (the system does not wait for it at
  // shutdown); a marker actor named in the system's registry tells whether
  // our entry belongs to this system. The storage's handle must never be
  // released after `sys` is gone (releasing the last reference runs actor
  // cleanup against the dead system), so the table is deliberately leaked,
  // and an entry of a destroyed system whose address was reused is leaked
  // too.
  std::lock_guard<std::mutex> guard{default_mutex()};
  if (auto entry = live_entry(sys))
    return *entry->st;
  auto& slot = default_entries()[&sys];
  if (slot.st) {
    // Belongs to a destroyed system: keep it (reachable, so that leak checkers
    // know it is deliberate), never release it.
    static auto* graveyard = new std::vector<default_entry>;
    graveyard->push_back(std::move(slot));
  }
  auto spawned
    = actors::spawn_registry(sys, storage_options_from(sys.config()), true);
  slot.st = std::make_unique<storage>(std::move(spawned.registry),
                                      std::move(spawned.board));
  slot.marker = sys.spawn<caf::hidden>([](caf::event_based_actor* self) {
    self->set_default_handler(caf::drop);
    return caf::behavior{[](caf::unit_t) {}};
  });
  sys.registry().put(actors::default_storage_name,
                     caf::actor_cast<caf::strong_actor_ptr>(slot.marker));
  return *slot.st;
}

} // namespace ctxstore
