// Load drivers and the operations they run; see driver.hpp.

#include "driver.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <future>
#include <iostream>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <caf/all.hpp>

namespace bench {

namespace {

int64_t ns_of(bench_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           t.time_since_epoch())
    .count();
}

int64_t ns_between(bench_clock::time_point t0, bench_clock::time_point t1) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
}

// A run that does not end is a bug in the library or the bench: say so and
// stop (the serving child dies with us).
template <class Future>
void await_or_die(Future& fut, const limits& lim, const char* what) {
  auto bound = lim.max_time + std::chrono::seconds(120);
  if (fut.wait_for(bound) != std::future_status::ready) {
    std::cout << "HUNG: " << what << " did not finish within "
              << std::chrono::duration_cast<std::chrono::seconds>(bound).count()
              << " s" << std::endl;
    std::_Exit(3);
  }
}

} // namespace

// Named (not anonymous): done_fn in driver.hpp refers to them.

// The budget shared by the clients of one repetition.
struct budget {
  std::atomic<uint64_t> issued{0};
  uint64_t max_ops = 0;
  bench_clock::time_point deadline;
};

// A client's share of the budget, taken a few ops at a time: one shared count
// per op would bounce between the cores on every op of every client.
class budget_share {
public:
  // One more op at `now` (the time the previous op ended: one clock read per
  // op is enough, and each costs ~20 ns here).
  bool take(budget& b, bench_clock::time_point now) {
    if (now >= b.deadline)
      return false;
    if (left_ == 0) {
      auto first = b.issued.fetch_add(slice, std::memory_order_relaxed);
      if (first >= b.max_ops)
        return false;
      left_ = std::min(slice, b.max_ops - first);
    }
    left_ -= 1;
    return true;
  }

private:
  static constexpr uint64_t slice = 8; // small next to any budget of ops
  uint64_t left_ = 0;
};

struct async_shared {
  budget b;
  async_op op;
  bool latencies = true;
  std::atomic<int> running{0};
  bench_clock::time_point end;
  std::promise<void> done;
};

struct async_client_state {
  async_shared* sh = nullptr;
  budget_share share;
  async_ctx ctx;
  std::vector<int64_t> lat;
  std::vector<int64_t> done_ns; // completion times, for window_counts
  uint64_t ops = 0;
  uint64_t errors = 0;
  int active = 0;
  bool stopped = false; // after an error or when the budget is spent
  bool starting = true; // inside the actor's init: finish later
  bool finished = false;
};

namespace {

void finish(async_shared* sh, async_client_state* cs) {
  if (cs->finished)
    return;
  cs->finished = true;
  auto self = cs->ctx.self;
  cs->ctx.client.reset();
  self->quit();
  if (sh->running.fetch_sub(1) == 1) {
    sh->end = bench_clock::now();
    sh->done.set_value();
  }
}

// Starts an op at `now` (see done_fn). Raw pointers: the actor's behavior
// owns the client's state and the run's while it runs, and no op is out when
// it finishes. A shared_ptr copy per callback would put the shared count of
// `sh`, which every client's callbacks touch, between the cores on each op:
// harness cost in every async row.
void issue(async_client_state* cs, bench_clock::time_point now) {
  auto sh = cs->sh;
  if (cs->stopped || !cs->share.take(sh->b, now)) {
    cs->stopped = true;
    if (cs->active == 0 && !cs->starting)
      finish(sh, cs);
    return;
  }
  cs->active += 1;
  auto seq = cs->ops + cs->errors + static_cast<uint64_t>(cs->active);
  sh->op(cs->ctx, seq, done_fn{cs, now});
}

} // namespace

void done_fn::operator()(bool ok) const {
  auto cs = client_;
  auto now = bench_clock::now(); // the op's end, and the next one's start
  cs->active -= 1;
  if (cs->sh->latencies)
    cs->lat.push_back(ns_between(issued_, now));
  if (ok) {
    cs->ops += 1;
    cs->done_ns.push_back(ns_of(now));
  } else {
    cs->errors += 1;
    cs->stopped = true; // keeps a failing op from recursing
  }
  issue(cs, now);
}

namespace {

/// The first seed of a run's clients: every run (every repetition) its own,
/// so that the ids a store of new contexts draws are new in each repetition
/// (the same seeds would store the first repetition's contexts again).
/// Still the same sequence in every process.
uint64_t next_run_seed() {
  static std::atomic<uint64_t> runs{0};
  return 0x5eed + runs.fetch_add(1) * 0x10000;
}

} // namespace

rep_sample run_async(caf::actor_system& sys, const ctxstore::storage& st,
                     int clients, int inflight, const limits& lim,
                     async_op op) {
  auto run_seed = next_run_seed();
  auto sh = std::make_shared<async_shared>();
  sh->op = std::move(op);
  sh->latencies = lim.latencies;
  sh->b.max_ops = lim.max_ops;
  sh->running = clients;
  auto fut = sh->done.get_future();
  std::vector<std::shared_ptr<async_client_state>> states;
  for (int i = 0; i < clients; ++i) {
    auto cs = std::make_shared<async_client_state>();
    cs->sh = sh.get();
    cs->ctx.index = i;
    cs->ctx.rng.seed(run_seed + static_cast<uint64_t>(i));
    states.push_back(cs);
  }
  auto start = bench_clock::now();
  sh->b.deadline = start + lim.max_time;
  for (auto& cs : states) {
    sys.spawn([sh, cs, st, inflight](caf::event_based_actor* self) {
      cs->ctx.self = self;
      if (st)
        cs->ctx.client.emplace(self, st);
      for (int k = 0; k < inflight && !cs->stopped; ++k)
        issue(cs.get(), bench_clock::now());
      cs->starting = false;
      // Nothing to do at all (the budget was spent by the others): finish
      // from a message, not from inside the init.
      if (cs->active == 0)
        self->send(self, int32_t{0});
      return caf::behavior{
        [sh, cs](int32_t) { finish(sh.get(), cs.get()); }};
    });
  }
  await_or_die(fut, lim, "an async run");
  rep_sample s;
  s.seconds = std::chrono::duration<double>(sh->end - start).count();
  std::vector<std::vector<int64_t>> done;
  for (auto& cs : states) {
    s.ops += cs->ops;
    s.errors += cs->errors;
    s.per_client.push_back(cs->ops);
    s.lat_ns.insert(s.lat_ns.end(), cs->lat.begin(), cs->lat.end());
    done.push_back(std::move(cs->done_ns));
  }
  s.per_client_window = window_counts(done);
  return s;
}

rep_sample run_blocking(caf::actor_system& sys, const ctxstore::storage& st,
                        int threads, const limits& lim, blocking_op op,
                        bool scoped) {
  auto run_seed = next_run_seed();
  budget b;
  b.max_ops = lim.max_ops;
  std::mutex mtx;
  std::condition_variable cv;
  int ready = 0;
  bool go = false;
  std::vector<rep_sample> per(static_cast<size_t>(threads));
  std::vector<std::vector<int64_t>> done(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      blocking_ctx ctx;
      ctx.index = i;
      ctx.rng.seed(run_seed + static_cast<uint64_t>(i));
      if (st)
        ctx.client.emplace(sys, st);
      if (scoped)
        ctx.self.emplace(sys);
      {
        std::unique_lock<std::mutex> guard{mtx};
        ++ready;
        cv.notify_all();
        cv.wait(guard, [&] { return go; });
      }
      auto& mine = per[static_cast<size_t>(i)];
      budget_share share;
      // One clock read per op: an op ends when the next one starts.
      auto t0 = bench_clock::now();
      for (uint64_t seq = 0; share.take(b, t0); ++seq) {
        bool ok = op(ctx, seq);
        auto t1 = bench_clock::now();
        if (lim.latencies)
          mine.lat_ns.push_back(ns_between(t0, t1));
        if (!ok) {
          mine.errors += 1;
          break;
        }
        mine.ops += 1;
        done[static_cast<size_t>(i)].push_back(ns_of(t1));
        t0 = t1;
      }
    });
  }
  bench_clock::time_point start;
  {
    std::unique_lock<std::mutex> guard{mtx};
    cv.wait(guard, [&] { return ready == threads; });
    start = bench_clock::now();
    b.deadline = start + lim.max_time;
    go = true;
    cv.notify_all();
  }
  for (auto& t : pool)
    t.join();
  rep_sample s;
  s.seconds = std::chrono::duration<double>(bench_clock::now() - start).count();
  for (auto& p : per) {
    s.ops += p.ops;
    s.errors += p.errors;
    s.per_client.push_back(p.ops);
    s.lat_ns.insert(s.lat_ns.end(), p.lat_ns.begin(), p.lat_ns.end());
  }
  s.per_client_window = window_counts(done);
  return s;
}

void stop_storage(caf::actor_system& sys, ctxstore::storage& st) {
  caf::scoped_actor self{sys};
  self->monitor(st.registry());
  st = ctxstore::storage{};
  self->receive([](caf::down_msg&) {},
                caf::after(std::chrono::seconds(60)) >> [] {
                  std::cout << "error: a storage did not stop" << std::endl;
                });
}

std::vector<uint64_t>
window_counts(const std::vector<std::vector<int64_t>>& done_ns) {
  int64_t from = std::numeric_limits<int64_t>::min();
  int64_t to = std::numeric_limits<int64_t>::max();
  for (auto& xs : done_ns) {
    if (xs.empty())
      return {}; // a client that never completed: no common window
    from = std::max(from, xs.front());
    to = std::min(to, xs.back());
  }
  std::vector<uint64_t> result;
  if (from >= to)
    return result;
  for (auto& xs : done_ns) {
    auto lo = std::lower_bound(xs.begin(), xs.end(), from);
    auto hi = std::upper_bound(xs.begin(), xs.end(), to);
    result.push_back(static_cast<uint64_t>(hi - lo));
  }
  return result;
}

ctxstore::context_id random_id(std::mt19937_64& rng) {
  ctxstore::context_id id;
  uint64_t a = rng();
  uint64_t b = rng();
  std::memcpy(id.data, &a, 8);
  std::memcpy(id.data + 8, &b, 8);
  id.data[6] = static_cast<uint8_t>((id.data[6] & 0x0F) | 0x40); // v4
  id.data[8] = static_cast<uint8_t>((id.data[8] & 0x3F) | 0x80);
  return id;
}

ids_ptr fill(caf::actor_system& sys, const ctxstore::storage& st, size_t n,
             uint64_t seed) {
  auto ids = std::make_shared<std::vector<ctxstore::context_id>>();
  std::mt19937_64 rng{seed};
  ctxstore::blocking_client client{sys, st};
  auto value = make_ctx();
  for (size_t i = 0; i < n; ++i) {
    ids->push_back(random_id(rng));
    client.store(ids->back(), value);
  }
  return ids;
}

// -- keys
// -----------------------------------------------------------------------

key_fn one_key(ctxstore::context_id id) {
  return [id](int, uint64_t) { return id; };
}

key_fn
keys_round_robin(std::shared_ptr<std::vector<ctxstore::context_id>> ids) {
  // Client i starts at a different place, so clients spread over the keys.
  return [ids](int index, uint64_t seq) {
    auto n = ids->size();
    return (*ids)[(static_cast<size_t>(index) * 7919 + seq) % n];
  };
}

key_fn key_per_client(std::shared_ptr<std::vector<ctxstore::context_id>> ids) {
  return [ids](int index, uint64_t) {
    return (*ids)[static_cast<size_t>(index) % ids->size()];
  };
}

// -- async ops
// --------------------------------------------------------------------

namespace {

auto fail_with(done_fn done) {
  return [done](caf::error& err) {
    // Only the first few failures are printed: they are bugs to look at.
    static std::atomic<int> printed{0};
    if (printed.fetch_add(1) < 5)
      std::cout << "error: " << ctxstore::describe(err) << std::endl;
    done(false);
  };
}

} // namespace

async_op async_snapshot(key_fn keys) {
  return [keys](async_ctx& c, uint64_t seq, done_fn done) {
    c.client->snapshot<session_ctx>(keys(c.index, seq))
      .then([done](const session_ctx&) { done(true); }, fail_with(done));
  };
}

async_op async_cycle(key_fn keys) {
  return [keys](async_ctx& c, uint64_t seq, done_fn done) {
    c.client->acquire<session_ctx>(keys(c.index, seq))
      .then(
        [done](ctxstore::async_session<session_ctx> s) {
          s->counter += 1;
          s.release().then([done](uint64_t) { done(true); }, fail_with(done));
        },
        fail_with(done));
  };
}

async_op async_cycle_read(key_fn keys) {
  return [keys](async_ctx& c, uint64_t seq, done_fn done) {
    c.client->acquire<session_ctx>(keys(c.index, seq))
      .then(
        [done](ctxstore::async_session<session_ctx> s) {
          if (s.read().counter < 0) // never: the read the compiler must keep
            return done(false);
          s.release().then([done](uint64_t) { done(true); }, fail_with(done));
        },
        fail_with(done));
  };
}

store_source_ptr copies_of(session_ctx value) {
  return std::make_shared<const store_source>(
    store_source{ctxstore::shared_value<session_ctx>{std::move(value)}, false});
}

store_source_ptr shared(session_ctx value) {
  return std::make_shared<const store_source>(
    store_source{ctxstore::shared_value<session_ctx>{std::move(value)}, true});
}

namespace {

ctxstore::pending<uint64_t> store_from(ctxstore::async_client& client,
                                       const ctxstore::context_id& id,
                                       const store_source& source) {
  if (source.shared)
    return client.store(id, source.value);
  return client.store<session_ctx>(id, *source.value); // a copy of T
}

void store_from(ctxstore::blocking_client& client,
                const ctxstore::context_id& id, const store_source& source) {
  if (source.shared)
    client.store(id, source.value);
  else
    client.store<session_ctx>(id, *source.value); // a copy of T
}

} // namespace

async_op async_store(key_fn keys, store_source_ptr source) {
  return [keys, source](async_ctx& c, uint64_t seq, done_fn done) {
    store_from(*c.client, keys(c.index, seq), *source)
      .then([done](uint64_t) { done(true); }, fail_with(done));
  };
}

async_op async_store_new(store_source_ptr source) {
  return [source](async_ctx& c, uint64_t, done_fn done) {
    store_from(*c.client, random_id(c.rng), *source)
      .then([done](uint64_t) { done(true); }, fail_with(done));
  };
}

async_op async_echo(caf::actor echo) {
  return [echo](async_ctx& c, uint64_t seq, done_fn done) {
    c.self->request(echo, caf::infinite, static_cast<int32_t>(seq))
      .then([done](int32_t) { done(true); }, fail_with(done));
  };
}

// -- blocking ops
// -------------------------------------------------------------------

namespace {

template <class F>
bool guarded(F f) {
  try {
    f();
    return true;
  } catch (const std::exception& e) {
    static std::atomic<int> printed{0};
    if (printed.fetch_add(1) < 5)
      std::cout << "error: " << e.what() << std::endl;
    return false;
  }
}

} // namespace

blocking_op blocking_snapshot(key_fn keys) {
  return [keys](blocking_ctx& c, uint64_t seq) {
    return guarded(
      [&] { c.client->snapshot<session_ctx>(keys(c.index, seq)); });
  };
}

blocking_op blocking_view(key_fn keys) {
  return [keys](blocking_ctx& c, uint64_t seq) {
    return guarded([&] {
      auto v = c.client->view<session_ctx>(keys(c.index, seq));
      if (v->counter < 0) // read it, as a caller would
        throw std::logic_error{"negative counter"};
    });
  };
}

blocking_op blocking_cycle(key_fn keys) {
  return [keys](blocking_ctx& c, uint64_t seq) {
    return guarded([&] {
      auto s = c.client->acquire<session_ctx>(keys(c.index, seq));
      s->counter += 1;
      s.release();
    });
  };
}

blocking_op blocking_store(key_fn keys, store_source_ptr source) {
  return [keys, source](blocking_ctx& c, uint64_t seq) {
    return guarded(
      [&] { store_from(*c.client, keys(c.index, seq), *source); });
  };
}

blocking_op blocking_store_new(store_source_ptr source) {
  return [source](blocking_ctx& c, uint64_t) {
    return guarded([&] { store_from(*c.client, random_id(c.rng), *source); });
  };
}

blocking_op blocking_echo(caf::actor echo) {
  return [echo](blocking_ctx& c, uint64_t seq) {
    bool ok = false;
    (*c.self)
      ->request(echo, caf::infinite, static_cast<int32_t>(seq))
      .receive([&](int32_t) { ok = true; },
               [&](caf::error& err) {
                 std::cout << "error: " << to_string(err) << std::endl;
               });
    return ok;
  };
}

caf::actor spawn_echo(caf::actor_system& sys) {
  return sys.spawn(
    []() -> caf::behavior { return {[](int32_t x) { return x; }}; });
}

} // namespace bench
