// Group feed (issue 22): how long a commit takes to reach a watching actor's
// handler, locally and from another node, and a commit fanned out to 100
// watchers; each beside the bare CAF round trip it is compared with,
// measured in alternation in the same run.
//
// One writer thread stores a new value (tiny{n}) and waits until every
// watcher's handler ran for it; the latency of an op is from just before the
// store to the last handler (one clock: writer and watchers are in this
// process; remotely the storage is in the serving child, so the interval
// holds the store's way there and the change's way back).

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <caf/all.hpp>

#include "ctxstore/async_client.hpp"
#include "ctxstore/blocking_client.hpp"
#include "driver.hpp"
#include "model.hpp"
#include "scenarios.hpp"

namespace bench {

namespace {

/// What the writer and the watchers share.
struct probe {
  std::mutex mtx;
  std::condition_variable cv;
  int ready = 0;       // watchers that got their first change
  int64_t expect = -1; // the value being committed
  int delivered = 0;   // handlers that saw it
  bench_clock::time_point issued;
  int64_t last_ns = -1; // issued -> the last handler
};

struct watcher_state {
  static inline const char* name = "bench.feed_watcher";
  ctxstore::watch_handle watch;
};

caf::behavior feed_watcher(caf::stateful_actor<watcher_state>* self,
                           ctxstore::storage st, ctxstore::context_id id,
                           std::shared_ptr<probe> p, int watchers) {
  ctxstore::async_client ac{self, std::move(st)};
  auto first = std::make_shared<bool>(true);
  self->state.watch = ac.watch<tiny>(
    id, 0,
    [p, first, watchers](ctxstore::change<tiny>& c) {
      auto now = bench_clock::now();
      std::lock_guard<std::mutex> guard{p->mtx};
      if (*first) {
        *first = false;
        p->ready += 1;
        p->cv.notify_all();
      }
      if (c.value && c.value->n == p->expect && ++p->delivered == watchers) {
        p->last_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       now - p->issued)
                       .count();
        p->cv.notify_all();
      }
    },
    [](caf::error&) {});
  return {[](int) {}};
}

/// One repetition: `watchers` actors watch one context of `st`; commits
/// one at a time until the budget is spent.
rep_sample run_notify(caf::actor_system& sys, const ctxstore::storage& st,
                      int watchers, const limits& lim) {
  rep_sample rep;
  ctxstore::blocking_client client{sys, st};
  std::mt19937_64 rng{0xfeed};
  auto id = random_id(rng);
  client.store(id, tiny{0});
  auto p = std::make_shared<probe>();
  std::vector<caf::actor> actors;
  for (int i = 0; i < watchers; ++i)
    actors.push_back(sys.spawn(feed_watcher, st, id, p, watchers));
  auto bound = std::chrono::seconds{10};
  {
    std::unique_lock<std::mutex> guard{p->mtx};
    if (!p->cv.wait_for(guard, bound, [&] { return p->ready == watchers; }))
      rep.errors += 1;
  }
  auto start = bench_clock::now();
  for (int64_t n = 1; rep.errors == 0; ++n) {
    if (lim.max_ops > 0 && rep.ops >= lim.max_ops)
      break;
    if (bench_clock::now() - start >= lim.max_time)
      break;
    {
      std::lock_guard<std::mutex> guard{p->mtx};
      p->expect = n;
      p->delivered = 0;
      p->last_ns = -1;
      p->issued = bench_clock::now();
    }
    client.store(id, tiny{n});
    std::unique_lock<std::mutex> guard{p->mtx};
    if (!p->cv.wait_for(guard, bound, [&] { return p->last_ns >= 0; })) {
      rep.errors += 1;
      break;
    }
    rep.lat_ns.push_back(p->last_ns);
    rep.ops += 1;
  }
  rep.seconds
    = std::chrono::duration<double>(bench_clock::now() - start).count();
  for (auto& a : actors)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  client.erase<tiny>(id);
  return rep;
}

} // namespace

void measure_feed(const options& opts, caf::actor_system& sys,
                  const ctxstore::storage& st, const caf::actor& echo,
                  const std::string& where) {
  ctxstore::storage none;
  auto lim = limits_of(opts);
  measure_alternating(
    opts, "feed." + where + ".caf.async.1",
    "feed, " + where + ": bare CAF round trip, async (baseline)",
    [&] { return run_async(sys, none, 1, 1, lim, async_echo(echo)); },
    "feed." + where + ".notify.1",
    "feed, " + where + ": commit -> a watching actor's handler",
    [&] { return run_notify(sys, st, 1, lim); });
  if (where == "local")
    measure(opts, "feed.local.fanout.100",
            "feed, local: commit -> 100 watching actors (latency: the last)",
            [&] { return run_notify(sys, st, 100, lim); });
}

void run_feed(const options& opts, caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys, ctxstore::storage_options{});
  auto echo = spawn_echo(sys);
  measure_feed(opts, sys, st, echo, "local");
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  stop_storage(sys, st);
}

} // namespace bench
