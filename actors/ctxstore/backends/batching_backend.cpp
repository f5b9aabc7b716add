#include "ctxstore/backends/batching_backend.hpp"

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>

namespace ctxstore {

backend::~backend() = default;

caf::error backend::write_and_wait(backend_write w) {
  struct answer {
    std::mutex mtx;
    std::condition_variable cv;
    bool done = false;
    caf::error err;
  };
  // Shared: the callback may still run after an exception left this frame.
  auto slot = std::make_shared<answer>();
  write(std::move(w), [slot](const caf::error& err) {
    std::lock_guard<std::mutex> guard{slot->mtx};
    slot->err = err;
    slot->done = true;
    slot->cv.notify_one();
  });
  std::unique_lock<std::mutex> guard{slot->mtx};
  slot->cv.wait(guard, [&] { return slot->done; });
  return std::move(slot->err);
}

caf::expected<std::optional<stored_value>>
backend::load_and_wait(const std::string& type, const context_id& id) {
  using loaded = caf::expected<std::optional<stored_value>>;
  struct answer {
    std::mutex mtx;
    std::condition_variable cv;
    std::optional<loaded> value;
  };
  // Shared: the callback may still run after an exception left this frame.
  auto slot = std::make_shared<answer>();
  load(type, id, [slot](loaded x) {
    std::lock_guard<std::mutex> guard{slot->mtx};
    slot->value = std::move(x);
    slot->cv.notify_one();
  });
  std::unique_lock<std::mutex> guard{slot->mtx};
  slot->cv.wait(guard, [&] { return slot->value.has_value(); });
  return std::move(*slot->value);
}

void backend::store(backend_write w, store_done done) {
  auto type = w.type;
  auto id = w.id;
  load(type, id,
       [this, w = std::move(w), done = std::move(done)](
         caf::expected<std::optional<stored_value>> row) mutable {
         if (!row) {
           done(std::move(row.error()));
           return;
         }
         w.replaces = *row ? (*row)->version : 0;
         w.version = w.replaces + 1;
         auto version = w.version;
         write(std::move(w), [done = std::move(done),
                              version](const caf::error& err) {
           if (err)
             done(err);
           else
             done(version);
         });
       });
}

caf::expected<uint64_t> backend::store_and_wait(backend_write w) {
  auto row = load_and_wait(w.type, w.id);
  if (!row)
    return std::move(row.error());
  w.replaces = *row ? (*row)->version : 0;
  w.version = w.replaces + 1;
  auto version = w.version;
  if (auto err = write_and_wait(std::move(w)))
    return err;
  return version;
}

} // namespace ctxstore

namespace ctxstore::backends {

batching_backend::~batching_backend() {
  stop(); // in case the derived destructor did not (it must: see stop)
}

void batching_backend::load(const std::string& type, const context_id& id,
                            load_done done) {
  job j;
  j.type = type;
  j.id = id;
  j.on_loaded = std::move(done);
  submit(std::move(j));
}

void batching_backend::write(backend_write w, write_done done) {
  job j;
  j.is_write = true;
  j.w = std::move(w);
  j.on_written = std::move(done);
  submit(std::move(j));
}

void batching_backend::store(backend_write w, store_done done) {
  job j;
  j.is_write = true;
  j.w = std::move(w);
  j.w.replaces = replaces_any; // one step: the backend finds the version
  j.on_stored = std::move(done);
  submit(std::move(j));
}

void batching_backend::submit(job j) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    queue_.push_back(std::move(j));
  }
  cv_.notify_one();
}

bool batching_backend::take_idle(std::function<void(size_t)>& on_batch) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (busy_ || !queue_.empty() || stopping_)
    return false;
  busy_ = true; // the worker waits until give_back
  on_batch = on_batch_;
  return true;
}

void batching_backend::give_back() {
  bool queued;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    busy_ = false;
    queued = !queue_.empty() || worker_waits_;
  }
  // Only for what was queued meanwhile (or a worker that waits for us): a
  // worker woken for nothing would take the backend for an empty round, and
  // the caller's next call, finding it busy, would wait in the queue.
  if (queued)
    cv_.notify_one();
}

caf::error batching_backend::write_one(backend_write& w,
                                       const std::function<void(size_t)>& on_batch) {
  // A batch of one on this thread: one fsync and no hand-off to the worker
  // and back (two thread wake-ups, more than the fsync itself on a VM).
  on_tick();
  if (on_batch)
    on_batch(1);
  std::vector<backend_write> batch;
  batch.push_back(std::move(w));
  std::vector<caf::error> results(1);
  write_batch(batch, results);
  give_back();
  w = std::move(batch.front()); // with the version a replaces_any write left
  return std::move(results[0]);
}

caf::error batching_backend::write_and_wait(backend_write w) {
  std::function<void(size_t)> on_batch;
  if (!take_idle(on_batch))
    return backend::write_and_wait(std::move(w)); // the next batch
  return write_one(w, on_batch);
}

caf::expected<uint64_t> batching_backend::store_and_wait(backend_write w) {
  std::function<void(size_t)> on_batch;
  if (!take_idle(on_batch))
    return backend::store_and_wait(std::move(w)); // in the queue's turn
  // The backend finds the version itself: no read first.
  w.replaces = replaces_any;
  if (auto err = write_one(w, on_batch))
    return err;
  return w.version;
}

caf::expected<std::optional<stored_value>>
batching_backend::load_and_wait(const std::string& type,
                                const context_id& id) {
  std::function<void(size_t)> unused;
  if (!take_idle(unused))
    return backend::load_and_wait(type, id); // its turn in the queue
  // On this thread: no hand-off to the worker and back.
  on_tick();
  auto result = read(type, id);
  give_back();
  return result;
}

void batching_backend::on_batch(std::function<void(size_t)> sizes) {
  std::lock_guard<std::mutex> guard{mtx_};
  on_batch_ = std::move(sizes);
}

void batching_backend::start() {
  worker_ = std::thread{[this] { run(); }};
}

void batching_backend::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_one();
  if (worker_.joinable())
    worker_.join();
}

void batching_backend::run() {
  std::vector<job> jobs;
  std::function<void(size_t)> on_batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> guard{mtx_};
      if (queue_.empty() && !stopping_)
        cv_.wait_for(guard, tick());
      worker_waits_ = true;
      cv_.wait(guard, [this] { return !busy_; }); // a caller's own write
      worker_waits_ = false;
      if (queue_.empty() && stopping_)
        return; // everything submitted was answered
      // After the wait: a storage sets it once this worker already waits.
      on_batch = on_batch_;
      // Everything waiting, up to a batch of writes: what queued meanwhile
      // shares the next transaction.
      size_t writes = 0;
      while (!queue_.empty() && writes < max_batch) {
        writes += queue_.front().is_write ? 1 : 0;
        jobs.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      busy_ = true;
    }
    on_tick();
    run_jobs(jobs, on_batch);
    jobs.clear();
    std::lock_guard<std::mutex> guard{mtx_};
    busy_ = false;
  }
}

void batching_backend::run_jobs(std::vector<job>& jobs,
                                const std::function<void(size_t)>& on_batch) {
  // The writes as one batch, in submission order. The loads together too:
  // before the writes (their answers need not wait for the fsync), except
  // a load submitted after a write of its own context, which must see it:
  // after the writes.
  std::vector<size_t> reads_first;
  std::vector<size_t> writes;
  std::vector<size_t> reads_after;
  std::set<std::pair<std::string, context_id>> written;
  for (size_t i = 0; i < jobs.size(); ++i) {
    auto& j = jobs[i];
    if (j.is_write) {
      writes.push_back(i);
      written.emplace(j.w.type, j.w.id);
    } else if (written.count({j.type, j.id}) != 0) {
      reads_after.push_back(i);
    } else {
      reads_first.push_back(i);
    }
  }
  run_reads(jobs, reads_first);
  if (!writes.empty()) {
    if (on_batch)
      on_batch(writes.size());
    run_writes(jobs, writes);
  }
  run_reads(jobs, reads_after);
}

std::vector<caf::expected<std::optional<stored_value>>>
batching_backend::read_many(const std::vector<read_key>& keys) {
  std::vector<caf::expected<std::optional<stored_value>>> result;
  result.reserve(keys.size());
  for (auto& key : keys)
    result.push_back(read(key.first, key.second));
  return result;
}

void batching_backend::run_reads(std::vector<job>& jobs,
                                 const std::vector<size_t>& which) {
  if (which.empty())
    return;
  std::vector<read_key> keys;
  keys.reserve(which.size());
  for (auto i : which)
    keys.emplace_back(jobs[i].type, jobs[i].id);
  auto rows = read_many(keys);
  for (size_t k = 0; k < which.size(); ++k)
    jobs[which[k]].on_loaded(std::move(rows[k]));
}

void batching_backend::run_writes(std::vector<job>& jobs,
                                  const std::vector<size_t>& which) {
  std::vector<backend_write> batch;
  batch.reserve(which.size());
  for (auto i : which)
    batch.push_back(std::move(jobs[i].w));
  std::vector<caf::error> results(batch.size());
  write_batch(batch, results);
  for (size_t k = 0; k < which.size(); ++k) {
    auto& j = jobs[which[k]];
    if (!j.on_stored)
      j.on_written(results[k]);
    else if (results[k])
      j.on_stored(std::move(results[k]));
    else
      j.on_stored(batch[k].version); // the version a store left
  }
}

} // namespace ctxstore::backends
