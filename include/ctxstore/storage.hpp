#pragma once

#include <memory>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "ctxstore/storage_options.hpp"

namespace ctxstore {

namespace actors {

class context_index;

} // namespace actors

/// A handle to a storage: its registry actor, local or on another node.
/// Copies are cheap and share the storage; the storage stops when its last
/// handle (and last client) is gone.
class storage {
public:
  /// An empty handle; `bool(st)` is false and every request fails with
  /// `errc::storage_down`.
  storage() = default;

  /// A handle that refers to `registry` without owning it (e.g. a remote
  /// storage from `connect`).
  explicit storage(caf::actor registry) : registry_(std::move(registry)) {
    // nop
  }

  /// A handle that owns the storage behind `registry`: when its last copy is
  /// gone, the storage is told to stop. (Relying on CAF noticing that the
  /// registry became unreachable is not enough: an actor that ever answered
  /// a remote node stays registered with the middleman while it runs.)
  /// `board`: @private, see `board()`.
  static storage owning(caf::actor registry,
                        std::shared_ptr<actors::context_index> board = nullptr);

  /// @private: a handle with the in-process board of the storage's last
  /// commits, from which snapshots are read without a message.
  storage(caf::actor registry, std::shared_ptr<actors::context_index> board)
      : registry_(std::move(registry)), board_(std::move(board)) {
    // nop
  }

  /// @private: the board of a storage in this process; null for a remote one.
  const std::shared_ptr<actors::context_index>& board() const noexcept {
    return board_;
  }

  /// The registry actor, for sending protocol messages directly.
  const caf::actor& registry() const noexcept {
    return registry_;
  }

  /// False for a default-constructed handle (no storage behind it).
  explicit operator bool() const noexcept {
    return static_cast<bool>(registry_);
  }

  /// True if both handles refer to the same registry actor.
  friend bool operator==(const storage& x, const storage& y) noexcept {
    return x.registry_ == y.registry_;
  }

  /// The negation of `==`.
  friend bool operator!=(const storage& x, const storage& y) noexcept {
    return !(x == y);
  }

private:
  caf::actor registry_;
  std::shared_ptr<const void> lifetime_; // stops the storage when released
  std::shared_ptr<actors::context_index> board_; // null: ask the registry
};

/// Spawns a new storage in `sys`; it stops when the last copy of the returned
/// handle (clients and their sessions hold copies) is gone. Destroy its
/// handles, clients and sessions before `sys`: like any CAF actor, a running
/// storage keeps the actor system's destructor waiting.
storage spawn_storage(caf::actor_system& sys, storage_options options);

/// Spawns a new storage with the options of `sys`'s configuration (group
/// `ctxstore`, see `storage_options`).
storage spawn_storage(caf::actor_system& sys);

/// The one storage of `sys`, spawned on first use with the options of `sys`'s
/// configuration (the reference's `context_storage_singleton()`). It lives as
/// long as `sys` and does not keep `sys` from shutting down. Thread-safe.
const storage& default_storage(caf::actor_system& sys);

} // namespace ctxstore
