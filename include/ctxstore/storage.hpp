#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "ctxstore/storage_options.hpp"

namespace ctxstore {

/// A handle to a storage: its registry actor, local or on another node.
/// Copies are cheap and share the storage; the storage stops when its last
/// handle (and last client) is gone.
class storage {
public:
  storage() = default;

  explicit storage(caf::actor registry) : registry_(std::move(registry)) {
    // nop
  }

  /// The registry actor, for sending protocol messages directly.
  const caf::actor& registry() const noexcept {
    return registry_;
  }

  explicit operator bool() const noexcept {
    return static_cast<bool>(registry_);
  }

  friend bool operator==(const storage& x, const storage& y) noexcept {
    return x.registry_ == y.registry_;
  }

  friend bool operator!=(const storage& x, const storage& y) noexcept {
    return !(x == y);
  }

private:
  caf::actor registry_;
};

/// Spawns a new storage in `sys`. Destroy its handles (and clients) before
/// `sys`: like any CAF actor, a storage that is still referenced keeps the
/// actor system's destructor waiting.
storage spawn_storage(caf::actor_system& sys, storage_options options = {});

/// The one storage of `sys`, spawned on first use with default options (the
/// reference's `context_storage_singleton()`). It lives as long as `sys` and
/// does not keep `sys` from shutting down. Thread-safe.
const storage& default_storage(caf::actor_system& sys);

} // namespace ctxstore
