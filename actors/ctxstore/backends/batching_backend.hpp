#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "ctxstore/backend.hpp"

namespace ctxstore::backends {

/// The half that every backend shares: one worker thread that takes what
/// is waiting when it comes round: every write joins one batch (group
/// commit: one transaction, one pipeline, one fsync for all of them), made
/// durable in submission order, and the loads are read together, before
/// that batch, except a load submitted after a write of its own context,
/// which is read after it (a load sees every write of its context submitted
/// before it). A concrete backend says how to read contexts and how to make
/// one batch durable; both run on one thread at a time (the worker, or a
/// blocking caller that found the worker idle: see write_and_wait), so they
/// need no lock of their own.
class batching_backend : public backend {
public:
  /// Most writes in one batch.
  static constexpr size_t max_batch = 1024;

  ~batching_backend() override;

  void load(const std::string& type, const context_id& id,
            load_done done) final;

  void write(backend_write w, write_done done) final;

  /// Joins the worker's next batch as one write of the concrete backend (a
  /// write with `replaces` = `replaces_any`): no read first.
  void store(backend_write w, store_done done) final;

  /// Writes `w` on the calling thread if the worker is idle and nothing is
  /// queued (a batch of one, in order: nothing was submitted before it that
  /// is not answered); otherwise it joins the worker's next batch.
  caf::error write_and_wait(backend_write w) final;

  /// Reads on the calling thread if the worker is idle and nothing is
  /// queued (nothing submitted before it is unanswered: it sees every write
  /// submitted before it); otherwise it waits its turn in the queue.
  caf::expected<std::optional<stored_value>>
  load_and_wait(const std::string& type, const context_id& id) final;

  /// Writes `w` as the next version on the calling thread if the worker is
  /// idle and nothing is queued, in one step of the concrete backend (a
  /// write with `replaces` = `replaces_any`); otherwise the default's read
  /// and write, each in its turn in the queue.
  caf::expected<uint64_t> store_and_wait(backend_write w) final;

  /// `sizes` gets the number of writes of each batch (the storage's
  /// metrics), on the thread that writes the batch (the worker, or a caller
  /// of write_and_wait).
  void on_batch(std::function<void(size_t)> sizes);

protected:
  batching_backend() = default;

  /// Starts the worker; call it at the end of the derived constructor.
  void start();

  /// Answers what is queued, then stops the worker; call it first in the
  /// derived destructor (the worker uses the derived object until then).
  void stop();

  /// Reads one context (worker thread).
  virtual caf::expected<std::optional<stored_value>>
  read(const std::string& type, const context_id& id)
    = 0;

  /// A context to read (`read_many`): its type and id.
  using read_key = std::pair<std::string, context_id>;

  /// Reads several contexts, in order (worker thread): one answer per key.
  /// By default one `read` after the other; a backend may send them
  /// together (one round trip).
  virtual std::vector<caf::expected<std::optional<stored_value>>>
  read_many(const std::vector<read_key>& keys);

  /// `backend_write::replaces` of a write that replaces whatever version
  /// the backend holds (store_and_wait): the backend writes that version +
  /// 1 (1 if it holds none) and sets the write's `version` to it.
  static constexpr uint64_t replaces_any = UINT64_MAX;

  /// Makes `batch` durable (worker thread): `results[i]` (sized like
  /// `batch`, all empty on entry) gets the error of write `i`, if any. A
  /// write that fails leaves nothing of itself; the others may still land.
  /// A write with `replaces` = `replaces_any` is fenced by the backend's
  /// hold alone and gets the version it left in its `version`.
  virtual void write_batch(std::vector<backend_write>& batch,
                           std::vector<caf::error>& results)
    = 0;

  /// Runs on the worker between jobs and when idle for `tick()` (a lease
  /// to renew, a connection to retry); nothing by default.
  virtual void on_tick() {
    // nop
  }

  /// How long the worker waits for work before calling on_tick again.
  virtual std::chrono::milliseconds tick() const {
    return std::chrono::milliseconds{1000};
  }

private:
  struct job {
    bool is_write = false;
    backend_write w;        // a write
    write_done on_written;  // a write
    store_done on_stored;   // a store: a write that answers here instead
    std::string type;       // a load
    context_id id{};        // a load
    load_done on_loaded;    // a load
  };

  /// Queues `j` for the worker.
  void submit(job j);

  /// Takes the derived backend for the calling thread (true) if the worker
  /// is idle and nothing is queued; `on_batch` gets the metrics' callback.
  bool take_idle(std::function<void(size_t)>& on_batch);

  /// Gives the derived backend back to the worker (after take_idle).
  void give_back();

  /// Writes `w` as a batch of one on the calling thread, which took the
  /// backend (take_idle), and gives it back; `w` comes back as written.
  caf::error write_one(backend_write& w,
                       const std::function<void(size_t)>& on_batch);

  void run();
  void run_jobs(std::vector<job>& jobs,
                const std::function<void(size_t)>& on_batch);
  void run_reads(std::vector<job>& jobs, const std::vector<size_t>& which);
  void run_writes(std::vector<job>& jobs, const std::vector<size_t>& which);

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<job> queue_;
  bool stopping_ = false;
  /// True while the worker or a caller of write_and_wait uses the derived
  /// backend (its connection): one at a time, handed over under `mtx_`.
  bool busy_ = false;
  /// True while the worker waits for a caller to give the backend back.
  bool worker_waits_ = false;
  std::function<void(size_t)> on_batch_; // guarded by mtx_
  std::thread worker_;
};

} // namespace ctxstore::backends
