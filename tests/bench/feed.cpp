// Group feed (issue 22): how long a commit takes to reach a watching actor's
// handler, locally and on another node, and a commit fanned out to 100
// watchers; each beside the bare CAF round trip it is compared with,
// measured in alternation in the same run.
//
// The notification latency runs from the commit to the last handler: a
// writer actor on the storage's node holds a session on the context and
// commits tiny{t} (session::commit), t the time just before; each watching
// actor's handler subtracts t from its own time. One clock for both:
// steady_clock is CLOCK_MONOTONIC, the same for every process of this
// machine, so the remote rows (writer in the --serve child, watcher here)
// need no clock sync. The `store` rows keep the other view: a thread of the
// watchers' node stores tiny{t} (blocking_client::store), t taken before
// that store, so the interval also holds the store's way to the storage (and
// a thread's wake-ups).

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include <boost/uuid/string_generator.hpp>
#include <boost/uuid/uuid_io.hpp>
#include <caf/all.hpp>

#include "ctxstore/async_client.hpp"
#include "ctxstore/blocking_client.hpp"
#include "driver.hpp"
#include "model.hpp"
#include "scenarios.hpp"

namespace bench {

namespace {

using feed_hold_atom = caf::atom_constant<caf::atom("fhold")>;
using feed_write_atom = caf::atom_constant<caf::atom("fwrite")>;
using feed_end_atom = caf::atom_constant<caf::atom("fend")>;

int64_t ns_of(bench_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           t.time_since_epoch())
    .count();
}

/// What the measuring thread and the watchers share.
struct probe {
  std::mutex mtx;
  std::condition_variable cv;
  int ready = 0;       // watchers that got their first change (tiny{0})
  int delivered = 0;   // handlers that got the change being made
  int64_t latency = -1; // of the last of them (ns)
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
      auto now = ns_of(bench_clock::now());
      std::lock_guard<std::mutex> guard{p->mtx};
      if (*first) {
        *first = false;
        p->ready += 1;
        p->cv.notify_all();
      }
      if (c.value && c.value->n > 0 && ++p->delivered == watchers) {
        p->latency = now - c.value->n;
        p->cv.notify_all();
      }
    },
    [](caf::error&) {});
  return {[](int) {}};
}

struct writer_state {
  static inline const char* name = "bench.feed_writer";
  std::shared_ptr<ctxstore::async_client> client;
  ctxstore::async_session<tiny> session;
};

} // namespace

caf::behavior feed_writer(caf::stateful_actor<writer_state>* self,
                          ctxstore::storage st) {
  self->state.client
    = std::make_shared<ctxstore::async_client>(self, std::move(st));
  return {
    // Holds a session on the context `id` (a text: a bare uuid is no
    // message type of CAF's); answers 0.
    [self](feed_hold_atom, const std::string& id) -> caf::result<int64_t> {
      auto rp = self->make_response_promise<int64_t>();
      self->state.client->acquire<tiny>(boost::uuids::string_generator{}(id))
        .then(
          [self, rp](ctxstore::async_session<tiny> s) mutable {
            self->state.session = std::move(s);
            rp.deliver(int64_t{0});
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    // Commits the time just before the commit (ns_of). No answer (a
    // thread woken for it would delay the watcher); a failed commit reaches
    // no watcher: the measuring thread times out.
    [self](feed_write_atom) {
      auto& s = self->state.session;
      s->n = 0; // the working copy detaches from the last commit (a copy)
      s->n = ns_of(bench_clock::now()); // then the clock, then the commit
      s.commit().then([](uint64_t) {}, [](caf::error&) {});
    },
    // Ends the session (nothing is left to commit); answers 0.
    [self](feed_end_atom) {
      self->state.session = ctxstore::async_session<tiny>{};
      return int64_t{0};
    },
  };
}

caf::actor spawn_feed_writer(caf::actor_system& sys, ctxstore::storage st) {
  return sys.spawn(feed_writer, std::move(st));
}

namespace {

/// Where an op of run_notify starts.
enum class start_at {
  commit, // the writer's commit (on the storage's node)
  store,  // a store by a thread of this node
};

/// One repetition: `watchers` actors watch one context of `st`; commits
/// one at a time until the budget is spent.
rep_sample run_notify(caf::actor_system& sys, const ctxstore::storage& st,
                      const caf::actor& writer, start_at from, int watchers,
                      const limits& lim) {
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
  caf::scoped_actor self{sys};
  auto ask = [&](auto... xs) { // of the writer; its answers are 0
    self->request(writer, bound, xs...)
      .receive([](int64_t) {}, [&](caf::error&) { rep.errors += 1; });
  };
  if (from == start_at::commit && rep.errors == 0)
    ask(feed_hold_atom::value, boost::uuids::to_string(id));
  auto start = bench_clock::now();
  while (rep.errors == 0) {
    if (lim.max_ops > 0 && rep.ops >= lim.max_ops)
      break;
    if (bench_clock::now() - start >= lim.max_time)
      break;
    {
      std::lock_guard<std::mutex> guard{p->mtx};
      p->delivered = 0;
      p->latency = -1;
    }
    if (from == start_at::commit)
      self->send(writer, feed_write_atom::value);
    else
      client.store(id, tiny{ns_of(bench_clock::now())});
    std::unique_lock<std::mutex> guard{p->mtx};
    if (!p->cv.wait_for(guard, bound, [&] { return p->latency >= 0; })) {
      rep.errors += 1;
      break;
    }
    rep.lat_ns.push_back(p->latency);
    rep.ops += 1;
  }
  rep.seconds
    = std::chrono::duration<double>(bench_clock::now() - start).count();
  for (auto& a : actors)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  if (from == start_at::commit)
    ask(feed_end_atom::value);
  client.erase<tiny>(id);
  return rep;
}

} // namespace

void measure_feed(const options& opts, caf::actor_system& sys,
                  const ctxstore::storage& st, const caf::actor& echo,
                  const caf::actor& writer, const std::string& where) {
  ctxstore::storage none;
  auto lim = limits_of(opts);
  auto notify = [&](start_at from, int watchers) {
    return [&, from, watchers] {
      return run_notify(sys, st, writer, from, watchers, lim);
    };
  };
  measure_alternating(
    opts, "feed." + where + ".caf.async.1",
    "feed, " + where + ": bare CAF round trip, async (baseline)",
    [&] { return run_async(sys, none, 1, 1, lim, async_echo(echo)); },
    "feed." + where + ".notify.1",
    "feed, " + where + ": commit -> a watching actor's handler",
    notify(start_at::commit, 1));
  measure(opts, "feed." + where + ".store.1",
          "feed, " + where
            + ": a thread's store -> a watching actor's handler",
          notify(start_at::store, 1));
  if (where == "local")
    measure(opts, "feed.local.fanout.100",
            "feed, local: commit -> 100 watching actors (latency: the last)",
            notify(start_at::commit, 100));
}

void run_feed(const options& opts, caf::actor_system& sys) {
  auto st = ctxstore::spawn_storage(sys, ctxstore::storage_options{});
  auto echo = spawn_echo(sys);
  auto writer = spawn_feed_writer(sys, st);
  measure_feed(opts, sys, st, echo, writer, "local");
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  stop_storage(sys, st);
}

} // namespace bench
