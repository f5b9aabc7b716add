#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "ctxstore/context_id.hpp"

namespace ctxstore {

/// One context as a backend keeps it: its version and its value in the wire
/// form of its type's codec (what `add_context_type` registered).
struct stored_value {
  /// The version of the last durable change.
  uint64_t version = 0;
  /// The value in its type's wire form.
  std::vector<char> bytes;
};

/// One change to make durable.
struct backend_write {
  /// The registered name of the context's type.
  std::string type;
  /// The context's id.
  context_id id;
  /// The version this write leaves (for an erase: the version erased).
  uint64_t version = 0;
  /// The version the backend must hold now, 0 for none (a new context): a
  /// write against anything else fails with `errc::conflict` (fencing).
  uint64_t replaces = 0;
  /// True: remove the context (`bytes` is ignored).
  bool erase = false;
  /// The new value in the codec's wire form.
  std::vector<char> bytes;
};

/// Where a storage keeps its contexts beyond its own memory (see
/// `storage_options::backend`): `open_sqlite` and `open_redis` make one.
///
/// One backend object serves one storage and holds its file or prefix
/// exclusively (the hold ends when the object is destroyed). Its calls are
/// thread-safe and never block on the disk or the network: each hands its
/// answer to a callback, called exactly once, from the backend's own worker
/// thread (never inside the call). Writes that wait together are made durable
/// together (group commit: one transaction, one pipeline): their callbacks
/// run after that, in the order the writes were submitted.
class backend {
public:
  /// Gets the outcome of a write: no error once it is durable.
  using write_done = std::function<void(const caf::error&)>;

  /// Gets the outcome of a load: the context, nothing, or an error.
  using load_done
    = std::function<void(caf::expected<std::optional<stored_value>>)>;

  /// Gets the outcome of a store (see `store`): the version it left, or an
  /// error.
  using store_done = std::function<void(caf::expected<uint64_t>)>;

  virtual ~backend();

  /// Reads the context `id` of `type`: nothing if the backend does not have
  /// it, an error (`errc::backend_failure`) if it could not tell.
  virtual void load(const std::string& type, const context_id& id,
                    load_done done)
    = 0;

  /// Makes `w` durable. `done` gets no error once it is; else
  /// `errc::backend_failure` (the backend could not: nothing of `w` applied;
  /// but if a server stopped answering after it got the write, it may still
  /// apply it: the storage reads the context again after any failure) or
  /// `errc::conflict` (the backend holds another version than `w.replaces`,
  /// or lost its hold to another writer: nothing applied).
  virtual void write(backend_write w, write_done done) = 0;

  /// Makes `w` durable as the version after the one the backend holds (1
  /// if it holds none; `w.version` and `w.replaces` are ignored) and hands
  /// that version to `done`, like `write` hands its outcome: an owner's
  /// store of a context that is not in memory, which continues the
  /// context's versions but replaces its value unread. Errors as for
  /// `write`. The default reads the context (`load`) and then writes the
  /// next version (`write`); a backend may do both in one step.
  virtual void store(backend_write w, store_done done);

  /// Makes `w` durable like `write` and returns its outcome, blocking the
  /// calling thread meanwhile (a blocking client's own commit). The default
  /// submits `w` with `write` and waits for its answer; a backend may
  /// instead write on the calling thread when it has nothing else to do,
  /// which saves the hand-off to its worker and back.
  virtual caf::error write_and_wait(backend_write w);

  /// Reads the context `id` of `type` like `load` and returns the outcome,
  /// blocking the calling thread meanwhile (a blocking client that stores a
  /// context not in memory). The default submits `load` and waits for its
  /// answer; a backend may instead read on the calling thread when it has
  /// nothing else to do.
  virtual caf::expected<std::optional<stored_value>>
  load_and_wait(const std::string& type, const context_id& id);

  /// Makes `w` durable as the version after the one the backend holds (1
  /// if it holds none; `w.version` and `w.replaces` are ignored) and
  /// returns that version, blocking the calling thread meanwhile: a
  /// blocking client's store of a context that is not in memory, which
  /// continues the context's versions but replaces its value unread. Errors
  /// as for `write`. The default reads the context (load_and_wait) and
  /// writes the next version (write_and_wait); a backend may do both in one
  /// step (one round trip to a server).
  virtual caf::expected<uint64_t> store_and_wait(backend_write w);

  /// Where it keeps the contexts, for messages: "sqlite:PATH",
  /// "redis://HOST:PORT/PREFIX".
  virtual std::string name() const = 0;
};

/// A backend in the SQLite file `path` (created if missing; WAL journal,
/// `synchronous=FULL`: a write acknowledged is on the disk). The file is
/// held exclusively: a second open fails (`errc::backend_failure`, saying
/// so) while this backend lives.
caf::expected<std::shared_ptr<backend>> open_sqlite(const std::string& path);

/// A backend in the Redis server at `host`:`port`, keys under `prefix`. The
/// prefix is held exclusively through a lease key with an epoch that the
/// backend renews; every write checks the epoch and the context's version
/// in one script, so a backend that lost its lease can never overwrite
/// (`errc::conflict`). Durability is the server's AOF policy (use
/// `appendfsync always`). A second open of the prefix fails while the lease
/// is held; after a crash it can be taken once the lease ran out.
caf::expected<std::shared_ptr<backend>>
open_redis(const std::string& host, uint16_t port,
           const std::string& prefix = "ctxstore");

/// The backend that `uri` names, opened: "sqlite:PATH" or
/// "redis://HOST:PORT/PREFIX" (PORT defaults to 6379, PREFIX to
/// "ctxstore"), the forms of the `ctxstore.backend` option. A malformed
/// `uri` is `errc::bad_request`.
caf::expected<std::shared_ptr<backend>> open_backend(const std::string& uri);

} // namespace ctxstore
