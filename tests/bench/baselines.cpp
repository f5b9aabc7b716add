// Baselines measured in the same run: a bare CAF request/response round trip
// to a trivial actor (the floor of any actor design), and a std::mutex +
// std::unordered_map doing the same operations as the storage (and, for
// contention, a lock that hands itself over in arrival order, as sessions are).

#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>

#include <boost/functional/hash.hpp>
#include <caf/all.hpp>

#include "driver.hpp"
#include "scenarios.hpp"

namespace bench {

namespace {

using ctxstore::context_id;

struct locked_map {
  std::mutex mtx;
  std::unordered_map<context_id, session_ctx, boost::hash<context_id>> map;
};

/// A lock granted to the oldest waiter, which sleeps until then, the way a
/// context's session is granted to threads (see actors/.../context.hpp): the least a
/// FIFO hand-over between threads costs on this machine, one wake-up each.
class fifo_lock {
public:
  void lock() {
    std::unique_lock<std::mutex> guard{mtx_};
    if (!held_) {
      held_ = true;
      return;
    }
    waiter w;
    queue_.push_back(&w);
    w.cv.wait(guard, [&w] { return w.granted; });
  }

  void unlock() {
    std::lock_guard<std::mutex> guard{mtx_};
    if (queue_.empty()) {
      held_ = false;
      return;
    }
    auto next = queue_.front();
    queue_.pop_front();
    next->granted = true;
    next->cv.notify_one();
  }

private:
  struct waiter {
    std::condition_variable cv;
    bool granted = false;
  };

  std::mutex mtx_;
  bool held_ = false;
  std::deque<waiter*> queue_;
};

void caf_group(const options& opts, caf::actor_system& sys) {
  auto echo = spawn_echo(sys);
  ctxstore::storage none;
  auto lim = limits_of(opts);
  measure(
    opts, "caf.blocking.1", "bare CAF round trip, blocking scoped_actor",
    [&] { return run_blocking(sys, none, 1, lim, blocking_echo(echo), true); });
  measure(opts, "caf.async.1", "bare CAF round trip, async, 1 in flight",
          [&] { return run_async(sys, none, 1, 1, lim, async_echo(echo)); });
  measure(opts, "caf.async.64", "bare CAF round trip, async, 64 in flight",
          [&] { return run_async(sys, none, 1, 64, lim, async_echo(echo)); });
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}

void mutex_group(const options& opts, caf::actor_system& sys) {
  ctxstore::storage none;
  auto lim = limits_of(opts);
  auto value = make_ctx();
  auto m = std::make_shared<locked_map>();
  std::vector<context_id> ids;
  std::mt19937_64 rng{11};
  for (int i = 0; i < 1000; ++i) {
    ids.push_back(random_id(rng));
    m->map.emplace(ids.back(), value);
  }
  auto key_of = [&ids](int index, uint64_t seq) -> const context_id& {
    return ids[(static_cast<size_t>(index) * 7919 + seq) % ids.size()];
  };
  measure(opts, "mutex.snapshot", "std::mutex + unordered_map: copy out", [&] {
    return run_blocking(sys, none, 1, lim, [&](blocking_ctx&, uint64_t) {
      session_ctx copy;
      {
        std::lock_guard<std::mutex> guard{m->mtx};
        copy = m->map.find(ids[0])->second;
      }
      return copy.counter >= 0;
    });
  });
  auto cycle = [&](blocking_ctx& c, uint64_t seq) {
    auto& id = key_of(c.index, seq);
    std::lock_guard<std::mutex> guard{m->mtx};
    auto copy = m->map.find(id)->second;
    copy.counter += 1;
    m->map[id] = std::move(copy);
    return true;
  };
  measure(opts, "mutex.cycle", "std::mutex + unordered_map: get-modify-put",
          [&] { return run_blocking(sys, none, 1, lim, cycle); });
  measure(opts, "mutex.cycle.64x1000",
          "std::mutex + unordered_map: get-modify-put, 64 threads",
          [&] { return run_blocking(sys, none, 64, lim, cycle); });
  fifo_lock fifo;
  measure(opts, "mutex.fifo.64",
          "FIFO hand-over lock + unordered_map: get-modify-put, 64 threads "
          "on ONE key",
          [&] {
            return run_blocking(sys, none, 64, lim, [&](blocking_ctx&, uint64_t) {
              std::lock_guard<fifo_lock> session{fifo};
              auto& slot = m->map.find(ids[0])->second;
              auto copy = slot;
              copy.counter += 1;
              slot = std::move(copy);
              return true;
            });
          });
  auto slim = lim;
  slim.max_ops = std::min<uint64_t>(slim.max_ops, 20000);
  measure(
    opts, "mutex.store.new", "std::mutex + unordered_map: store new", [&] {
      auto fresh = std::make_shared<locked_map>();
      return run_blocking(sys, none, 1, slim, [&](blocking_ctx& c, uint64_t) {
        auto id = random_id(c.rng);
        std::lock_guard<std::mutex> guard{fresh->mtx};
        fresh->map.emplace(id, value);
        return true;
      });
    });
  measure(opts, "mutex.store.replace",
          "std::mutex + unordered_map: store replacing", [&] {
            return run_blocking(sys, none, 1, lim,
                                [&](blocking_ctx& c, uint64_t seq) {
                                  auto& id = key_of(c.index, seq);
                                  std::lock_guard<std::mutex> guard{m->mtx};
                                  m->map[id] = value;
                                  return true;
                                });
          });
}

} // namespace

void run_baselines(const options& opts, caf::actor_system& sys) {
  if (opts.wants("caf"))
    caf_group(opts, sys);
  if (opts.wants("mutex"))
    mutex_group(opts, sys);
}

} // namespace bench
